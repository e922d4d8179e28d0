"""
Pitfalls of gradient clipping
=============================

Five things about :func:`torch.nn.utils.clip_grad_norm_` that are easy to get
wrong: what it returns, what it does with NaN and inf, what the inf-norm means, why
clipping cannot repair a NaN, and why one global norm differs from one norm per
layer.
"""

# %%
# The returned value is the norm before clipping
# ----------------------------------------------
#
# PyTorch's docstring says that ``clip_grad_norm_`` returns the "total norm of the
# parameter gradients (viewed as a single vector)" and that "gradients are modified
# in-place". The norm it returns is the one it measured before scaling the
# gradients down. We compare it with the norm of the gradients after the call.
import torch
from torch import nn
from torch.nn.utils import clip_grad_norm_

from mixprec import grad_norm, grad_snapshot, pick_device

device = pick_device()
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 4)).to(device)
x = torch.randn(64, 8).to(device)
y = (10 * torch.randn(64, 4)).to(device)


def backward():
    model.zero_grad(set_to_none=True)
    nn.functional.mse_loss(model(x), y).backward()


backward()
original = grad_snapshot(model)
max_norm = 1.0
returned = clip_grad_norm_(model.parameters(), max_norm=max_norm)
print(f"max_norm {max_norm:g}; returned {returned.item():.4f}")
print(f"norm of the gradients after the call {grad_norm(model):.4f}")
print(f"gradients changed in place: {not torch.equal(original, grad_snapshot(model))}")

