"""
Clipping in training
====================

A deep linear network learns a linear map from data that contain a few outliers.
Trained with plain SGD, it diverges; with the same seed, data and learning rate,
clipping the gradient by norm or by value keeps it training. We then read a
threshold off the gradient norms that training produces, and check the clipping
formula against :func:`torch.nn.utils.clip_grad_norm_`.
"""

# %%
# A task whose gradients spike
# ----------------------------
#
# The inputs are Gaussian, except for a small share of rows that are scaled up. A
# mini-batch that draws one of those rows gets a much larger gradient than the
# others. The batches are drawn once, in advance, so that every run below sees the
# same data in the same order.
import math

import torch
from torch import nn

from mixprec import pick_device

device = pick_device()
torch.manual_seed(0)
n_samples, width, depth, batch_size, steps = 2048, 16, 8, 32, 200
n_outliers, outlier_scale = n_samples // 100, 10.0
x = torch.randn(n_samples, width)
x[:n_outliers] *= outlier_scale
teacher = torch.randn(width, width) * 2 / math.sqrt(width)
y = x @ teacher
batches = torch.randint(0, n_samples, (steps, batch_size))
has_outlier = (batches < n_outliers).any(dim=1)
x, y = x.to(device), y.to(device)
print(f"device {device}; {n_outliers} outlier rows of {n_samples}")
print(f"batches that contain an outlier: {has_outlier.float().mean().item():.0%}")

# %%
# The network
# -----------
#
# Eight bias-free linear layers with orthogonal initialisation: a deep plain
# network, like the one in :doc:`plot_seed_demonstration`, but started where its
# gradients are moderate. Every run builds it from the same seed.


def make_model():
    torch.manual_seed(1)
    model = nn.Sequential(*[nn.Linear(width, width, bias=False) for _ in range(depth)])
    for layer in model:
        nn.init.orthogonal_(layer.weight)
    return model.to(device)


# %%
# The training loop
# -----------------
#
# Plain SGD at one fixed learning rate. The loop records the loss and the gradient
# norm *before* any clipping, and stops at the first loss that is not finite.
from torch.nn.utils import clip_grad_norm_, clip_grad_value_

from mixprec import grad_norm

lr = 0.05


def fit(max_norm=None, clip_value=None):
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses, norms = [], []
    for idx in batches.to(device):
        optimizer.zero_grad(set_to_none=True)
        loss = (model(x[idx]) - y[idx]).pow(2).mean()
        loss.backward()
        if max_norm is not None:
            norm = clip_grad_norm_(model.parameters(), max_norm).item()
        else:
            norm = grad_norm(model)
        if clip_value is not None:
            clip_grad_value_(model.parameters(), clip_value)
        losses.append(loss.item())
        norms.append(norm)
        if not math.isfinite(losses[-1]):
            break
        optimizer.step()
    return losses, norms


# %%
# Three runs, one seed
# --------------------
#
# The same network, data and learning rate, trained without clipping, with
# :func:`~torch.nn.utils.clip_grad_norm_` and with
# :func:`~torch.nn.utils.clip_grad_value_`. The run without clipping stops at the
# step printed below, where its loss stopped being a finite number.
max_norm, clip_value = 1.0, 0.01
runs = {
    "none": fit(),
    f"clip_grad_norm_ (τ={max_norm:g})": fit(max_norm=max_norm),
    f"clip_grad_value_ (α={clip_value:g})": fit(clip_value=clip_value),
}
print(f"learning rate {lr:g}, {steps} batches")
for label, (losses, _) in runs.items():
    print(f"{label:26s} steps run {len(losses):3d}, last loss {losses[-1]:.4g}")

# %%
# Loss and gradient norm
# ----------------------
#
# Without clipping, the loss and the gradient norm grow together until the loss is
# no longer a finite number; the cross marks the last finite loss. With either kind
# of clipping the loss keeps falling, although the gradient norm measured before
# clipping still spikes whenever a batch holds an outlier.
import matplotlib.pyplot as plt

fig, (ax_loss, ax_norm) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
for label, (losses, norms) in runs.items():
    ax_loss.semilogy(losses, label=label, lw=1)
    ax_norm.semilogy(norms, label=label, lw=1)
last_finite = max(i for i, v in enumerate(runs["none"][0]) if math.isfinite(v))
ax_loss.semilogy(last_finite, runs["none"][0][last_finite], "kx", ms=8)
ax_norm.axhline(max_norm, color="k", ls=":", lw=1, label=f"τ={max_norm:g}")
ax_loss.set_xlabel("step")
ax_loss.set_ylabel("mean squared error (log)")
ax_loss.set_title("Training loss")
ax_norm.set_xlabel("step")
ax_norm.set_ylabel("gradient norm before clipping (log)")
ax_norm.set_title("Gradient norm ‖g‖₂")
ax_norm.legend(fontsize=8)
fig.suptitle("SGD on a deep linear network: no clipping, clip by norm, by value")
plt.show()

