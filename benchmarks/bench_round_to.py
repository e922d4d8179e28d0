"""Time ``round_to`` against torch's and ml_dtypes' casts, side by side.

For every registered format narrower than float32, round 2**24 normally
distributed float32 values three ways and print the best of a few runs:

- ``round_to(x, fmt)``;
- torch's cast round trip ``x.to(dtype).to(torch.float32)`` (if torch has dtype);
- ml_dtypes' (numpy's for float16) ``x.astype(dtype).astype(np.float32)``.

Ratios below 1 mean ``round_to`` is faster. Run ``python
benchmarks/bench_round_to.py --help`` for options; this is not a test.
"""

import argparse
import time

import ml_dtypes
import numpy as np
import torch

from mixprec.formats import FORMATS, round_to


def best_ms(fn, repeat):
    fn()  # warm up: allocator, caches, lazy initialisation
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2**24, help="values (2**24)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x = torch.randn(args.size, generator=torch.Generator().manual_seed(0))
    xn = x.numpy()

    print(
        f"{args.size} float32 values, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, ml_dtypes {ml_dtypes.__version__}; "
        f"best of {args.repeat} runs, milliseconds"
    )
    header = ("format", "round_to", "torch", "ml_dtypes", "/torch", "/ml_dtypes")
    print("{:<16} {:>9} {:>9} {:>9} {:>8} {:>10}".format(*header))
    for name, fmt in FORMATS.items():
        if fmt.bits >= 32:
            continue
        ours = best_ms(lambda fmt=fmt: round_to(x, fmt), args.repeat)
        dtype = fmt.torch_dtype
        native = (
            best_ms(lambda dtype=dtype: x.to(dtype).to(torch.float32), args.repeat)
            if dtype is not None
            else float("nan")
        )
        np_dtype = np.float16 if name == "float16" else getattr(ml_dtypes, name, None)
        with np.errstate(over="ignore", invalid="ignore"):
            ml = (
                best_ms(lambda d=np_dtype: xn.astype(d).astype(np.float32), args.repeat)
                if np_dtype is not None
                else float("nan")
            )
        print(
            f"{name:<16} {ours:>9.1f} {native:>9.1f} {ml:>9.1f} "
            f"{ours / native:>8.2f} {ours / ml:>10.2f}".replace("nan", "  -")
        )
    sr = best_ms(lambda: round_to(x, "float16", rounding="stochastic"), args.repeat)
    print(f"stochastic rounding to float16: {sr:.1f} ms")


if __name__ == "__main__":
    main()
