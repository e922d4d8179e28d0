"""
Master weights: why the weights and the optimizer state stay in float32
=======================================================================

An SGD step adds :math:`-\\eta g` to each weight. When that update is smaller than
half the spacing of representable numbers around the weight, the sum rounds back to
the old weight and the update is lost. We measure where that happens for float16 and
bfloat16, watch a training run stall because of it, and see why optimizers keep their
state in float32 too.
"""

# %%
# A small update, added a thousand times
# --------------------------------------
#
# We start from :math:`w = 1` and add the same small update again and again, keeping
# the weight in float32, float16 or bfloat16. Rounding does not depend on the device,
# so these scalar experiments run on the CPU.
import torch

FORMATS = (torch.float32, torch.float16, torch.bfloat16)
NAMES = {dtype: str(dtype).removeprefix("torch.") for dtype in FORMATS}
UPDATE, STEPS = 1e-4, 1000

trajectories = {}
for dtype in FORMATS:
    w = torch.tensor(1.0, dtype=dtype)
    values = [w.item()]
    for _ in range(STEPS):
        w.add_(UPDATE)
        values.append(w.item())
    trajectories[dtype] = values
    print(f"{NAMES[dtype]:9s} w after {STEPS} updates of {UPDATE:g}: {w.item():.6f}")

# %%
# The trajectories
# ----------------
#
# The float32 weight grows by the sum of the updates. The float16 and bfloat16
# weights never move: every single addition rounds back to the starting value.
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6.5, 3.4), layout="constrained")
for dtype, style in zip(FORMATS, ("-", "--", ":"), strict=True):
    ax.plot(trajectories[dtype], style, lw=2, label=NAMES[dtype])
ax.set_xlabel("number of updates")
ax.set_ylabel("weight w")
ax.set_title(f"w ← w + {UPDATE:g}, starting from w = 1")
ax.legend()
plt.show()

# %%
# Half a unit in the last place
# -----------------------------
#
# Round-to-nearest keeps :math:`w` unless :math:`w + u` is closer to the next
# representable number, so an update :math:`u` survives only if it exceeds about half
# an ULP of :math:`w`. We measure the ULP with :func:`torch.nextafter` and find the
# smallest float32 update that still changes the weight by bisection over float32 bit
# patterns.


def ulp(w, dtype):
    w = torch.tensor(w, dtype=dtype)
    return (torch.nextafter(w, w + w.abs() + 1) - w).item()


def smallest_surviving_update(w, dtype):
    weight = torch.tensor(w, dtype=dtype)
    lo, hi = 0, torch.tensor(ulp(w, dtype)).view(torch.int32).item()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        u = torch.tensor(mid, dtype=torch.int32).view(torch.float32)
        lo, hi = (lo, mid) if (weight + u).to(dtype) != weight else (mid, hi)
    return torch.tensor(hi, dtype=torch.int32).view(torch.float32).item()


# %%
# The threshold at a few magnitudes
# ---------------------------------
#
# The ULP grows with the weight, so the same update survives on a small weight and
# vanishes on a large one. The last column compares the smallest surviving update with
# half an ULP.
print(f"{'w':>6s} {'format':>9s} {'ULP':>10s} {'ULP/2':>10s} {'smallest u':>11s} ratio")
for w in (0.01, 1.0, 100.0):
    for dtype in FORMATS:
        half = ulp(w, dtype) / 2
        u_min = smallest_surviving_update(w, dtype)
        print(
            f"{w:6g} {NAMES[dtype]:>9s} {2 * half:10.3e} {half:10.3e} {u_min:11.3e} "
            f"{u_min / half:.4f}"
        )

# %%
# Half an ULP across magnitudes
# -----------------------------
#
# The staircases show half an ULP as a function of :math:`|w|`, computed for every
# point; an update below a format's staircase is lost on a weight of that size. The
# horizontal line is the update used above.
import numpy as np

magnitudes = np.logspace(-3, 3, 400)
fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
for dtype, style in zip(FORMATS, ("-", "--", ":"), strict=True):
    half = [ulp(float(w), dtype) / 2 for w in magnitudes]
    ax.loglog(magnitudes, half, style, lw=2, label=NAMES[dtype])
ax.axhline(UPDATE, color="k", lw=1, label=f"u = {UPDATE:g}")
ax.set_xlabel("|w|")
ax.set_ylabel("ULP(w) / 2")
ax.set_title("Half an ULP of the weight, by format")
ax.legend()
plt.show()

# %%
# A training run with bfloat16 weights
# ------------------------------------
#
# Linear regression with SGD through :func:`mixprec.train`, three ways: everything
# in float32; weights, data and arithmetic all in bfloat16; and float32 master weights
# with the matrix products in bfloat16 under autocast. Both of the last two multiply
# in bfloat16; they differ in how the weights are stored, and the next sections show
# that this is what stalls the first of them.
from torch import nn

import mixprec

device = mixprec.pick_device()
torch.manual_seed(0)
true_w = 1 + 0.5 * torch.randn(1, 16)
x = torch.randn(256, 16)
y = x @ true_w.T


def regression(seed=1):
    torch.manual_seed(seed)
    return nn.Linear(16, 1, bias=False)


