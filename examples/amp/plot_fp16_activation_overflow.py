"""
FP16 overflow of large activations
==================================

Large transformers trained in bfloat16 often develop a few outlier feature channels
whose activations are far larger than the rest. bfloat16 has float32's exponent range
and stores them with a rounding error; float16 cannot store them at all. We build a
small block with such an outlier, run the same forward pass in float32, bfloat16 and
float16, and find where float16 breaks.
"""

# %%
# A block with an outlier channel
# -------------------------------
#
# An embedding, an MLP with a residual connection, a LayerNorm, a classifier head and
# a softmax. We plant an outlier by hand: one hidden unit of the MLP gets its input
# weights and its output weight into one residual channel multiplied by a gain, so
# that channel carries very large values for the tokens that excite the unit.
import copy

import torch
from torch import nn

import mixprec

device = mixprec.pick_device()
WIDTH, HIDDEN_UNIT, OUTLIER_CHANNEL, GAIN = 64, 7, 3, 4000.0


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(16, WIDTH)
        self.up = nn.Linear(WIDTH, 4 * WIDTH)
        self.act = nn.GELU()
        self.down = nn.Linear(4 * WIDTH, WIDTH)
        self.residual = nn.Identity()
        self.norm = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, 10)
        self.softmax = nn.Softmax(dim=-1)
        self.skip_scale = 1.0

    def forward(self, x):
        x = self.embed(x)
        h = self.residual(self.down(self.act(self.up(x))) + self.skip_scale * x)
        return self.softmax(self.head(self.norm(h)))


torch.manual_seed(0)
model = Block().eval()
with torch.no_grad():
    model.up.weight[HIDDEN_UNIT].mul_(GAIN)
    model.up.bias[HIDDEN_UNIT].mul_(GAIN)
    model.down.weight[OUTLIER_CHANNEL, HIDDEN_UNIT].mul_(GAIN)
tokens = torch.randn(32, 16, device=device)

# %%
# Recording every layer
# ---------------------
#
# Forward hooks record, for each layer in execution order, the largest finite
# magnitude of its output and how many of its values are inf or NaN. The same
# weights are cast to each format, as a low-precision inference deployment would.
LAYERS = ("embed", "up", "act", "down", "residual", "norm", "head", "softmax")


def run(model, dtype):
    model = copy.deepcopy(model).to(device=device, dtype=dtype)
    stats = {}

    def hook(name):
        def record(module, args, out):
            out = out.detach().float()
            finite = out[torch.isfinite(out)]
            stats[name] = dict(
                max=finite.abs().max().item() if finite.numel() else float("nan"),
                inf=torch.isinf(out).sum().item(),
                nan=torch.isnan(out).sum().item(),
            )

        return record

    for name in LAYERS:
        getattr(model, name).register_forward_hook(hook(name))
    with torch.no_grad():
        probs = model(tokens.to(dtype)).float()
    return probs, stats


FORMATS = (torch.float32, torch.bfloat16, torch.float16)
NAMES = {dtype: str(dtype).removeprefix("torch.") for dtype in FORMATS}
results = {dtype: run(model, dtype) for dtype in FORMATS}

# %%
# The largest activation against float16's range
# ----------------------------------------------
#
# float16's largest finite value comes from :func:`mixprec.get_format`. The table
# lists each layer's largest finite magnitude and its counts of inf and NaN. In
# float32 the down-projection and the residual stream exceed float16's max, while
# every other layer stays far below it.
fp16_max = mixprec.get_format("float16").max
print(f"float16 max: {fp16_max:g}")
print(f"{'layer':9s} " + " ".join(f"{NAMES[d]:>24s}" for d in FORMATS))
for name in LAYERS:
    cells = []
    for dtype in FORMATS:
        s = results[dtype][1][name]
        cells.append(f"{s['max']:10.4g} (inf {s['inf']:3d} NaN {s['nan']:3d})")
    print(f"{name:9s} " + " ".join(f"{c:>24s}" for c in cells))

# %%
# Where the first inf appears
# ---------------------------
#
# We walk the layers in execution order and report the first one whose float16 output
# is not finite, then what the non-finite values turn into further on.
stats16 = results[torch.float16][1]
first = next(n for n in LAYERS if stats16[n]["inf"] + stats16[n]["nan"] > 0)
print(f"first non-finite float16 output: {first} ({stats16[first]['inf']} inf)")
for name in LAYERS[LAYERS.index(first) :]:
    s = stats16[name]
    print(f"  {name:9s} inf {s['inf']:4d}  NaN {s['nan']:4d}")

# %%
# Plotting it
# -----------
#
# Bars show each layer's largest finite magnitude per format; a hatched bar marks a
# float16 layer that produced inf or NaN. The horizontal line is float16's max.
import matplotlib.pyplot as plt
import numpy as np

