"""
Block scaling (MX)
==================

The OCP Microscaling (MX) formats store a tensor as blocks of small floats, each
block with one shared power-of-two scale. We implement the quantizer of the OCP MX v1.0
specification with :func:`mixprec.round_to` and compare it with one scale for the
whole tensor, on a weight matrix with a few outliers.
"""

# %%
# The element formats and the shared scale
# ----------------------------------------
#
# MXFP8 uses E4M3 (or E5M2) elements, MXFP6 uses E3M2 or E2M3, and MXFP4 uses E2M1.
# Each block of ``BLOCK`` elements (the specification's block size) shares one scale
# in E8M0, an unsigned format with only an exponent field: its values are the powers
# of two in the range printed below. The quantizer needs each element format's
# largest value and its exponent, ``max_exponent``.
import torch

from mixprec import get_format, pick_device, round_to

device = pick_device()
BLOCK = 32
ELEMENTS = {
    "MXFP8 (E4M3)": get_format("float8_e4m3fn"),
    "MXFP6 (E3M2)": get_format("float6_e3m2fn"),
    "MXFP6 (E2M3)": get_format("float6_e2m3fn"),
    "MXFP4": get_format("float4_e2m1fn"),
}
e8m0 = get_format("float8_e8m0fnu")
print(f"{'MX format':>13} {'element':>14} {'bits':>4} {'max':>6} {'max_exponent':>12}")
for mx, fmt in ELEMENTS.items():
    print(f"{mx:>13} {fmt.name:>14} {fmt.bits:4} {fmt.max:6g} {fmt.max_exponent:12}")
print(
    f"block of {BLOCK} elements; scale: {e8m0.name}, {e8m0.bits} bits, "
    f"2**{e8m0.min_exponent} to 2**{e8m0.max_exponent}"
)

# %%
# A weight matrix with outliers
# -----------------------------
#
# A seeded normal matrix plays the part of a layer's weights. A handful of entries
# are made many times larger than the rest, like the outlier features seen in large
# language models.
torch.manual_seed(0)
ROWS, COLS, OUTLIERS, STD = 256, 256, 8, 0.02
w = STD * torch.randn(ROWS, COLS)
where = torch.randperm(w.numel())[:OUTLIERS]
big = STD * torch.empty(OUTLIERS).uniform_(20, 50)
w.view(-1)[where] = big * torch.randn(OUTLIERS).sign()
w = w.to(device)
print(
    f"{w.numel()} weights, std {w.std():.4f}, largest |w| {w.abs().max():.3f} "
    f"({w.abs().max() / STD:.0f} standard deviations)"
)

# %%
# The MX quantizer
# ----------------
#
# For each block, the specification takes the largest magnitude ``amax`` and sets
# the scale to :math:`X = 2^{\lfloor \log_2 \mathrm{amax} \rfloor - e_{\max}}`, where
# :math:`e_{\max}` is the element format's ``max_exponent``. The block's largest
# element then lands in the element format's top binade. Each element becomes
# ``round_to(x / X, element)``. :func:`torch.frexp` gives the floor of the logarithm
# exactly, and dividing by a power of two is exact, so all the error comes from
# rounding the elements.
import math


def mx_quantize(x, fmt, block=BLOCK, overflow="saturate", round_up=False):
    """Quantize and dequantize x in blocks along its last dimension."""
    blocks = x.reshape(-1, block)
    amax = blocks.abs().amax(dim=1, keepdim=True).clamp(min=torch.finfo(x.dtype).tiny)
    if round_up:  # a variant, used further down: amax / X never exceeds fmt.max
        m, e = torch.frexp(amax / fmt.max)
        shared = e - (m == 0.5).int()
    else:  # OCP MX v1.0: floor(log2(amax)) - emax, since amax = m * 2**e, m in [.5, 1)
        _, e = torch.frexp(amax)
        shared = e - 1 - fmt.max_exponent
    shared = shared.clamp(e8m0.min_exponent, e8m0.max_exponent)
    scale = torch.ldexp(torch.ones_like(amax), shared)
    elements = round_to(blocks / scale, fmt, overflow=overflow)
    return (elements * scale).reshape(x.shape), scale


