"""
The format table: every limit from the bit widths
=================================================

Range, precision and the run of exactly stored integers of a floating-point format
all follow from two numbers: how many exponent bits and how many mantissa bits it
has. We derive them for float32, float16 and bfloat16, check each against
``torch.finfo``, see the trade-off between range and precision in a figure, and then
extend the table to every format from float64 down to four bits.
"""

# %%
# Three formats, three bit layouts
# --------------------------------
#
# A format is described by its exponent width and mantissa width; the sign takes one
# more bit. :func:`mixprec.get_format` looks a format up by torch's name or a short
# alias.
import math

import torch

import mixprec

names = ["fp32", "fp16", "bf16"]
formats = [mixprec.get_format(name) for name in names]
for fmt in formats:
    print(
        f"{fmt.name:>8}: {fmt.bits} bits = 1 sign + {fmt.exponent_bits} exponent"
        f" + {fmt.mantissa_bits} mantissa"
    )

# %%
# Everything else is derived from the widths
# ------------------------------------------
#
# The largest finite value, the smallest normal and subnormal values, the step
# :math:`\varepsilon = 2^{-M}` from 1 to the next number, and the integer up to which
# every integer is exact, :math:`2^{M+1}`, are computed from the widths alone. The
# last column is the dynamic range: how many powers of ten lie between the smallest
# subnormal and the largest value.


def print_table(formats):
    print(
        f"{'format':>15} {'max':>10} {'min normal':>11} {'min subnormal':>14}"
        f" {'eps':>9} {'all ints up to':>15} {'decades':>8}"
    )
    for fmt in formats:
        print(
            f"{fmt.name:>15} {fmt.max:>10.3g} {fmt.smallest_normal:>11.3g}"
            f" {fmt.smallest_subnormal:>14.3g} {fmt.eps:>9.3g}"
            f" {fmt.max_exact_integer:>15,d} {fmt.dynamic_range_decades:>8.1f}"
        )


print_table(formats)

# %%
# The same numbers from torch
# ---------------------------
#
# ``torch.finfo`` reads the same limits from the dtype, and ``torch.nextafter`` finds
# the smallest subnormal as the next value above zero. Every derived value agrees
# exactly, not just to the printed digits.
for fmt in formats:
    info = torch.finfo(fmt.torch_dtype)
    zero = torch.zeros((), dtype=fmt.torch_dtype)
    assert fmt.max == info.max
    assert fmt.smallest_normal == info.smallest_normal
    assert fmt.smallest_subnormal == torch.nextafter(zero, zero + 1).item()
    assert fmt.eps == info.eps
    assert fmt.bits == info.bits
    print(f"{fmt.name:>8}: max, smallest normal and subnormal, eps, bits match torch")

# %%
# "All integers up to" is not "the largest integer"
# -------------------------------------------------
#
# The lecture note this site grew from calls :math:`2^{M+1}` the largest exactly
# representable integer. It is the end of the run of consecutive integers: the next
# integer is rounded away, yet larger integers, up to the maximum itself, still exist
# in the format.
for fmt in formats:
    n = fmt.max_exact_integer
    after = torch.tensor([n, n + 1], dtype=torch.float64).to(fmt.torch_dtype)
    print(
        f"{fmt.name:>8}: {n:,d} + 1 is stored as {int(after[1]):,d};"
        f" the maximum {fmt.max:.6g} is an integer too"
    )

# %%
# Range against precision
# -----------------------
#
# Each bar spans the positive values of a format on a log scale: the light part holds
# the subnormal numbers, the dark part the normal ones. The dot marks the step
# :math:`\varepsilon` near 1. bfloat16 spans as much as float32 with float16's width;
# float16 pays for its finer steps with a far narrower range.
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(7, 2.8), layout="constrained")
for row, fmt in enumerate(formats):
    low, normal, high = (
        math.log10(fmt.smallest_subnormal),
        math.log10(fmt.smallest_normal),
        math.log10(fmt.max),
    )
    ax.barh(row, normal - low, left=low, color="C0", alpha=0.35)
    ax.barh(row, high - normal, left=normal, color="C0")
    ax.plot(math.log10(fmt.eps), row, "o", color="C3")
ax.set_yticks(range(len(formats)), [fmt.name for fmt in formats])
ax.invert_yaxis()
ax.set_xlabel("log10 of the positive value")
ax.set_title("Positive range of float32, float16 and bfloat16 (dot: eps)")
plt.show()

# %%
# Every format, from float64 down to four bits
# --------------------------------------------
#
# The same derivation covers every format in :data:`mixprec.FORMATS`: TF32, the
# float8 variants used in training, and the element and scale formats of the MX
# block formats.
print_table(mixprec.FORMATS.values())

# %%
# Checked against two references
# ------------------------------
#
# Where torch or ml_dtypes define a format, their ``finfo`` must agree with the
# derived limits. TF32 is a compute mode, not a storage type, so neither defines it.
import ml_dtypes
import numpy as np

disagreements, checked = [], {"torch": 0, "ml_dtypes": 0}
for fmt in mixprec.FORMATS.values():
    references = {
        "torch": fmt.torch_dtype,
        "ml_dtypes": getattr(ml_dtypes, fmt.name, None),
    }
    for source, dtype in references.items():
        if dtype is None:
            continue
        info = torch.finfo(dtype) if source == "torch" else ml_dtypes.finfo(dtype)
        for limit in ("max", "smallest_normal", "eps", "bits"):
            theirs = float(getattr(info, limit))
            if theirs != getattr(fmt, limit):
                disagreements.append((fmt, source, dtype, limit, theirs))
        checked[source] += 1
print(f"formats checked: {checked}")
for fmt, source, _, limit, theirs in disagreements:
    print(
        f"{source}.finfo({fmt.name}).{limit} = {theirs}, derived: {getattr(fmt, limit)}"
    )

# %%
# When a reference is wrong
# -------------------------
#
# A disagreement is settled by the reference's own arithmetic: if ``finfo`` reports
# an epsilon, then one plus that epsilon must survive a round trip through the
# dtype. Any disagreement listed above is checked here by casting.
for fmt, source, dtype, limit, theirs in disagreements:
    assert limit == "eps", "only an epsilon disagreement is expected"
    for eps in (theirs, fmt.eps):
        if source == "torch":
            stored = torch.tensor([1.0 + eps]).to(dtype).float().item()
        else:
            stored = float(np.float32(1.0 + eps).astype(dtype))
        print(f"{fmt.name} in {source}: 1 + {eps} is stored as {stored}")
        assert (stored == 1.0 + eps) == (eps == fmt.eps)

# %%
# Conclusion
# ----------
#
# Exponent bits buy range and mantissa bits buy precision. bfloat16 keeps float32's
# exponent width and so its range, but has the shortest mantissa of the three;
# float16 spends more bits on the mantissa and is finer near 1, but its largest value
# is tiny by comparison. The same two numbers, plus how a format spends its special
# bit patterns, fix the limits of every format down to four bits. Look up any format
# with :func:`mixprec.get_format`, or run ``mixprec formats`` for this table.
