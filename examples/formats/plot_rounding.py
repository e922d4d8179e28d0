"""
Rounding in action
==================

Every arithmetic result in a floating-point format is rounded to one of the format's
values. We watch that rounding at work: next to 1, on integers, at the top of
float16's range, on the decimal 0.1, and in a long running sum, where rounding to
nearest stalls and stochastic rounding does not.
"""

# %%
# One plus epsilon
# ----------------
#
# Machine epsilon ε is the gap between 1 and the next larger value, so
# :math:`1 + \varepsilon` is stored exactly. Halfway values are ties: rounding to
# nearest sends a tie to the neighbour whose last mantissa bit is 0 (the even one).
# :math:`1 + \varepsilon/2` therefore rounds down to 1, while
# :math:`1 + 3\varepsilon/2` rounds up to :math:`1 + 2\varepsilon`. The inputs are
# float64 tensors, so they hold these values exactly before :func:`mixprec.round_to`
# rounds them once.
import torch

from mixprec import explain, get_format, round_to

formats = [get_format(name) for name in ("float32", "float16", "bfloat16")]
print(f"{'format':>9} {'eps':>10}   1+eps/2  1+eps  1+3eps/2  (result as 1 + k*eps)")
for fmt in formats:
    x = 1 + torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64) * fmt.eps
    k = (round_to(x, fmt) - 1) / fmt.eps
    print(f"{fmt.name:>9} {fmt.eps:10.3g}   " + "  ".join(f"{v:7g}" for v in k))

# %%
# Integers past the exact range of bfloat16
# -----------------------------------------
#
# bfloat16's significand is short: its mantissa bits plus the implicit leading 1 can
# count only up to ``max_exact_integer``. Past that power of two the ULP (printed
# below) doubles, so every odd integer lies exactly halfway between two neighbours and
# the tie goes to the one with an even mantissa. torch's own cast to
# :class:`torch.bfloat16` agrees.
bf16 = get_format("bfloat16")
top = bf16.max_exact_integer
print(
    f"bfloat16: {bf16.mantissa_bits} mantissa bits + implicit 1, "
    f"max_exact_integer = {top}, ULP at {top} = {explain(top, bf16).ulp:g}"
)
ints = torch.arange(top - 1, top + 5, dtype=torch.float32)
ours = round_to(ints, bf16)
torchs = ints.to(torch.bfloat16).float()
for x, r, t in zip(ints.tolist(), ours.tolist(), torchs.tolist(), strict=True):
    print(f"{x:5g} -> {r:5g} (torch cast: {t:g})")
print("round_to agrees with torch:", torch.equal(ours, torchs))

# %%
# The float16 overflow boundary
# -----------------------------
#
# float16's largest value has an all-ones mantissa. The next value up would be the
# largest value plus one ULP, a power of two that float16 cannot store. Values above
# the halfway point between the two would round to it, and so does the halfway point
# itself, since the tie goes to the even mantissa: all of them become inf. Anything
# below the halfway point rounds down to the largest value.
fp16 = get_format("float16")
ulp = explain(fp16.max, fp16).ulp
halfway = fp16.max + ulp / 2
print(f"float16 max = {fp16.max:g}, ULP there = {ulp:g}, halfway = {halfway:g}")
x = torch.tensor([fp16.max, halfway - 1, halfway, fp16.max + ulp])
ours, torchs = round_to(x, fp16), x.to(torch.float16).float()
for v, r, t in zip(x.tolist(), ours.tolist(), torchs.tolist(), strict=True):
    print(f"{v:7g} -> round_to {r:7g}, torch cast {t:7g}")
print("round_to agrees with torch:", torch.equal(ours, torchs))

# %%
# 0.1 in every format
# -------------------
#
# The decimal 0.1 has no finite binary expansion, so every binary format stores a
# nearby value instead. :func:`mixprec.explain` rounds the exact decimal into each
# registered format and reports the stored value, its class and the relative error.
from mixprec import FORMATS

rows = [explain("0.1", fmt) for fmt in FORMATS.values()]
print(f"{'format':>16} {'class':>9} {'stored value':>22} {'relative error':>15}")
for e in rows:
    print(f"{e.format.name:>16} {e.kind:>9} {e.value:22.17g} {e.rel_error:+15.3e}")
