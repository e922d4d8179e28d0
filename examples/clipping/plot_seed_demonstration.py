"""
Clipping an exploding gradient by norm and by value
===================================================

A deep stack of linear layers with Kaiming initialisation gives a gradient whose
norm is in the millions. We clip it once by norm and once by value and compare what
each does to the gradient's length, its largest entry and its direction.
"""

# %%
# A gradient that explodes
# ------------------------
#
# A deep stack of bias-free linear layers, Kaiming-normal weights and a mean squared
# error on random data: the same network, seed and data as the lecture note this site
# grew from.
import torch
from torch import nn
from torch.nn.utils import clip_grad_norm_, clip_grad_value_

from mixprec import grad_absmax, grad_norm, grad_snapshot

torch.manual_seed(0)
model = nn.Sequential(*[nn.Linear(128, 128, bias=False) for _ in range(20)])
for layer in model:
    nn.init.kaiming_normal_(layer.weight)
x = torch.randn(32, 128)
y = torch.randn(32, 128)


def backward():
    model.zero_grad(set_to_none=True)
    (model(x) - y).pow(2).mean().backward()


backward()
original = grad_snapshot(model)
print(f"before clipping: norm {grad_norm(model):.1f}, max |g| {grad_absmax(model):.1f}")

# %%
# Why it explodes: sizes across depth
# -----------------------------------
#
# Kaiming initialisation scales the weights for a ReLU after every layer, which this
# network does not have, so each layer makes the activations larger and the output
# error is huge. A weight's gradient is the product of the activation coming into
# its layer, which grows towards the output, and the error signal coming back, which
# grows towards the input: every layer gets a gradient of the same enormous size.
import matplotlib.pyplot as plt

from mixprec import grad_table

inputs, outputs = [], []
h = x
for layer in model:
    inputs.append(h)
    h = layer(h)
    outputs.append(h)
signals = torch.autograd.grad((h - y).pow(2).mean(), outputs)
growth = (outputs[-1].norm() / x.norm()) ** (1 / len(model))
print(f"each layer multiplies the activations' size by {growth:.3f} on average")

depth = range(len(model))
fig, ax = plt.subplots(figsize=(6.5, 3.4), layout="constrained")
ax.semilogy(depth, [a.norm().item() for a in inputs], "s-", label="input activation")
ax.semilogy(depth, [s.norm().item() for s in signals], "^-", label="error signal")
ax.semilogy(depth, [r.norm for r in grad_table(model)], "o-", label="weight gradient")
ax.set_xlabel("layer index (0 = input side)")
ax.set_ylabel("Frobenius norm")
ax.set_title("Activations, error signals and weight gradients across depth")
ax.legend()
plt.show()

# %%
# Clipping by norm keeps the direction
# ------------------------------------
#
# :func:`torch.nn.utils.clip_grad_norm_` multiplies every gradient by
# :math:`\min(1, \tau / \lVert g \rVert)`. The norm becomes the threshold, and the
# cosine similarity with the original gradient stays 1. It returns the norm measured
# *before* clipping.
returned = clip_grad_norm_(model.parameters(), max_norm=1.0)
by_norm = grad_snapshot(model)
print(f"clip_grad_norm_ returned {returned.item():.1f} (the norm before clipping)")
print(f"by norm: norm {grad_norm(model):.3f}, max |g| {grad_absmax(model):.4f}")

# %%
# Clipping by value changes the direction
# ---------------------------------------
#
# :func:`torch.nn.utils.clip_grad_value_` clamps each entry into
# :math:`[-\alpha, \alpha]`. Nearly every entry of this gradient is larger than the
# threshold, so the clipped gradient is close to a sign pattern: its norm is not the
# threshold, and it points elsewhere.
backward()
clip_value = 0.01
clamped = (original.abs() > clip_value).float().mean().item()
print(f"entries larger than the threshold: {clamped:.1%}")
clip_grad_value_(model.parameters(), clip_value=clip_value)
by_value = grad_snapshot(model)
print(f"by value: norm {grad_norm(model):.3f}, max |g| {grad_absmax(model):.4f}")

# %%
# The direction, measured
# -----------------------
#
# Cosine similarity between the clipped and the original gradient, computed by
# :func:`mixprec.cosine_similarity`:
from mixprec import cosine_similarity

similarity = {
    "by norm": cosine_similarity(original, by_norm),
    "by value": cosine_similarity(original, by_value),
}
for method, cosine in similarity.items():
    print(f"clipping {method}: cosine with the original gradient {cosine:.6f}")

fig, ax = plt.subplots(figsize=(5, 2.6), layout="constrained")
ax.barh(list(similarity), list(similarity.values()), color=["C0", "C1"])
ax.set_xlim(0, 1.05)
ax.set_xlabel("cosine similarity with the unclipped gradient")
ax.set_title("Direction after clip_grad_norm_ and clip_grad_value_")
plt.show()

# %%
# Conclusion
# ----------
#
# Clipping by norm shrinks the whole gradient uniformly: the step gets shorter but
# goes the same way. Clipping by value bounds each entry, so the norm lands wherever
# the entries put it and the direction changes. Use :func:`mixprec.grad_norm` and
# :func:`mixprec.grad_table` to see which of your layers are responsible before you
# choose a threshold.