# %%
# The scales are powers of two in E8M0's range, so rounding them into E8M0 changes
# nothing: :func:`mixprec.round_to` returns them unchanged, and
# :func:`mixprec.encode` gives the code each block stores: the shared exponent plus
# the bias.
from mixprec import encode

fp4 = ELEMENTS["MXFP4"]
_, scale = mx_quantize(w, fp4)
print(
    f"{scale.numel()} blocks; round_to(scale, 'e8m0') == scale:",
    torch.equal(round_to(scale, e8m0), scale),
)
codes = encode(scale[:4].flatten(), e8m0).tolist()
exps = [int(math.log2(s)) for s in scale[:4].flatten().tolist()]
print(f"first blocks: shared exponents {exps} -> E8M0 codes {codes} (bias {e8m0.bias})")

# %%
# Why the conversion saturates
# ----------------------------
#
# With the floor in the scale, a block's largest element is scaled into
# :math:`[2^{e_{\max}}, 2^{e_{\max}+1})`, which reaches past the element format's
# largest value. The specification clamps such elements to the largest value. Rounding
# them as IEEE overflow would do instead gives NaN in E4M3, which has NaN but no inf;
# the FP6 and FP4 formats have neither, so :func:`mixprec.round_to` clamps them either
# way.
for mx, fmt in ELEMENTS.items():
    _, scale = mx_quantize(w, fmt)
    beyond = (w.reshape(-1, BLOCK).abs() / scale > fmt.max).sum().item()
    q_ieee, _ = mx_quantize(w, fmt, overflow="inf")
    print(
        f"{mx:>13}: {beyond:5} elements beyond max; with overflow='inf': "
        f"{torch.isnan(q_ieee).sum().item()} NaN, "
        f"{torch.isinf(q_ieee).sum().item()} inf"
    )

# %%
# One scale for the whole tensor
# ------------------------------
#
# The simplest alternative maps the tensor's largest magnitude to the element
# format's largest value with one float32 scale. Every element shares the scale that
# the outliers choose.


def tensor_quantize(x, fmt):
    """Quantize and dequantize x with one scale: amax maps to fmt.max."""
    scale = x.abs().max() / fmt.max
    return round_to(x / scale, fmt, overflow="saturate") * scale, scale


# %%
# Quantization error
# ------------------
#
# We measure the relative root-mean-square error,
# :math:`\lVert q - w \rVert_2 / \lVert w \rVert_2`, and the share of weights that
# round to zero, for each element format with one scale per block and with one scale
# per tensor.
def rel_rms(q, x):
    return ((q - x).norm() / x.norm()).item()


results = {}
print(f"{'format':>13} {'per block':>10} {'per tensor':>11}   zeros: block / tensor")
for mx, fmt in ELEMENTS.items():
    qb, _ = mx_quantize(w, fmt)
    qt, _ = tensor_quantize(w, fmt)
    results[mx] = (rel_rms(qb, w), rel_rms(qt, w))
    zeros = [(q == 0).float().mean().item() for q in (qb, qt)]
    print(
        f"{mx:>13} {results[mx][0]:10.3%} {results[mx][1]:11.3%}   "
        f"{zeros[0]:.1%} / {zeros[1]:.1%}"
    )

# %%
# The bar chart puts the two columns side by side on a logarithmic axis.
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
pos = torch.arange(len(results)).float()
ax.bar(pos - 0.2, [r[0] for r in results.values()], 0.4, label=f"per block ({BLOCK})")
ax.bar(pos + 0.2, [r[1] for r in results.values()], 0.4, label="per tensor")
ax.set_xticks(pos.tolist(), list(results))
ax.set_yscale("log")
ax.set_ylabel("relative RMS error")
ax.set_title("Quantization error of a weight matrix with outliers")
ax.legend()
plt.show()

# %%
# Block scaling is not a win for every element format here. MXFP8's E4M3 and the
# E3M2 format span enough binades to hold the whole tensor with one scale, while the
# floor in the MX scale clips the largest elements of many blocks, as counted above.
# A variant that rounds the scale up, so that no element exceeds the element
# format's largest value, removes that clipping; it is not what the v1.0
# specification prescribes.
print(f"{'format':>13} {'MX scale':>9} {'rounded up':>11} {'per tensor':>11}")
for mx, fmt in ELEMENTS.items():
    up = rel_rms(mx_quantize(w, fmt, round_up=True)[0], w)
    print(f"{mx:>13} {results[mx][0]:9.3%} {up:11.3%} {results[mx][1]:11.3%}")

