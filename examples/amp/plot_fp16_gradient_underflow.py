"""
Why FP16 gradients underflow
============================

Gradients are often tiny, and float16 runs out of small numbers long before
float32 does. We take the real gradient of a small network, see where its entries
fall on float16's number line, and count how many flush to zero, with and without
loss scaling.
"""

# %%
# A network with small gradients
# ------------------------------
#
# A deep, narrow ReLU network with a small initialisation and a mean squared error
# averaged over a large batch: the average divides every gradient by the number of
# terms, and each small layer the signal passes through shrinks it further. We
# compute the float32 gradient as the reference.
import math

import torch
from torch import nn

from mixprec import pick_device

torch.manual_seed(0)
device = pick_device()
layers, width = [], 32
for _ in range(8):
    linear = nn.Linear(width, 64)
    nn.init.normal_(linear.weight, std=0.35 / math.sqrt(width))
    nn.init.zeros_(linear.bias)
    layers += [linear, nn.ReLU()]
    width = 64
model = nn.Sequential(*layers, nn.Linear(width, 8)).to(device)
x = torch.randn(512, 32, device=device)
y = torch.randn(512, 8, device=device)

model.zero_grad(set_to_none=True)
nn.functional.mse_loss(model(x), y).backward()
grads = torch.cat([p.grad.flatten() for p in model.parameters()])
g = grads[grads != 0].abs().double().cpu()
print(f"{grads.numel()} gradient entries, {g.numel()} of them nonzero")
print(f"|g| from 2**{math.log2(g.min()):.1f} to 2**{math.log2(g.max()):.1f}")

# %%
# Float16's limits
# ----------------
#
# Three numbers decide the fate of a gradient entry in float16: the largest finite
# value, the smallest normal number, and the smallest subnormal number, which is the
# next float16 after zero. Below half of the smallest subnormal, a value rounds to
# zero.
fp16 = torch.finfo(torch.float16)
zero = torch.tensor(0.0, dtype=torch.float16)
limits = {
    "subnormal min": torch.nextafter(zero, zero + 1).item(),
    "normal min": fp16.smallest_normal,
    "max": fp16.max,
}
for label, value in limits.items():
    print(f"float16 {label:<13} {value:.6g} = 2**{math.log2(value):g}")

# %%
# Where the gradient entries fall
# -------------------------------
#
# A histogram of :math:`\log_2 |g|` over all nonzero entries (counts on a log
# scale, to show the tails), with float16's limits as vertical lines. Entries
# below half of the smallest subnormal become zero in float16; entries between the
# two lower lines survive as subnormals with fewer significant bits. The gap between
# the largest entry and float16's maximum is the room that loss scaling can use.
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6.5, 3.4), layout="constrained")
ax.hist(torch.log2(g).numpy(), bins=80, color="C0")
for (label, value), color in zip(limits.items(), ["C3", "C1", "C2"], strict=True):
    ax.axvline(math.log2(value), color=color, ls="--", label=f"float16 {label}")
ax.set_yscale("log")
ax.set_xlabel("log2 |gradient entry|")
ax.set_ylabel("number of entries (log scale)")
ax.set_title("Gradient entries of a deep ReLU network on float16's range")
ax.legend(loc="upper right", fontsize="small")
plt.show()

# %%
# Casting the scaled gradient to float16
# --------------------------------------
#
# A float16 backward pass ends by writing each gradient entry as a float16. We
# simulate that final cast: multiply the float32 gradient by a loss scale, cast it
# to float16, and count the nonzero entries that became zero (underflow) or infinite
# (overflow). Since the loss is scaled before ``backward()``, every gradient entry
# is multiplied by the same factor.
g32 = g.float()


def cast_counts(scale):
    h = (g32 * scale).half()
    return (h == 0).double().mean().item(), h.isinf().double().mean().item()


