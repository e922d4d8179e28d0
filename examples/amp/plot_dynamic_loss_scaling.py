"""
Dynamic loss scaling
====================

:class:`torch.amp.GradScaler` does not know the right loss scale in advance. It
starts high, lowers the scale whenever the scaled gradients overflow (and skips
that optimizer step), and raises it again after a run of clean steps. We watch it
do this in a short float16 run, reproduce its rule in pure Python, and explain the
learning-rate scheduler warning that skipped steps can cause.
"""

# %%
# GradScaler's settings
# ---------------------
#
# A scaler's settings are the initial scale, the growth factor, the backoff factor,
# and the growth interval, the number of consecutive clean steps before it grows the
# scale. Here are the defaults of the installed torch.
import torch

from mixprec import pick_device

device = pick_device()
default = torch.amp.GradScaler(device.type)
print(f"initial scale   {default.get_scale():g}")
print(f"growth factor   {default.get_growth_factor():g}")
print(f"backoff factor  {default.get_backoff_factor():g}")
print(f"growth interval {default.get_growth_interval()}")

# %%
# With the default growth interval, growth happens too rarely to see in a short
# run, so below we use a much shorter interval and keep the other defaults.
growth_interval = 10
print(f"growth interval used here: {growth_interval} steps, ", end="")
print(f"{default.get_growth_interval() // growth_interval} times shorter")

# %%
# A float16 run with outlier batches
# ----------------------------------
#
# A small regression network trains under float16 autocast with SGD. A couple of
# batches are outliers, their inputs multiplied by a huge factor, so that their
# scaled gradients overflow. :func:`mixprec.train` runs the standard AMP loop and,
# through :class:`mixprec.ScalerTrace`, records the scale of every step and whether
# the scaler skipped it.
from torch import nn

from mixprec import ScalerTrace, train


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4)
    )


model = make_model()
teacher = 3 * torch.randn(16, 4)
outlier_steps, outlier_factor = (50, 51), 1e3
batches = []
for step in range(80):
    x = torch.randn(64, 16)
    y = x @ teacher
    batches.append((x * outlier_factor if step in outlier_steps else x, y))

trace = ScalerTrace(torch.amp.GradScaler(device.type, growth_interval=growth_interval))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
history = train(
    model,
    batches,
    device=device,
    dtype=torch.float16,
    scaler=trace,
    optimizer=optimizer,
)
print(f"skipped steps: {history.skipped_steps}")
print(f"outlier steps: {list(outlier_steps)}")
assert set(outlier_steps) <= set(history.skipped_steps)

# %%
# The outlier batches are not the only skipped steps. Each time the scale grows,
# it may become too large for the gradients of the moment; the next step overflows,
# is skipped, and the scale backs off again. The first step can overflow for the
# same reason when the initial scale is too large for the model.
for record in history.records[:3] + [history.records[s] for s in outlier_steps]:
    print(
        f"step {record.step:3d}: scale {record.scale:6g}, loss {record.loss:10.4g}, "
        f"grad norm {record.grad_norm:.4g}, skipped {record.skipped}"
    )

# %%
# The scale over the run
# ----------------------
#
# The scale on a log2 axis, with the skipped steps marked. Growth is a step up by
# the growth factor after each run of clean steps; each skipped step multiplies the
# scale by the backoff factor.
import math

import matplotlib.pyplot as plt

log2_scales = [math.log2(s) for s in history.scales]
skipped = history.skipped_steps
fig, ax = plt.subplots(figsize=(6.5, 3.4), layout="constrained")
ax.step(history.steps, log2_scales, where="post", color="C0", label="log2(scale)")
ax.plot(
    skipped,
    [log2_scales[s] for s in skipped],
    "x",
    color="C3",
    ms=8,
    mew=2,
    label="skipped step",
)
ax.plot(
    list(outlier_steps),
    [log2_scales[s] for s in outlier_steps],
    "o",
    mfc="none",
    color="k",
    ms=12,
    label="outlier batch",
)
ax.set_xlabel("training step")
ax.yaxis.get_major_locator().set_params(integer=True)
ax.set_ylabel("log2(loss scale)")
ax.set_title("GradScaler's loss scale during a float16 run")
ax.legend(fontsize="small")
plt.show()