# %%
# Why one scale fails
# -------------------
#
# On the left, the shared exponents of the MXFP4 blocks: most blocks hold only
# ordinary weights and get a small scale, and the outliers raise the scale of their
# own blocks only. The per-tensor scale (line) sits far above most blocks. On the
# right, the scaled magnitudes :math:`|w| / X` in MXFP4: with one scale most of them
# fall below half the smallest subnormal, where they round to zero.
_, block_scale = mx_quantize(w, fp4)
_, tensor_scale = tensor_quantize(w, fp4)
scaled = {
    "per block": (w.reshape(-1, BLOCK).abs() / block_scale).flatten(),
    "per tensor": (w.abs() / tensor_scale).flatten(),
}
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
exponents = block_scale.log2().flatten().cpu().numpy()
edges = torch.arange(exponents.min() - 1.5, tensor_scale.log2().item() + 1.5).numpy()
left.hist(exponents, bins=edges, rwidth=0.8)
left.axvline(tensor_scale.log2().item(), color="C1", lw=2, label="per tensor")
left.set_xlabel("log2 of scale X")
left.set_ylabel("number of blocks")
left.set_yscale("log")
left.legend()
for i, (name, v) in enumerate(scaled.items()):
    right.hist(
        v[v > 0].log2().cpu().numpy(), bins=60, alpha=0.6, color=f"C{i}", label=name
    )
limits = {"min subnormal / 2": fp4.smallest_subnormal / 2, "max": fp4.max}
for (name, limit), style in zip(limits.items(), ("--", ":"), strict=True):
    right.axvline(math.log2(limit), color="k", ls=style, lw=1, label=name)
right.set_xlabel("log2 of |w| / X")
right.set_ylabel("number of weights")
right.legend()
fig.suptitle("MXFP4 scales and scaled weights, per block and per tensor")
plt.show()

# %%
# Block size
# ----------
#
# Smaller blocks follow the local magnitude more closely, but every block stores its
# own E8M0 scale, and in every block the largest elements may clip. We quantize to
# MXFP4 with blocks of several sizes, up to the whole tensor (one power-of-two scale),
# and count the storage in bits per weight. Across the small block sizes the error
# changes little, while one block for the whole tensor is nearly as bad as one
# float32 scale.
block_sizes = [8, 16, 32, 64, 128, w.numel()]
errors = [rel_rms(mx_quantize(w, fp4, block=b)[0], w) for b in block_sizes]
bits = [fp4.bits + e8m0.bits / b for b in block_sizes]
per_tensor = results["MXFP4"][1]
for b, n, err in zip(block_sizes, bits, errors, strict=True):
    print(f"block {b:6}: {n:.3f} bits per weight, relative RMS error {err:.3%}")
print(f"one float32 scale per tensor: relative RMS error {per_tensor:.3%}")

fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
pos = range(len(block_sizes))
ax.plot(pos, errors, "o-", label="MXFP4, E8M0 scale per block")
ax.axhline(per_tensor, color="C1", ls="--", label="MXFP4, float32 scale per tensor")
ax.set_xticks(pos, [f"{b}\n{n:g}" for b, n in zip(block_sizes, bits, strict=True)])
ax.set_xlabel("block size (elements) / bits per weight")
ax.set_ylabel("relative RMS error")
ax.set_title("MXFP4 error against block size")
ax.legend()
plt.show()

# %%
# Conclusion
# ----------
#
# A shared scale per small block lets elements of a few bits cover a tensor whose
# magnitudes span many binades: an outlier only coarsens its own block. The gain is
# largest for the element formats with the fewest exponent bits; formats with a wide
# exponent range can do as well with one scale per tensor. The power-of-two E8M0
# scale makes scaling exact and cheap, and saturating conversion keeps the top of
# each block finite. See :func:`mixprec.round_to` for the rounding and the
# :doc:`rounding example <plot_rounding>` for what rounding does to sums.

# sphinx_gallery_thumbnail_number = 2