x = np.arange(len(LAYERS))
top = 10 * max(results[torch.float32][1][n]["max"] for n in LAYERS)
fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
for i, dtype in enumerate(FORMATS):
    stats = results[dtype][1]
    bad = [stats[n]["inf"] + stats[n]["nan"] > 0 for n in LAYERS]
    heights = [top if b else stats[n]["max"] for n, b in zip(LAYERS, bad, strict=True)]
    bars = ax.bar(x + (i - 1) * 0.27, heights, 0.27, label=NAMES[dtype])
    for bar, b, n in zip(bars, bad, LAYERS, strict=True):
        if b:
            bar.set_hatch("//")
            label = "NaN" if stats[n]["nan"] else "inf"
            ax.text(bar.get_x(), top * 1.3, label, fontsize=8)
ax.axhline(fp16_max, color="k", ls="--", lw=1, label=f"float16 max = {fp16_max:g}")
ax.set_yscale("log")
ax.set_ylim(top=top * 10)
ax.set_xticks(x, LAYERS)
ax.set_xlabel("layer (execution order)")
ax.set_ylabel("max |activation|")
ax.set_title("Largest activation per layer: float32, bfloat16, float16")
ax.legend(loc="upper left", fontsize=8)
plt.show()

# %%
# The outputs
# -----------
#
# bfloat16 rounds the outlier but keeps it, so its probabilities differ from float32's
# only by rounding error. In float16 the inf in the residual stream meets LayerNorm,
# whose mean and variance over the row become inf and :math:`\infty - \infty` gives
# NaN, and the NaN spreads through the head and the softmax to every output of the
# affected tokens.
reference = results[torch.float32][0]
for dtype in FORMATS[1:]:
    probs = results[dtype][0]
    bad_rows = (~torch.isfinite(probs)).any(dim=1).sum().item()
    error = (probs - reference).abs().max().item()
    same = (probs.argmax(1) == reference.argmax(1)).float().mean().item()
    print(
        f"{NAMES[dtype]:8s} rows with NaN/inf: {bad_rows:2d} of {len(probs)}, "
        f"max |p - p_fp32| {error:.2e}, same argmax {same:.0%}"
    )

# %%
# The same happens under autocast
# -------------------------------
#
# Under float16 autocast the linear layers still produce float16, so the
# down-projection overflows before any float32 op can help. Which later ops run in
# float32 under autocast differs between devices; the count below is what this
# device does.
with torch.no_grad(), torch.amp.autocast(device.type, dtype=torch.float16):
    auto = model.to(device)(tokens)
    down = model.down(model.act(model.up(model.embed(tokens))))
print(
    f"autocast on {device.type}: down-projection dtype {down.dtype}, "
    f"inf {torch.isinf(down).sum().item()}; output NaN {auto.isnan().sum().item()}"
)

# %%
# Remedy: rescale before the normalization
# ----------------------------------------
#
# LayerNorm divides by the row's standard deviation, so scaling its input by
# :math:`1/s` changes its output only through its small :math:`\epsilon`. We fold
# :math:`1/s` into the down-projection and the skip connection, with :math:`s` the
# smallest power of two that brings the float32 maximum under float16's max with one
# power of two to spare.
peak = results[torch.float32][1]["residual"]["max"]
scale = 2.0 ** (np.ceil(np.log2(peak / fp16_max)) + 1)
rescaled = copy.deepcopy(model).cpu()
with torch.no_grad():
    rescaled.down.weight.div_(scale)
    rescaled.down.bias.div_(scale)
rescaled.skip_scale = 1 / scale
probs, stats = run(rescaled, torch.float16)
error = (probs - reference).abs().max().item()
print(
    f"s = {scale:g}: residual max {stats['residual']['max']:.4g}, "
    f"non-finite outputs {(~torch.isfinite(probs)).sum().item()}, "
    f"max |p - p_fp32| {error:.2e}"
)

# %%
# Remedy: clamping, and its cost
# ------------------------------
#
# Clamping activations to float16's finite range removes the inf, but it changes the
# outlier, and LayerNorm then normalises the row by a different standard deviation.
# We clamp the down-projection's output and compare with float32.
clamped = copy.deepcopy(model).to(device=device, dtype=torch.float16)
clamped.down.register_forward_hook(lambda m, a, out: out.clamp(-fp16_max, fp16_max))
with torch.no_grad():
    probs = clamped(tokens.half()).float()
error = (probs - reference).abs().max().item()
same = (probs.argmax(1) == reference.argmax(1)).float().mean().item()
print(
    f"clamped float16: non-finite {(~torch.isfinite(probs)).sum().item()}, "
    f"max |p - p_fp32| {error:.2e}, same argmax {same:.0%}"
)

# %%
# In this block the clamped outlier still dominates its row, so LayerNorm's output
# barely moves and the error printed above stays small. That is a property of this
# block, not a guarantee: clamping changes the values it touches, so its error has to
# be measured for each model.

# %%
# Conclusion
# ----------
#
# A model trained in bfloat16 may carry activations beyond float16's max; converted to
# float16 for inference, they become inf and then NaN. Run such a model in bfloat16 or
# float32, or fold a scale into the weights in front of a normalization; clamping
# avoids NaN but alters values, so measure its error on your model. The other end
# of float16's narrow range is in :doc:`plot_fp16_gradient_underflow`, and
# :func:`mixprec.autocast_dtypes` lists what autocast supports on your device.
