"""
What autocast runs in low precision
===================================

Inside a :class:`torch.amp.autocast` region, PyTorch picks a dtype for each op:
some ops run in the low-precision dtype, some in float32, and the rest simply keep
the dtype of their inputs. We run real ops on this machine's device and print what
comes out, then look at parameters, gradients, in-place ops and regions where
autocast is switched off.
"""

# %%
# The device and its autocast dtypes
# ----------------------------------
#
# :func:`mixprec.pick_device` chooses cuda, then mps, then cpu, and
# :func:`mixprec.autocast_dtypes` finds out by probing which low-precision dtypes
# autocast supports there. Every table below is measured on this device.
import torch
import torch.nn.functional as F

from mixprec import autocast_dtypes, pick_device

torch.manual_seed(0)
device = pick_device()
dtypes = autocast_dtypes(device)


def name(dtype):
    return str(dtype).removeprefix("torch.")


print(f"device: {device}, autocast dtypes: {', '.join(name(d) for d in dtypes)}")

# %%
# Result dtypes of common ops
# ---------------------------
#
# Each op gets either a float32 input or an input already in the autocast dtype,
# as it would be after a linear layer. The weights ``w`` and ``k`` are float32, like
# a model's parameters.
x32 = torch.randn(4, 8, device=device)
w = torch.randn(8, 8, device=device)
k = torch.randn(2, 1, 3, device=device)
labels = torch.randint(0, 8, (4,), device=device)
ops = {
    "linear": lambda x: F.linear(x, w),
    "matmul": lambda x: x @ w,
    "conv1d": lambda x: F.conv1d(x.unsqueeze(1), k),
    "softmax": lambda x: F.softmax(x, dim=-1),
    "log_softmax": lambda x: F.log_softmax(x, dim=-1),
    "layer_norm": lambda x: F.layer_norm(x, x.shape[-1:]),
    "sum": lambda x: x.sum(),
    "mse_loss": lambda x: F.mse_loss(x, torch.zeros_like(x)),
    "cross_entropy": lambda x: F.cross_entropy(x, labels),
    "exp": lambda x: x.exp(),
    "log": lambda x: x.abs().log(),
    "pow": lambda x: x.pow(2),
}

# %%
# Under autocast, each op runs on both inputs and we record the dtype of the
# result. Each column names the autocast dtype and the dtype of the op's input.
results = {}
for dtype in dtypes:
    for x in (x32, x32.to(dtype)):
        with torch.amp.autocast(device.type, dtype=dtype):
            results[dtype, x.dtype] = {op: fn(x).dtype for op, fn in ops.items()}

print(f"{'autocast':<14}" + "".join(f"{name(ac):>12}" for ac, _ in results))
print(f"{'input':<14}" + "".join(f"{name(inp):>12}" for _, inp in results))
for op in ops:
    print(f"{op:<14}" + "".join(f"{name(c[op]):>12}" for c in results.values()))

# %%
# Matrix products (linear, matmul, convolution) are the ops autocast moves into low
# precision, even from a float32 input. For the other ops, what matters is whether
# they are on the device's list of ops that autocast to float32: the lines below
# name, for a low-precision input, which ops came back in float32 on this device
# and which stayed in low precision.
for dtype in dtypes:
    column = results[dtype, dtype]
    up = [op for op in ops if column[op] == torch.float32]
    kept = [op for op in ops if column[op] == dtype]
    print(f"{device.type}, {name(dtype)} input -> float32: {', '.join(up) or '-'}")
    print(f"{device.type}, {name(dtype)} input -> {name(dtype)}: {', '.join(kept)}")

# %%
# These lists differ by device. PyTorch documents separate op lists for CUDA and
# for CPU in the "Autocast Op Reference" of its :mod:`torch.amp` documentation: for
# CUDA it lists softmax, log_softmax, layer_norm, sum, exp, log, pow and most losses
# among the ops that autocast to float32. That is PyTorch's documentation of CUDA,
# not something measured here; the table above shows only what this device did. A
# sentence such as "autocast keeps softmax in float32" is true only for the devices
# whose list contains softmax.

# %%
# Parameters and their gradients stay float32
# -------------------------------------------
#
# Autocast does not convert the model. It casts a low-precision copy of each weight
# for the ops that need one, so the parameters stay float32; the cast is part of the
# autograd graph, and its backward turns the gradient back into float32.
model = torch.nn.Linear(8, 2).to(device)
dtype = dtypes[0]
with torch.amp.autocast(device.type, dtype=dtype):
    out = model(x32)
    loss = F.mse_loss(out, torch.zeros_like(out))
loss.backward()
print(f"autocast {name(dtype)}: output {name(out.dtype)}, loss {name(loss.dtype)}")
print(f"parameter: weight {name(model.weight.dtype)}, bias {name(model.bias.dtype)}")
print(f"gradient:  weight {name(model.weight.grad.dtype)}, ", end="")
print(f"bias {name(model.bias.grad.dtype)}")

# %%
# In-place ops, type promotion and explicit dtypes
# ------------------------------------------------
#
# Autocast only changes out-of-place ops. An in-place op writes into an existing
# tensor, so ``a.add_(b)`` keeps the dtype of ``a``. Ops outside autocast's lists
# follow ordinary type promotion: adding a float32 and a low-precision tensor gives
# float32. An explicit ``dtype=`` argument or ``.float()`` is always obeyed.
with torch.amp.autocast(device.type, dtype=dtype):
    b = F.linear(x32, w)
    a = torch.zeros(4, 8, device=device)
    a.add_(b)
    checks = {
        "b = linear(x, w)": b.dtype,
        "a.add_(b), a float32": a.dtype,
        "b + b": (b + b).dtype,
        "a + b": (a + b).dtype,
        "softmax(b, dtype=float32)": F.softmax(b, dim=-1, dtype=torch.float32).dtype,
        "sum(b, dtype=float32)": torch.sum(b, dtype=torch.float32).dtype,
        "b.float()": b.float().dtype,
    }
for expression, result in checks.items():
    print(f"{expression:<28} -> {name(result)}")

# %%
# Switching autocast off for a region
# -----------------------------------
#
# ``torch.amp.autocast(device.type, enabled=False)`` inside an autocast region turns
# it off for a few lines, for example around a numerically delicate computation.
# There, ops run in the dtypes they are given: a float32 input gives a float32
# result, and a low-precision tensor from the surrounding region has to be cast with
# ``.float()`` by hand, or a matrix product with float32 weights fails.
with torch.amp.autocast(device.type, dtype=dtype):
    b = F.linear(x32, w)
    with torch.amp.autocast(device.type, enabled=False):
        print(f"off, linear(x, w):         {name(F.linear(x32, w).dtype)}")
        try:
            F.linear(b, w)
        except RuntimeError as error:
            print(f"off, linear(b, w):         RuntimeError: {error}")
        print(f"off, linear(b.float(), w): {name(F.linear(b.float(), w).dtype)}")
    print(f"on again, linear(x, w):    {name(F.linear(x32, w).dtype)}")

# %%
# Conclusion
# ----------
#
# Autocast runs the matrix products in low precision and keeps parameters and their
# gradients in float32. Which of the remaining ops it lifts to float32 depends on
# the device, so check the table on the device you train on rather than trusting a
# list written for another one. :func:`mixprec.autocast_dtypes` tells you which
# dtypes your device supports; the next examples show why float16 gradients need
# loss scaling.