tenth = torch.tensor([0.1], dtype=torch.float64)
same = all(round_to(tenth, e.format).item() == e.value for e in rows)
print("round_to(float64 0.1) gives the same stored values:", same)

# %%
# The relative errors span the whole range from float64 to float4_e2m1fn, so they are
# drawn on a logarithmic axis. A relative error of magnitude 1 means the value
# was lost entirely: it rounded to zero.
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
names = [e.format.name for e in rows]
errors = [abs(e.rel_error) for e in rows]
ax.barh(names, errors, color=["C3" if e.value == 0 else "C0" for e in rows])
ax.set_xscale("log")
ax.invert_yaxis()
ax.set_xlabel("|stored − 0.1| / 0.1")
ax.set_title("Relative error of 0.1 in each format")
plt.show()

# %%
# A running sum that stops growing
# --------------------------------
#
# We add the same small number again and again, as a reduction over many elements
# does, with an accumulator in float16 and one in bfloat16. The addend is a dyadic
# fraction that every format here stores exactly, so all the error comes from the
# accumulation. Each step forms the exact sum in float64 and rounds it once with
# :func:`mixprec.round_to`, as a low-precision adder would. This simulation is
# thousands of tiny sequential steps, so it runs on the CPU.
STEPS = 4096
addend = 7 * 2.0**-13
c = torch.tensor([addend], dtype=torch.float64)
print(
    f"addend {addend!r}, exact in every format:",
    all(round_to(c, f).item() == addend for f in formats),
)
nearest = {fmt.name: torch.zeros(1, dtype=torch.float64) for fmt in formats[1:]}
fp32_sum = torch.zeros(1, dtype=torch.float32)
trace = {name: torch.empty(STEPS) for name in ("float32", *nearest)}
for step in range(STEPS):
    fp32_sum = fp32_sum + c.float()
    trace["float32"][step] = fp32_sum
    for fmt in formats[1:]:
        nearest[fmt.name] = round_to(nearest[fmt.name] + c, fmt)
        trace[fmt.name][step] = nearest[fmt.name]
true_sum = addend * torch.arange(1, STEPS + 1, dtype=torch.float64)

# %%
# Where and why it stalls
# -----------------------
#
# Once the addend is at most half the ULP of the running sum, the sum plus the
# addend rounds back to the sum: the sum never grows again. With an addend ``c`` and
# ``M`` mantissa bits, that first happens at the power of two
# :math:`2^{\lceil \log_2 c \rceil + M + 1}`. We find where each sum stopped
# growing, its ULP there from :func:`mixprec.explain`, and the prediction, for
# float32 as well.
import math

stall = {}
for fmt in formats:
    predicted = 2.0 ** (math.ceil(math.log2(addend)) + fmt.mantissa_bits + 1)
    run = trace[fmt.name]
    still = (run[1:] == run[:-1]).nonzero()
    if len(still):
        additions = int(still[0]) + 1
        value = run[additions - 1].item()
        stall[fmt.name] = (additions, value)
        half_ulp = explain(value, fmt).ulp / 2
        print(
            f"{fmt.name:>8}: stops at {value:g} after {additions} additions "
            f"(half ULP {half_ulp:.3g} >= addend {addend:.3g}); "
            f"predicted {predicted:g}"
        )
    else:
        print(
            f"{fmt.name:>8}: never stops in {STEPS} additions; predicted at "
            f"{predicted:g}, after about {predicted / addend:.3g} additions"
        )
for name in trace:
    print(f"{name:>8}: final sum {trace[name][-1]:.6g} (true {true_sum[-1]:.6g})")

# %%
# Plotting the running sums against the exact sum shows the float16 and bfloat16
# accumulators going flat at the points found above (circles), while float32 follows
# the exact line. Before it stalls, a low-precision sum can even run ahead of the
# exact one, as float16 does here: each addition moves it by a whole number of ULPs,
# which can be more than the addend.
steps = torch.arange(1, STEPS + 1)
fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
for i, name in enumerate(trace):
    ax.plot(steps, trace[name], color=f"C{i}", lw=2, label=name)
    if name in stall:
        ax.plot(*stall[name], "o", color=f"C{i}", mfc="none", ms=9)
