"""
Range versus precision
======================

The exponent bits of a format decide its range, the mantissa bits how far apart
neighbouring values are. We plot the spacing between neighbours against magnitude
for every format in ``mixprec.FORMATS``, then compare float32, bfloat16 and
float16 in numbers.
"""

# %%
# The spacing between neighbours
# ------------------------------
#
# Between :math:`2^k` and :math:`2^{k+1}` a format with :math:`M` mantissa bits
# has :math:`2^M` evenly spaced values, so the unit in the last place is
# :math:`\mathrm{ulp}(x) = 2^{\max(\lfloor \log_2 x \rfloor,\, e_{\min}) - M}`:
# below the smallest normal value :math:`2^{e_{\min}}` the spacing stays at its
# value there. We compute this staircase from each format's fields, from its
# smallest positive value to its largest.
import numpy as np

import mixprec


def ulp_staircase(fmt):
    """Edges of the steps and the ULP on each step, from the format's fields."""
    k = np.arange(fmt.min_exponent, fmt.max_exponent + 1)
    starts, ulps = np.ldexp(1.0, k), np.ldexp(1.0, k - fmt.mantissa_bits)
    if fmt.has_subnormals:
        starts = np.r_[fmt.smallest_subnormal, starts]
        ulps = np.r_[fmt.smallest_subnormal, ulps]
    return np.r_[starts, fmt.max], ulps


# %%
# For every format of at most 16 bits we check the staircase against the true
# gaps: decode every bit pattern with :func:`mixprec.decode`, sort the positive
# values and take the difference between each value and the next.
import torch

checked = {}
for fmt in mixprec.FORMATS.values():
    if fmt.bits <= 16:
        v = mixprec.decode(torch.arange(2**fmt.bits), fmt).numpy()
        v = np.unique(v[np.isfinite(v) & (v > 0)])
        edges, ulps = ulp_staircase(fmt)
        step = np.searchsorted(edges, v[:-1], side="right") - 1
        checked[fmt.name] = bool(np.array_equal(ulps[step], np.diff(v)))
print(f"staircase equals the decoded gaps: {all(checked.values())}")
print(f"checked: {', '.join(checked)}")

# %%
# ULP against magnitude
# ---------------------
#
# Every format on one set of axes would be unreadable, so we use two panels: (a) the
# wide formats and the e8m0 scale format, (b) the narrow element formats. The
# formats of the lecture note this site grew from, and the two common float8
# formats, are drawn thick; variants are thin, in the colour of the format they
# vary.
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

WIDE = ["float64", "float32", "tf32", "float16", "bfloat16", "float8_e8m0fnu"]
PANELS = [WIDE, [name for name in mixprec.FORMATS if name not in WIDE]]
STYLE = {
    "float64": dict(color="0.6", lw=1.0),
    "float32": dict(color="C0", lw=2.2),
    "tf32": dict(color="C4", lw=1.2, ls="--"),
    "float16": dict(color="C1", lw=2.2),
    "bfloat16": dict(color="C2", lw=2.2),
    "float8_e8m0fnu": dict(color="C5", lw=1.2, ls=":"),
    "float8_e4m3fn": dict(color="C0", lw=2.2),
    "float8_e4m3fnuz": dict(color="C0", lw=1.2, ls=":"),
    "float8_e5m2": dict(color="C3", lw=2.2),
    "float8_e5m2fnuz": dict(color="C3", lw=1.2, ls=":"),
    "float6_e3m2fn": dict(color="C4", lw=1.2, ls="--"),
    "float6_e2m3fn": dict(color="C9", lw=1.2, ls="--"),
    "float4_e2m1fn": dict(color="C1", lw=2.2),
}
ENDS = [
    Line2D([], [], color="k", ls="", marker="s", label=r"$\min\{x > 0\}$"),
    Line2D([], [], color="k", ls="", marker="o", label=r"$\max$"),
]

# %%
# One panel draws a curve per format from its staircase, marks the smallest
# positive value with a square (smaller values round to zero) and the largest
# with a circle (larger values overflow). The limits follow every format but
# float64, which runs past both ends of panel (a).


def draw_panel(ax, names, curve, drawstyle="default", **legend):
    """Plot curve(edges, ulps) -> (x, y) for each format, with its end markers.

    The horizontal limits follow every format but float64, whose range dwarfs
    the others; only the part of float64's curve inside them is drawn.
    """
    curves = {name: curve(*ulp_staircase(mixprec.FORMATS[name])) for name in names}
    x_all = [x for name, (x, _) in curves.items() if name != "float64"]
    low, high = min(x.min() for x in x_all), max(x.max() for x in x_all)
    pad = (high / low) ** 0.03
    limits = [(low / pad, high * pad)]
    inside = {
        name: (x >= limits[0][0]) & (x <= limits[0][1])
        for name, (x, _) in curves.items()
    }
    y_in = [y[inside[name]] for name, (_, y) in curves.items()]
    low, high = min(y.min() for y in y_in), max(y.max() for y in y_in)
    pad = (high / low) ** 0.03
    limits.append((low / pad, high * pad))
    for name, (x, y) in curves.items():
        keep = inside[name]
        on_top = 2.5 if STYLE[name]["lw"] < 2 else 2  # thin lines over thick ones
        style = dict(drawstyle=drawstyle, zorder=on_top, **STYLE[name])
        ax.loglog(x[keep], y[keep], label=name, **style)
        for i, marker in ((0, "s"), (-1, "o")):
            if keep[i]:
                ax.plot(x[i], y[i], marker, color=STYLE[name]["color"], ms=5)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    ax.axvline(1.0, color="0.3", lw=0.6)
    ax.set_xlabel(r"$|x|$")
    ax.grid(True, lw=0.3, alpha=0.5)
    handles = [*ax.get_legend_handles_labels()[0], *ENDS]
    ax.legend(handles=handles, fontsize="small", **legend)


