"""
The full recipe: float16 autocast with GradScaler
=================================================

The complete mixed-precision training step with float16: autocast for the forward
pass, a :class:`torch.amp.GradScaler` for the backward pass, and gradient clipping
in the one place where it works. We write the loop out in full, correct the
lecture note's version, show the classic ordering mistake with numbers, and end
with the bfloat16 loop that needs no scaler.
"""

# %%
# The model and the device
# ------------------------
#
# The lecture note trains a small multilayer perceptron with AdamW on random data.
# We keep its structure and size the layers to the device: float16 matrix products
# are fast on GPUs but can be slow on a CPU.
import torch
from torch import nn
from torch.nn.utils import clip_grad_norm_, get_total_norm

from mixprec import pick_device

device = pick_device()
width = {"cuda": 4096, "mps": 4096}.get(device.type, 256)
batch = 32
print(f"device {device}, layer width {width}, batch {batch}")


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width)
    ).to(device)


# %%
# GradScaler needs the device type
# --------------------------------
#
# The lecture note wrote ``torch.amp.GradScaler()`` without a device. Its device
# then defaults to ``"cuda"``; on a machine without CUDA, such as the Mac the note
# ran on, torch warns and disables the scaler, and float16 training silently runs
# without loss scaling. The cell below shows this when the machine has no CUDA.
import warnings

if not torch.cuda.is_available():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scaler = torch.amp.GradScaler()
    for warning in caught:
        print(f"{warning.category.__name__}: {warning.message}")
    print(f"GradScaler() enabled: {scaler.is_enabled()}")
    print(f"scale(loss) with loss 1.0: {scaler.scale(torch.tensor(1.0)).item()}")
else:
    print("CUDA is available: GradScaler() means GradScaler('cuda') here")
print(f"GradScaler({device.type!r}) enabled: ", end="")
print(torch.amp.GradScaler(device.type).is_enabled())

# %%
# The training loop
# -----------------
#
# One step: zero the gradients, run the forward pass under float16 autocast,
# backward on the scaled loss, unscale the gradients in place, clip them, let the
# scaler step the optimizer (it skips the step if the gradients overflowed) and
# update the scale.
max_norm = 1.0
model = make_model()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
scaler = torch.amp.GradScaler(device.type)
for step in range(3):
    x = torch.randn(batch, width, device=device)
    y = torch.randn(batch, width, device=device)
    optimizer.zero_grad(set_to_none=True)
    with torch.amp.autocast(device.type, dtype=torch.float16):
        loss = (model(x) - y).pow(2).mean()
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    norm_before = clip_grad_norm_(model.parameters(), max_norm)
    norm_after = get_total_norm([p.grad for p in model.parameters()])
    scale = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    print(
        f"step {step}: loss {loss.item():.4f}, grad norm before clipping "
        f"{norm_before:.4f}, after {norm_after:.4f}, scale {scale:g}, "
        f"skipped {scaler.get_scale() < scale}"
    )

# %%
# The lecture note printed the value returned by
# :func:`torch.nn.utils.clip_grad_norm_` as the norm "after clip". It is the total
# norm *before* clipping. The norm after clipping, measured with
# :func:`torch.nn.utils.get_total_norm`, is the smaller of that norm and
# ``max_norm``; the two are equal when the gradient is already below ``max_norm``.

# %%
# The classic mistake: clipping before unscaling
# ----------------------------------------------
#
# Between ``backward()`` and ``unscale_()`` the gradients are still multiplied by
# the scale. Clipping them there measures the scaled norm, so the threshold
# effectively becomes ``max_norm / scale``. We take one step both ways from the same
# weights on the same batch, with plain SGD: it moves the weights by the learning
# rate times the gradient that ``scaler.step`` hands it, so the size of the update
# is the learning rate times the norm of that gradient.
x = torch.randn(batch, width, device=device)
y = torch.randn(batch, width, device=device)


