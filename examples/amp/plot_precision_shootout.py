"""
Precision shoot-out: float32, float16, float16 with GradScaler, bfloat16
========================================================================

One small seeded network, one data set, four ways to train it: in float32, under
float16 autocast without a loss scaler, under float16 autocast with
:class:`torch.amp.GradScaler`, and under bfloat16 autocast without a scaler. The
task is chosen so that its gradients are small, and we watch which runs notice.
"""

# %%
# A regression with small targets
# -------------------------------
#
# A teacher network produces the targets and a student with the same shape learns
# them. Both end in a layer whose weights are shrunk, so targets and predictions are
# small numbers, as they are for a model that predicts small corrections. The device
# comes from :func:`mixprec.pick_device`.
import torch
from torch import nn

import mixprec

device = mixprec.pick_device()
print(f"device: {device}")

BATCH, IN, HIDDEN, OUT = 256, 16, 32, 64
OUTPUT_SCALE = 1e-3


def make_model(seed):
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(IN, HIDDEN),
        nn.Tanh(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.Tanh(),
        nn.Linear(HIDDEN, OUT),
    )
    with torch.no_grad():
        model[-1].weight.mul_(OUTPUT_SCALE)
        model[-1].bias.mul_(OUTPUT_SCALE)
    return model


torch.manual_seed(2)
inputs = torch.randn(BATCH, IN)
with torch.no_grad():
    targets = make_model(seed=1)(inputs)
print(f"target RMS: {targets.pow(2).mean().sqrt():.3e}")

# %%
# The gradient that reaches the network
# -------------------------------------
#
# The mean squared error averages over every output element, so the gradient with
# respect to one prediction is :math:`2 (\hat y - y) / N`. Under float16 autocast the
# last layer's output is float16, and so is the gradient that flows back into it. We
# cast that gradient to float16 with and without GradScaler's initial scale and count
# how many entries become zero; float16's limits come from :func:`mixprec.get_format`.
with torch.no_grad():
    residual = make_model(seed=0)(inputs) - targets
grad_out = 2 * residual / residual.numel()
fp16_tiny = mixprec.get_format("float16").smallest_subnormal
init_scale = torch.amp.GradScaler(device.type).get_scale()
print(f"median |dL/dy_hat|:           {grad_out.abs().median():.3e}")
print(f"smallest float16 subnormal:   {fp16_tiny:.3e}")
for scale in (1.0, init_scale):
    zeros = ((grad_out * scale).half() == 0).float().mean()
    print(f"loss scale {scale:>8g}: {zeros:.1%} of dL/dy_hat is zero in float16")

# %%
# Four training runs
# ------------------
#
# :func:`mixprec.train` runs the standard AMP recipe with plain SGD and records the
# loss, the gradient norm, the loss scale, skipped steps and the time of every step.
# The learning rate is large because the mean over every output element makes each
# gradient small.
# Without a scaler the harness raises :class:`FloatingPointError` when the loss or
# the gradient norm stops being finite; a run that stops is reported as stopped.
SETUPS = {
    "float32": dict(dtype=None, scaler=False),
    "float16": dict(dtype=torch.float16, scaler=False),
    "float16 + GradScaler": dict(dtype=torch.float16, scaler=True),
    "bfloat16": dict(dtype=torch.bfloat16, scaler=False),
}
histories, models, stopped = {}, {}, {}
for name, setup in SETUPS.items():
    models[name] = make_model(seed=0)
    try:
        histories[name] = mixprec.train(
            models[name],
            [(inputs, targets)],
            device=device,
            lr=30.0,
            steps=150,
            **setup,
        )
    except FloatingPointError as error:
        stopped[name] = str(error)
        print(f"{name}: stopped, {error}")

# %%
# Loss curves
# -----------
#
# All runs start from the same weights. The float16 run without a scaler stops
# improving early, while the scaled float16 run and the bfloat16 run follow float32.
import matplotlib.pyplot as plt

styles = {"float32": "-", "float16": "-", "float16 + GradScaler": "--", "bfloat16": ":"}
fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
for name, history in histories.items():
    ax.semilogy(history.steps, history.losses, styles[name], label=name, lw=2)
ax.set_xlabel("step")
ax.set_ylabel("training loss (MSE)")
ax.set_title(f"Training loss on {device.type}: fp32, fp16, fp16 + GradScaler, bf16")
ax.legend()
plt.show()

# %%
# Why float16 without a scaler stalls
# -----------------------------------
#
# After the last step each model still holds its gradients. We count the gradient
# entries that are exactly zero: without a scaler the float16 gradients have
# underflowed, so SGD has nothing left to apply.
for name, model in models.items():
    grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    zero = (grads == 0).float().mean()
    print(f"{name:21s} zero gradient entries: {zero:6.1%}, norm {grads.norm():.3e}")

# %%
# The scoreboard
# --------------
#
# Final loss, number of steps GradScaler skipped, and the median wall time of a step
# on this device. Unlike the mean, the median is not skewed by the first step, which
# also pays one-time costs.
import statistics

print(f"device: {device}")
print(f"{'run':21s} {'final loss':>11s} {'skipped':>8s} {'ms/step':>8s}")
for name, history in histories.items():
    ms = 1e3 * statistics.median(history.seconds)
    skipped = len(history.skipped_steps)
    print(f"{name:21s} {history.losses[-1]:11.3e} {skipped:8d} {ms:8.2f}")
for name, message in stopped.items():
    print(f"{name:21s} stopped: {message}")

# %%
# Step times are a property of the device
# ---------------------------------------
#
# The times above were measured on the device printed above and say nothing general
# about the formats. A CPU without float16 arithmetic emulates float16 and can be
# slower than float32, while GPUs with tensor cores run float16 and bfloat16 matrix
# products faster than float32. This network is also far too small for any format to
# pay off: its steps are dominated by fixed overheads.

# %%
# Conclusion
# ----------
#
# When gradients are small, float16 without loss scaling flushes them to zero and
# training stalls, while :class:`torch.amp.GradScaler` recovers the float32 result.
# bfloat16 has float32's exponent range and needs no scaler here. See
# :func:`mixprec.train` for the harness, :doc:`plot_fp16_gradient_underflow` for
# where float16 gradients underflow and :doc:`plot_dynamic_loss_scaling` for how the
# scale adapts.