table_scales = [2.0**0, 2.0**8, 2.0**16, 2.0**24]
print(f"{'scale':>8} {'flushed to 0':>14} {'overflowed':>12}")
for scale in table_scales:
    flushed, overflowed = cast_counts(scale)
    print(f"2**{math.log2(scale):<5g} {flushed:>14.2%} {overflowed:>12.4%}")

# %%
# A too-large scale overflows instead: an entry becomes infinite as soon as it is
# above float16's maximum divided by the scale. The largest entry sets the limit.
max_scale = fp16.max / g.max().item()
print(f"largest |g| = {g.max():.4g}")
print(f"it overflows in float16 for scales above 2**{math.log2(max_scale):.2f}")

# %%
# A real float16 backward pass
# ----------------------------
#
# The cast above is only the last step. In a real float16 backward pass the
# intermediate gradients are float16 too, and so are the forward activations. Here
# the same network runs under float16 autocast with the loss scaled by hand the way
# :class:`torch.amp.GradScaler` does it: multiply the loss by the scale, run
# ``backward()``, divide the float32 gradients by the scale. We count the entries
# that are zero or not finite where the float32 gradient is nonzero.
nonzero = grads != 0
real = {}
for scale in table_scales:
    model.zero_grad(set_to_none=True)
    with torch.amp.autocast(device.type, dtype=torch.float16):
        loss = nn.functional.mse_loss(model(x), y)
    (loss * scale).backward()
    h = torch.cat([p.grad.flatten() for p in model.parameters()])[nonzero] / scale
    zeros, nonfinite = (h == 0).double().mean(), (~h.isfinite()).double().mean()
    real[scale] = (zeros.item(), nonfinite.item())
    print(
        f"scale 2**{math.log2(scale):<3g} zero {zeros:7.2%}, not finite {nonfinite:.4%}"
    )

# %%
# These counts need not match the simulated cast exactly: in the real pass, rounding
# and underflow in the float16 activations and intermediate gradients also decide
# which entries end up zero. Both show the same trend as the scale grows.

# %%
# Flushed and overflowed fractions against the scale
# --------------------------------------------------
#
# The simulated cast over a sweep of scales (lines), with the real float16 backward
# passes as markers; the vertical axis is logarithmic above a small linear band
# around zero, so that rare overflows stay visible. Too small a scale loses the small
# entries, too large a scale loses the large ones.
sweep = [2.0**e for e in range(0, 33, 2)]
counts = torch.tensor([cast_counts(s) for s in sweep])
exponents = [math.log2(s) for s in sweep]
fig, ax = plt.subplots(figsize=(6.5, 3.4), layout="constrained")
ax.plot(exponents, counts[:, 0], "o-", color="C0", label="flushed to 0 (cast)")
ax.plot(exponents, counts[:, 1], "s-", color="C3", label="overflowed (cast)")
real_exponents = [math.log2(s) for s in real]
zeros, nonfinite = zip(*real.values(), strict=True)
ax.plot(real_exponents, zeros, "x", color="C0", ms=10, label="0 (fp16 backward)")
ax.plot(
    real_exponents, nonfinite, "+", color="C3", ms=12, label="inf/NaN (fp16 backward)"
)
ax.axvline(math.log2(max_scale), color="0.5", ls=":", label="float16 max / max |g|")
ax.set_yscale("symlog", linthresh=1e-4)
ax.set_ylim(0, 1)
ax.set_xlabel("log2(loss scale)")
ax.set_ylabel("fraction of nonzero entries")
ax.set_title("Gradient entries lost in float16 vs loss scale")
ax.legend(fontsize="small")
plt.show()

# %%
# Conclusion
# ----------
#
# Without scaling, a meaningful share of this network's gradient entries flushes to
# zero in float16, while float16's range above the largest entry goes unused.
# Multiplying the loss by a power of two shifts every entry into the representable
# range; too large a factor overflows instead. Dynamic loss scaling, the next
# example, finds a working factor automatically.