# %%
# The lecture's "after clip" label
# --------------------------------
#
# The lecture note's mixed-precision loop prints the value returned by
# ``clip_grad_norm_`` as ``total_grad_norm(after clip)``. Below is the same loop on
# this small model, printing that value next to the norm actually left after
# clipping. The returned value exceeds ``max_norm``, which no clipped gradient can;
# only the second column is the norm after clipping. A step whose norm is not
# finite (the scaler's first guess at the scale can overflow float16) is reported as
# skipped, because ``scaler.step`` skips it.
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
scaler = torch.amp.GradScaler(device.type)
for step in range(3):
    optimizer.zero_grad(set_to_none=True)
    with torch.amp.autocast(device.type, dtype=torch.float16):
        loss = nn.functional.mse_loss(model(x), y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    total_norm = clip_grad_norm_(model.parameters(), max_norm=max_norm)
    if torch.isfinite(total_norm):
        print(
            f"step {step}: returned (before clip) {total_norm.item():.3f}, "
            f"after clip {grad_norm(model):.3f}"
        )
    else:
        print(f"step {step}: returned {total_norm.item()}, skipped by the scaler")
    scaler.step(optimizer)
    scaler.update()

# %%
# One NaN entry spreads everywhere
# --------------------------------
#
# By default (``error_if_nonfinite=False``) nothing stops a NaN. A NaN anywhere
# makes the total norm NaN, and the scale factor computed from it is NaN too.
# Multiplying every gradient by it turns every entry into NaN, as
# :func:`mixprec.nonfinite_count` shows before and after the call.
from mixprec import nonfinite_count

n_entries = sum(p.numel() for p in model.parameters())
backward()
model[0].weight.grad[0, 0] = float("nan")
print(f"non-finite entries before: {nonfinite_count(model)} of {n_entries}")
returned = clip_grad_norm_(model.parameters(), max_norm=max_norm)
print(f"returned {returned.item()}")
print(f"non-finite entries after:  {nonfinite_count(model)} of {n_entries}")

# %%
# One inf entry zeroes the rest
# -----------------------------
#
# With an inf entry the total norm is inf and the scale factor ``max_norm / inf``
# is zero. Every finite entry becomes zero, and the inf entry becomes NaN, because
# inf times zero is NaN.
backward()
model[0].weight.grad[0, 0] = float("inf")
print(f"non-finite entries before: {nonfinite_count(model)}")
returned = clip_grad_norm_(model.parameters(), max_norm=max_norm)
grads = grad_snapshot(model)
print(f"returned {returned.item()}")
print(f"after: {int(grads.isnan().sum())} NaN, {int((grads == 0).sum())} zeros")
print(f"non-finite entries after: {nonfinite_count(model)}")

# %%
# Asking for an error instead
# ---------------------------
#
# With ``error_if_nonfinite=True`` the function raises a :class:`RuntimeError` when
# the total norm is not finite. It raises before scaling, so the gradients are left
# as they were.
backward()
model[0].weight.grad[0, 0] = float("nan")
try:
    clip_grad_norm_(model.parameters(), max_norm=max_norm, error_if_nonfinite=True)
except RuntimeError as err:
    print(f"RuntimeError: {str(err).splitlines()[0]}")
print(f"non-finite entries after the error: {nonfinite_count(model)}")

# %%
# The inf-norm clips by the largest entry
# ---------------------------------------
#
# With ``norm_type=float("inf")`` the total norm is the largest absolute entry, and
# the gradient is scaled so that this entry becomes ``max_norm``. It is still a
# uniform rescale, so the direction is kept; :func:`~torch.nn.utils.clip_grad_value_`
# bounds every entry by the same number but changes the direction.
from torch.nn.utils import clip_grad_value_

from mixprec import cosine_similarity, grad_absmax

for how in ("norm 2", "norm inf", "value"):
    backward()
    unclipped = grad_snapshot(model)
    if how == "value":
        clip_grad_value_(model.parameters(), clip_value=max_norm)
        returned = "-"
    else:
        p = 2.0 if how == "norm 2" else float("inf")
        total = clip_grad_norm_(model.parameters(), max_norm, norm_type=p)
        returned = f"{total.item():.4f}"
    cosine = cosine_similarity(unclipped, grad_snapshot(model))
    print(
        f"{how:8s}: returned {returned:>6s}, after: 2-norm {grad_norm(model):.4f}, "
        f"max |g| {grad_absmax(model):.4f}, cosine {cosine:.6f}"
    )

# %%
# Clipping cannot repair a NaN: skip the step
# -------------------------------------------
#
# A NaN gradient carries no direction to keep, so there is nothing to clip. The
# usual cure is to skip the optimizer step, as :class:`torch.amp.GradScaler` does,
# and then look for the cause. Here one batch holds a NaN input; the guard on the
# returned norm skips that step, and the weights stay finite.
torch.manual_seed(1)
net = nn.Linear(8, 4).to(device)
opt = torch.optim.SGD(net.parameters(), lr=0.01)
for step in range(4):
    xb = torch.randn(16, 8).to(device)
    if step == 2:
        xb[0, 0] = float("nan")
    opt.zero_grad(set_to_none=True)
    nn.functional.mse_loss(net(xb), torch.zeros(16, 4, device=device)).backward()
    total_norm = clip_grad_norm_(net.parameters(), max_norm=max_norm)
    if not torch.isfinite(total_norm):
        print(f"step {step}: norm {total_norm.item()}, step skipped")
        continue
    opt.step()
    finite = all(torch.isfinite(p).all() for p in net.parameters())
    print(f"step {step}: norm {total_norm.item():.4f}, weights finite: {finite}")

# %%
# :class:`~torch.amp.GradScaler` applies the same guard by itself: ``unscale_``
# records that a gradient is not finite, ``scaler.step`` then leaves the weights
# untouched, and ``scaler.update`` lowers the scale.
scaler = torch.amp.GradScaler(device.type)
xb = torch.randn(16, 8).to(device)
xb[0, 0] = float("nan")
before = [p.detach().clone() for p in net.parameters()]
opt.zero_grad(set_to_none=True)
loss = nn.functional.mse_loss(net(xb), torch.zeros(16, 4, device=device))
scaler.scale(loss).backward()
scaler.unscale_(opt)
scale_before = scaler.get_scale()
scaler.step(opt)
scaler.update()
unchanged = all(
    torch.equal(a, p) for a, p in zip(before, net.parameters(), strict=True)
)
print(
    f"weights unchanged: {unchanged}; scale {scale_before:g} -> {scaler.get_scale():g}"
)

# %%
# One global norm, not one per layer
# ----------------------------------
#
# ``clip_grad_norm_`` computes one norm over all the parameters it is given. Calling
# it once per layer is a different operation: each layer is scaled by its own
# factor, so the layers' relative sizes, and hence the direction, change. The table
# from :func:`mixprec.grad_table` shows the per-layer norms before clipping.
from mixprec import format_grad_table, grad_table

backward()
unclipped = grad_snapshot(model)
print(format_grad_table(grad_table(model, by="layer")))
layers = [name for name, m in model.named_children() if list(m.parameters())]
norms = {"unclipped": [row.norm for row in grad_table(model, by="layer")]}

clip_grad_norm_(model.parameters(), max_norm)
norms["global"] = [row.norm for row in grad_table(model, by="layer")]
total_global = grad_norm(model)
cos_global = cosine_similarity(unclipped, grad_snapshot(model))

backward()
for name in layers:
    clip_grad_norm_(model.get_submodule(name).parameters(), max_norm)
norms["per layer"] = [row.norm for row in grad_table(model, by="layer")]
cos_layer = cosine_similarity(unclipped, grad_snapshot(model))
total_layer = grad_norm(model)
print(f"global clip:    total norm {total_global:.4f}, cosine {cos_global:.6f}")
print(f"per-layer clip: total norm {total_layer:.4f}, cosine {cos_layer:.6f}")

# %%
# The bars show each layer's gradient norm before clipping, after one global clip
# and after clipping layer by layer.
import matplotlib.pyplot as plt
import numpy as np

fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
pos = np.arange(len(layers))
for i, (label, values) in enumerate(norms.items()):
    ax.bar(pos + (i - 1) * 0.27, values, width=0.27, label=label)
ax.axhline(max_norm, color="k", ls=":", lw=1, label=f"max_norm={max_norm:g}")
ax.set_xticks(pos, [f"model[{name}]" for name in layers])
ax.set_ylabel("gradient norm of the layer")
ax.set_title("Global clip_grad_norm_ vs one call per layer")
ax.legend(fontsize=8)
plt.show()

# %%
# Conclusion
# ----------
#
# The value ``clip_grad_norm_`` returns is the norm before clipping; log it under
# that name. A single NaN or inf poisons every gradient, so check the returned norm
# and skip the step when it is not finite, or let ``GradScaler`` do it. Clip with
# one global norm unless you mean to change the direction.
# :doc:`plot_clipping_in_training` shows clipping in a training run.