# %%
# The rule in pure Python
# -----------------------
#
# :class:`mixprec.DynamicLossScale` is GradScaler's update rule written out in
# Python, keeping the scale in float32 as GradScaler does. Fed the same sequence of
# overflow flags, it must produce exactly the same scales, growth steps included.
from mixprec import DynamicLossScale

rule = DynamicLossScale(growth_interval=growth_interval)
rule_scales = []
for record in history.records:
    rule_scales.append(rule.scale)
    rule.update(found_inf=record.skipped)
assert rule_scales == history.scales
assert rule.scale == trace.get_scale()
print(f"DynamicLossScale matches GradScaler at all {len(rule_scales)} steps; ", end="")
print(f"final scale {rule.scale:g}")

# %%
# Why the learning-rate scheduler warns
# -------------------------------------
#
# When GradScaler skips a step, ``scaler.step(optimizer)`` does not call
# ``optimizer.step()``. If that happens on the very first step, the scheduler's
# ``scheduler.step()`` comes before any ``optimizer.step()``, and PyTorch warns. With
# float16, the first step overflows whenever the initial scale is too large for the
# model's gradients (the line printed below says whether it did in the run above).
# Here we force it with an outlier first batch, on a fresh copy of the same network.
import warnings

print(f"step 0 of the run above skipped: {history.records[0].skipped}")


def run(steps, skip_scheduler_on_overflow):
    net = make_model().to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    scaler = ScalerTrace(torch.amp.GradScaler(device.type))
    for step in range(steps):
        x, y = batches[step]
        x = (x * outlier_factor if step == 0 else x).to(device)
        opt.zero_grad(set_to_none=True)
        with torch.amp.autocast(device.type, dtype=torch.float16):
            loss = nn.functional.mse_loss(net(x), y.to(device))
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if not (skip_scheduler_on_overflow and scaler.events[-1].skipped):
            scheduler.step()
    return scaler, scheduler


# %%
# The warning, captured with :func:`warnings.catch_warnings`:
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    scaler, scheduler = run(3, skip_scheduler_on_overflow=False)
print(f"skipped steps: {scaler.skipped_steps}, ", end="")
print(f"learning rate now: {scheduler.get_last_lr()[0]:g}")
for warning in caught:
    print(f"{warning.category.__name__}: {warning.message}")
message = "before `optimizer.step()`"
assert any(message in str(w.message) for w in caught)

# %%
# The warning is harmless: the scheduler has moved ahead of the optimizer, so the
# first value of the schedule is never used. To avoid it, call ``scheduler.step()``
# only when the optimizer step was taken. The scale tells: it drops exactly on a
# skipped step, and :class:`mixprec.ScalerTrace` records that in
# ``events[-1].skipped``, as ``run`` above does when asked. Compare the learning
# rates printed by the two runs.
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    scaler, scheduler = run(3, skip_scheduler_on_overflow=True)
print(f"skipped steps: {scaler.skipped_steps}, ", end="")
print(f"learning rate now: {scheduler.get_last_lr()[0]:g}")
print(f"scheduler warnings: {sum(message in str(w.message) for w in caught)}")
assert not any(message in str(w.message) for w in caught)

# %%
# Conclusion
# ----------
#
# GradScaler searches for the largest scale that does not overflow: it backs off on
# every overflow, skipping that step, and probes upwards after each run of clean
# steps, so occasional skipped steps are part of normal operation.
# :class:`mixprec.ScalerTrace` records them in any training loop, and
# :class:`mixprec.DynamicLossScale` states the rule in a few lines of Python. The
# next example puts the whole recipe together.