# %%
# On log-log axes every step of the staircase lies on a line of slope one, lower
# for longer mantissas; the vertical line marks :math:`|x| = 1`, where the spacing
# is the format's machine epsilon.


def staircase(edges, ulps):
    return edges, np.r_[ulps, ulps[-1]]


fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), layout="constrained")
for ax, names, panel in zip(axes, PANELS, "ab", strict=True):
    draw_panel(ax, names, staircase, drawstyle="steps-post", loc="upper left")
    ax.set_title(f"({panel})")
    ax.set_ylabel(r"$\mathrm{ulp}(x)$")
fig.suptitle("Spacing between neighbouring values against magnitude")
plt.show()

# %%
# Relative spacing
# ----------------
#
# Dividing by :math:`|x|` turns each staircase into a sawtooth: in the normal
# range :math:`\mathrm{ulp}(x)/|x|` stays between :math:`2^{-M-1}` and
# :math:`2^{-M}` whatever the magnitude, so a format's relative precision is set by
# its mantissa alone. In the subnormal range the spacing no longer shrinks with
# :math:`|x|`, and the relative spacing climbs to one at the smallest positive
# value, where the next value down is zero. The ticks on the vertical axes mark
# :math:`2^{-M}` of the formats in each panel.


def sawtooth(edges, ulps):
    start, end = edges[:-1], edges[1:]
    x = np.column_stack([start, end]).ravel()
    return x, np.column_stack([ulps / start, ulps / end]).ravel()


fig, axes = plt.subplots(1, 2, figsize=(10, 5.6), layout="constrained")
for ax, names, panel in zip(axes, PANELS, "ab", strict=True):
    draw_panel(
        ax, names, sawtooth, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncols=3
    )
    ax.set_title(f"({panel})")
    ax.set_yscale("log", base=2)
    ax.set_yticks(
        sorted({1.0, *(2.0 ** -mixprec.FORMATS[n].mantissa_bits for n in names)})
    )
    ax.minorticks_off()
    ax.set_ylabel(r"$\mathrm{ulp}(x)\,/\,|x|$")
fig.suptitle("Relative spacing between neighbouring values against magnitude")
plt.show()

# %%
# The ends of each staircase
# --------------------------
#
# The numbers behind the markers, read from each :class:`mixprec.FloatFormat`:
# the smallest positive (subnormal) value, the smallest normal value, the largest
# value, the spacing just above one and the number of decades between the two
# ends.
print(
    f"{'format':<16} {'min > 0':>10} {'min normal':>10} {'max':>10}"
    f" {'eps':>10} {'decades':>8}"
)
for fmt in mixprec.FORMATS.values():
    print(
        f"{fmt.name:<16} {fmt.smallest_subnormal:>10.3g} {fmt.smallest_normal:>10.3g}"
        f" {fmt.max:>10.3g} {fmt.eps:>10.3g} {fmt.dynamic_range_decades:>8.1f}"
    )

# %%
# bfloat16 against float32
# ------------------------
#
# bfloat16 keeps float32's exponent field and drops most of its mantissa. The
# ratios below show its smallest normal value equal to float32's and its largest
# value short of float32's only by a fraction of a step, while its spacing near
# one is coarser by the ratio of the two epsilons.
fp32, bf16, fp16 = (mixprec.get_format(n) for n in ("float32", "bfloat16", "float16"))
print(f"bfloat16.max / float32.max                         = {bf16.max / fp32.max:.6f}")
ratio = bf16.smallest_normal / fp32.smallest_normal
print(f"bfloat16.smallest_normal / float32.smallest_normal = {ratio:g}")
print(f"bfloat16.eps / float32.eps                         = {bf16.eps / fp32.eps:g}")

# %%
# float16 against bfloat16
# ------------------------
#
# float16 spends more bits on the mantissa and fewer on the exponent: near one its
# steps are finer than bfloat16's, but its largest value is smaller and its
# smallest normal value larger by the factors printed below.
print(f"bfloat16.eps / float16.eps                         = {bf16.eps / fp16.eps:g}")
print(f"bfloat16.max / float16.max                         = {bf16.max / fp16.max:.3g}")
ratio = fp16.smallest_normal / bf16.smallest_normal
print(f"float16.smallest_normal / bfloat16.smallest_normal = {ratio:.3g}")

# %%
# Three probes make the comparison concrete. Each is built from float16's own
# limits: a value just above one that float16 resolves, a value twice its largest
# and a value a quarter of its smallest positive one. :func:`mixprec.round_to`
# rounds them into each format.
probes = torch.tensor(
    [1 + 2 * fp16.eps, 2 * fp16.max, fp16.smallest_subnormal / 4], dtype=torch.float64
)
print(f"{'probe':<10} " + " ".join(f"{p:>12.6g}" for p in probes.tolist()))
for fmt in (fp32, bf16, fp16):
    rounded = mixprec.round_to(probes, fmt).tolist()
    print(f"{fmt.name:<10} " + " ".join(f"{r:>12.6g}" for r in rounded))

# %%
# Conclusion
# ----------
#
# The exponent width sets where a format's staircase starts and ends; the mantissa
# width sets how far below the line :math:`\mathrm{ulp}(x) = |x|` it runs, the
# same at every magnitude in the normal range. bfloat16 gives up float32's
# precision but keeps its range; float16 keeps more precision but overflows and
# underflows far sooner, which is why float16 training uses loss scaling (see
# :ref:`sphx_glr_auto_examples_amp_plot_dynamic_loss_scaling.py`).
# :func:`mixprec.explain` gives the ULP and the neighbours of any single value.