# %%
# Reading a threshold off the observed norms
# ------------------------------------------
#
# :func:`~torch.nn.utils.clip_grad_norm_` returns the norm measured before it clips,
# so a clipped run records the unclipped norms for free. We take those of the first
# steps of the clip-by-norm run and compute two candidate thresholds, the 50th and
# the 90th percentile.
import numpy as np

first = 100
observed = np.array(runs[f"clip_grad_norm_ (τ={max_norm:g})"][1][:first])
spiky = has_outlier[:first].numpy()
p50, p90 = np.percentile(observed, [50, 90])
print(f"unclipped gradient norms of the first {first} steps of the clipped run:")
print(f"50th percentile {p50:.3g}, 90th percentile {p90:.3g}")
print(f"largest {observed.max():.3g}; steps with an outlier {spiky.mean():.0%}")

# %%
# The histogram, split by whether the batch held an outlier, shows where the two
# percentiles fall: the ordinary batches form the bulk, the outlier batches the upper
# tail.
bins = np.geomspace(observed.min(), observed.max(), 30)
fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
ax.hist(
    [observed[~spiky], observed[spiky]],
    bins=bins,
    stacked=True,
    label=["batch without outlier", "batch with outlier"],
)
ax.axvline(p50, color="k", ls="--", label="p50")
ax.axvline(p90, color="k", ls=":", label="p90")
ax.set_xscale("log")
ax.set_xlabel("gradient norm before clipping")
ax.set_ylabel("number of steps")
ax.set_title("Unclipped gradient norms of the first training steps")
ax.legend(fontsize=8)
plt.show()

# %%
# Trying the candidate thresholds
# -------------------------------
#
# A threshold should cut the spikes and leave ordinary steps unchanged, or nearly
# so. Here more steps hold an outlier than the top tenth, so the 90th percentile
# lies inside the tail and lets many spikes through, while the median clips every
# spike and shortens about half of the ordinary steps a little. The printed losses
# say which compromise suits this data.
final = {}
for name, tau in (("p50", p50), ("p90", p90)):
    losses, norms = fit(max_norm=float(tau))
    clipped = np.mean(np.array(norms) > tau)
    final[name] = np.median(losses[-50:])
    print(
        f"τ = {name} = {tau:.3g}: steps run {len(losses)}, clipped {clipped:.0%} "
        f"of steps, median loss of the last 50 steps {final[name]:.4g}"
    )
print(f"lower final loss with τ = {min(final, key=final.get)}")

# %%
# Clip-by-norm from scratch
# -------------------------
#
# The rule is :math:`g \leftarrow g \cdot \min(1, \tau / \lVert g \rVert)`, with
# one norm over all gradients of the model taken as a single vector. We write it out
# on the gradients of one batch and keep a copy of them.
model = make_model()
idx = batches[has_outlier][0].to(device)
(model(x[idx]) - y[idx]).pow(2).mean().backward()
grads = [p.grad.clone() for p in model.parameters()]

tau = 1.0
total = torch.sqrt(sum(g.pow(2).sum() for g in grads))
by_hand = [g * torch.clamp(tau / total, max=1.0) for g in grads]
print(
    f"global norm by hand {total.item():.6g}, scale factor {(tau / total).item():.4g}"
)

# %%
# :func:`~torch.nn.utils.clip_grad_norm_` on the same gradients gives the same
# result. PyTorch adds a tiny constant to the norm before dividing, so the two agree
# to rounding, not necessarily bit for bit; :func:`torch.testing.assert_close`
# checks that, and the largest difference is printed.
returned = clip_grad_norm_(model.parameters(), max_norm=tau)
clipped_grads = [p.grad for p in model.parameters()]
for mine, theirs in zip(by_hand, clipped_grads, strict=True):
    torch.testing.assert_close(mine, theirs)
gap = max(
    (a - b).abs().max().item() for a, b in zip(by_hand, clipped_grads, strict=True)
)
print(f"clip_grad_norm_ returned {returned.item():.6g}")
print(f"norm after clipping {grad_norm(model):.6g}; largest difference {gap:.2g}")

# %%
# Conclusion
# ----------
#
# Clipping by norm turned a run that diverged into one that trains, at the same learning
# rate; clipping by value did too, more slowly. Pick the threshold from the norms you
# observe, below the spikes, and check how many steps it clips.
# :doc:`plot_clipping_pitfalls` shows what the returned norm means and what clipping
# does with NaN and inf.