models = {
    "float32": regression(),
    "bfloat16 weights": regression(),
    "float32 master + bf16 compute": regression(),
}
models["bfloat16 weights"].to(torch.bfloat16)
common = dict(device=device, lr=0.02, steps=300)
histories = {
    "float32": mixprec.train(models["float32"], [(x, y)], **common),
    "bfloat16 weights": mixprec.train(
        models["bfloat16 weights"],
        [(x.bfloat16(), y.bfloat16())],
        **common,
    ),
    "float32 master + bf16 compute": mixprec.train(
        models["float32 master + bf16 compute"],
        [(x, y)],
        dtype=torch.bfloat16,
        **common,
    ),
}

# %%
# The bfloat16 weights stall
# --------------------------
#
# We plot the loss each run saw and print the distance of the final weights from the
# true ones, measured in float32. The run that stores its weights in bfloat16 stops
# long before the others. The master-weight run's loss levels off above float32's
# because its products are rounded to bfloat16, yet its weights end close to the true
# ones.
fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
for (name, history), style in zip(histories.items(), ("-", "-", "--"), strict=True):
    ax.semilogy(history.steps, history.losses, style, lw=2, label=name)
ax.set_xlabel("step")
ax.set_ylabel("training loss (MSE)")
ax.set_title(f"Linear regression with SGD on {device.type}: weight storage")
ax.legend()
plt.show()

for name, model in models.items():
    error = (model.weight.detach().float().cpu() - true_w).norm()
    print(
        f"{name:30s} final loss {histories[name].losses[-1]:.3e}, "
        f"|w - w*| = {error:.3e}"
    )

# %%
# The stalled updates are at most half an ULP
# -------------------------------------------
#
# The bfloat16 model still holds the gradient of its last step. We compare each
# coordinate's update :math:`\eta |g_i|` with half an ULP of its weight, then apply
# the update the way SGD does, in bfloat16, and count the weights that change.
model = models["bfloat16 weights"]
weights = model.weight.detach().flatten().cpu()
grads = model.weight.grad.detach().flatten().cpu()
updates = common["lr"] * grads.float().abs()
half_ulps = torch.tensor([ulp(w.item(), torch.bfloat16) / 2 for w in weights])
stepped = weights.clone().add_(grads, alpha=-common["lr"])
print(f"largest update / half ULP: {(updates / half_ulps).max():.3f}")
print(f"weights changed by the update: {(stepped != weights).sum()} of {len(weights)}")

# %%
# Adam's second moment in float16
# -------------------------------
#
# Adam divides by :math:`\sqrt{v} + \epsilon`, where :math:`v` averages
# :math:`g^2`. For small gradients :math:`g^2` falls into float16's subnormals,
# where it loses precision, or below them, where it becomes zero. We square a few
# gradients in float16 and compare with float32.
fp16 = mixprec.get_format("float16")
fp16_tiny, fp16_normal = fp16.smallest_subnormal, fp16.smallest_normal
print(f"float16: smallest subnormal {fp16_tiny:.3e}, smallest normal {fp16_normal:.3e}")
for g in (1e-2, 1e-3, 1e-4):
    exact = torch.tensor(g) ** 2
    half = torch.tensor(g, dtype=torch.float16) ** 2
    rel = (half.float() - exact).abs() / exact
    print(
        f"g = {g:g}: g^2 float32 {exact.item():.4e}, float16 {half.item():.4e}, "
        f"relative error {rel.item():.1%}"
    )

# %%
# Epsilon and the first Adam step
# -------------------------------
#
# Adam's default :math:`\epsilon` is below half of float16's smallest subnormal, so
# it rounds to zero. On the first step, with bias correction, the update direction is
# :math:`m / (\sqrt{v} + \epsilon)` with :math:`m = g` and :math:`v = g^2`; in float16
# a small gradient turns it into a division by zero.
eps = torch.optim.Adam([torch.zeros(1)]).defaults["eps"]
print(f"Adam eps {eps:g} < half the smallest float16 subnormal: {eps < fp16_tiny / 2}")
print(f"eps in float16: {torch.tensor(eps, dtype=torch.float16).item()}")
for dtype in (torch.float32, torch.float16):
    g = torch.tensor(1e-4, dtype=dtype)
    m, v, e = g, g * g, torch.tensor(eps, dtype=dtype)
    print(f"{NAMES[dtype]:8s} m / (sqrt(v) + eps) = {(m / (v.sqrt() + e)).item()}")

# %%
# bfloat16 has the range but not the precision
# --------------------------------------------
#
# bfloat16 keeps :math:`g^2` and :math:`\epsilon` in range, but Adam's decay rates are
# close to 1 and need more mantissa bits than bfloat16 has. The default
# :math:`\beta_2` rounds to exactly 1, so :math:`v` would never forget old gradients
# and :math:`1 - \beta_2` would be zero.
beta1, beta2 = torch.optim.Adam([torch.zeros(1)]).defaults["betas"]
for beta in (beta1, beta2):
    rounded = torch.tensor(beta, dtype=torch.bfloat16)
    print(
        f"beta {beta:g} in bfloat16: {rounded.item():g}, "
        f"1 - beta: {(1 - rounded).item():g}"
    )

# %%
# Conclusion
# ----------
#
# A low-precision weight ignores every update up to about half its ULP, so
# mixed-precision training keeps float32 master weights and runs only the arithmetic
# in float16 or bfloat16. The optimizer state stays in float32 for the same reason
# and because squared gradients and :math:`\epsilon` underflow float16. See
# :func:`mixprec.train` and :doc:`plot_precision_shootout` for whole training runs.