ax.plot(steps, true_sum, "k--", lw=1, label="exact")
ax.set_xlabel("number of additions")
ax.set_ylabel("running sum")
ax.set_title("Sequential sum of a constant, rounded to nearest after each step")
ax.legend()
plt.show()

# %%
# What torch's own reductions do
# ------------------------------
#
# Because a low-precision accumulator stalls like this, torch's reduction kernels
# accumulate 16-bit inputs in a wider type. We sum the same numbers
# stored as a float16 tensor with :func:`torch.sum` on the device from
# :func:`mixprec.pick_device`. Reduction kernels differ by device, so this shows only
# what the current device does.
from mixprec import pick_device

device = pick_device()
addends = torch.full((STEPS,), addend, dtype=torch.float16, device=device)
total = addends.sum()
print(
    f"device {device}: torch.sum of the float16 tensor = {total.item():g} "
    f"({total.dtype}); exact sum rounded once to float16 = "
    f"{round_to(true_sum[-1:], fp16).item():g}"
)

# %%
# Stochastic rounding
# -------------------
#
# Stochastic rounding rounds up with probability equal to the distance from the lower
# neighbour divided by the spacing, so each rounded sum is correct on average. An
# addend below half an ULP is no longer always lost: it moves the sum up one ULP with
# a small probability. We run many independent accumulators at once, one per lane of
# a tensor, with a seeded :class:`torch.Generator`.
LANES = 64
generator = torch.Generator().manual_seed(0)
sr = {fmt.name: torch.zeros(LANES, dtype=torch.float64) for fmt in formats[1:]}
sr_trace = {name: torch.empty(STEPS, LANES) for name in sr}
for step in range(STEPS):
    for fmt in formats[1:]:
        sr[fmt.name] = round_to(
            sr[fmt.name] + c, fmt, rounding="stochastic", generator=generator
        )
        sr_trace[fmt.name][step] = sr[fmt.name]
for name, run in sr_trace.items():
    final = run[-1]
    print(
        f"{name:>8}: {LANES} sums end at mean {final.mean():.4g} "
        f"± {final.std():.3g} (std); exact {true_sum[-1]:.4g}"
    )

# %%
# On the left, the mean of the stochastically rounded sums follows the exact line
# where rounding to nearest (dotted) stalls. On the right, the deviation from the
# exact sum shows the price: each sum carries random noise, and the band of one
# standard deviation widens with the number of steps and with the ULP of the format.
fig, (ax, dev) = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
for i, (name, run) in enumerate(sr_trace.items(), start=1):
    ax.plot(
        steps, run.mean(dim=1), color=f"C{i}", lw=2, label=f"{name}, stochastic (mean)"
    )
    ax.plot(steps, trace[name], ":", color=f"C{i}", label=f"{name}, nearest")
    err = run - true_sum[:, None].float()
    mean, std = err.mean(dim=1), err.std(dim=1)
    dev.plot(steps, mean, color=f"C{i}", label=f"{name}, mean")
    dev.fill_between(
        steps, mean - std, mean + std, color=f"C{i}", alpha=0.3, label=f"{name}, ± std"
    )
ax.plot(steps, true_sum, "k--", lw=1, label="exact")
dev.axhline(0, color="k", ls="--", lw=1)
ax.set_xlabel("number of additions")
ax.set_ylabel("running sum")
ax.legend()
dev.set_xlabel("number of additions")
dev.set_ylabel("running sum − exact sum")
dev.legend()
fig.suptitle(f"Sequential sum with stochastic rounding, {LANES} seeded runs")
plt.show()

# %%
# Conclusion
# ----------
#
# Rounding to nearest is the best choice for a single operation but fails for long
# accumulations: once the addends fall below half an ULP of the sum they vanish. That
# is why reductions, losses and optimizer states stay in float32. Stochastic
# rounding keeps low-precision sums unbiased at the cost of noise. Try your own
# values with :func:`mixprec.explain` and :func:`mixprec.round_to`.

# sphinx_gallery_thumbnail_number = 2