def one_step(unscale_first, lr=0.1):
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler(device.type)
    with torch.amp.autocast(device.type, dtype=torch.float16):
        loss = (model(x) - y).pow(2).mean()
    scaler.scale(loss).backward()
    if unscale_first:
        scaler.unscale_(optimizer)
    seen = clip_grad_norm_(model.parameters(), max_norm).item()
    scale = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    assert scaler.get_scale() >= scale, "the step overflowed and was skipped"
    applied = get_total_norm([p.grad for p in model.parameters()]).item()
    return seen, lr * applied, scale


# %%
# In the right order, ``clip_grad_norm_`` sees the true norm. In the wrong order it
# sees the scaled norm, clips a gradient that is below the threshold, and the
# update shrinks by the ratio predicted from the printed norm and scale.
true_norm, right_update, scale = one_step(unscale_first=True)
scaled_norm, wrong_update, _ = one_step(unscale_first=False)
print(f"loss scale                          {scale:g}")
print(f"norm seen by clip, right order      {true_norm:.6g}")
print(f"norm seen by clip, wrong order      {scaled_norm:.6g}")
print(f"ratio of the two                    {scaled_norm / true_norm:g}")
print(f"max_norm                            {max_norm:g}")
print(f"effective threshold, wrong order    {max_norm / scale:.3g}")
print(f"update size, right order            {right_update:.6g}")
print(f"update size, wrong order            {wrong_update:.6g}")
print(f"update ratio wrong/right            {wrong_update / right_update:.6g}")
print(f"predicted: max_norm / scaled norm   {max_norm / scaled_norm:.6g}")
assert true_norm < max_norm < scaled_norm

# %%
# Visualised: the right order leaves this small gradient alone, while the wrong
# order shrinks the step by the ratio printed above.
import matplotlib.pyplot as plt

updates = {"unscale_, clip": right_update, "clip, unscale_": wrong_update}
fig, ax = plt.subplots(figsize=(5.5, 2.6), layout="constrained")
bars = ax.barh(list(updates), list(updates.values()), color=["C0", "C3"])
ax.bar_label(bars, fmt="%.3g", padding=4)
ax.set_xscale("log")
ax.set_xlim(min(updates.values()) / 10, max(updates.values()) * 20)
ax.set_xlabel("size of the weight update (2-norm, log scale)")
ax.set_title("One SGD step, clipping after vs before unscale_")
plt.show()

# %%
# Without a scaler: bfloat16
# --------------------------
#
# bfloat16 has float32's exponent range: the same smallest normal number and about
# the same maximum, as printed below. A gradient that flushes to zero in bfloat16
# is already below float32's smallest normal number, so the loop usually needs no
# scaler: a plain ``backward()``, clipping, and ``step()``. It runs if autocast
# supports bfloat16 on this device.
from mixprec import autocast_dtypes

for dtype in (torch.float32, torch.bfloat16, torch.float16):
    info = torch.finfo(dtype)
    print(f"{dtype!s:<15} smallest normal {info.tiny:.3g}, max {info.max:.3g}")

if torch.bfloat16 in autocast_dtypes(device):
    model = make_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(3):
        x = torch.randn(batch, width, device=device)
        y = torch.randn(batch, width, device=device)
        optimizer.zero_grad(set_to_none=True)
        with torch.amp.autocast(device.type, dtype=torch.bfloat16):
            loss = (model(x) - y).pow(2).mean()
        loss.backward()
        norm_before = clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        print(
            f"step {step}: loss {loss.item():.4f}, "
            f"grad norm before clipping {norm_before:.4f}"
        )
else:
    print(f"autocast on {device.type} does not support bfloat16 here")

# %%
# Conclusion
# ----------
#
# With float16, the order is fixed: scaled backward, ``unscale_``, clip, ``step``,
# ``update``, and the scaler must be created for the device you train on.
# :func:`torch.nn.utils.clip_grad_norm_` returns the norm before clipping. With
# bfloat16 the scaler can usually be dropped. :func:`mixprec.train` runs the same
# loop and records the loss, gradient norm, scale and skipped flag of every step.
