"""Gradient statistics around torch's gradient clipping.

This module measures gradients; it does not clip them. Clipping itself is
:func:`torch.nn.utils.clip_grad_norm_` and :func:`torch.nn.utils.clip_grad_value_`,
and the global norm here is computed by :func:`torch.nn.utils.get_total_norm`, the
same function ``clip_grad_norm_`` uses, so :func:`grad_norm` reports exactly the norm
that clipping sees.

Every function takes an :class:`torch.nn.Module`, an iterable of parameters, or a
single parameter tensor, and reads each parameter's ``.grad``. Parameters whose
``.grad`` is ``None`` are skipped. Non-finite gradients are reported (NaN propagates
into norms, :func:`nonfinite_count` counts inf and NaN entries), never filtered out.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import get_total_norm

__all__ = [
    "ParamGradStats",
    "cosine_similarity",
    "format_grad_table",
    "grad_absmax",
    "grad_norm",
    "grad_snapshot",
    "grad_table",
    "nonfinite_count",
]

_ACCEPTED = "an nn.Module, a parameter tensor, or an iterable of parameter tensors"


def _check_norm_type(norm_type: object) -> float:
    """Return ``norm_type`` as a float, or raise if it is not a p-norm order."""
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real):
        raise TypeError(
            "norm_type must be a positive real number or float('inf'), "
            f"got {type(norm_type).__name__} {norm_type!r}"
        )
    p = float(norm_type)
    if not p > 0:  # also rejects NaN
        raise ValueError(
            f"norm_type must be a positive real number or float('inf'), got {p!r}"
        )
    return p


def _named_params(obj: object) -> list[tuple[str, torch.Tensor]]:
    """Return ``(name, parameter)`` pairs for a module, a tensor or an iterable."""
    if isinstance(obj, nn.Module):
        return list(obj.named_parameters())
    if isinstance(obj, torch.Tensor):
        return [("", obj)]
    if isinstance(obj, (str, bytes, dict)) or not isinstance(obj, Iterable):
        raise TypeError(f"expected {_ACCEPTED}; got {type(obj).__name__}")
    pairs = []
    for i, item in enumerate(obj):
        if not isinstance(item, torch.Tensor):
            raise TypeError(
                f"expected {_ACCEPTED}; item {i} of the iterable is "
                f"{type(item).__name__}"
            )
        pairs.append((str(i), item))
    return pairs


def _check_grad(name: str, grad: torch.Tensor) -> torch.Tensor:
    """Raise unless ``grad`` is a dense floating-point tensor."""
    label = f"parameter {name!r}" if name else "the parameter"
    if grad.layout != torch.strided:
        raise TypeError(
            f"the gradient of {label} has layout {grad.layout}; only dense (strided) "
            "gradients are supported, as in torch's clip_grad_norm_"
        )
    if not grad.is_floating_point():
        raise TypeError(
            f"the gradient of {label} has dtype {grad.dtype}; only floating-point "
            "gradients (float16, bfloat16, float32, float64, ...) are supported"
        )
    return grad.detach()


def _named_grads(obj: object) -> list[tuple[str, torch.Tensor]]:
    """Return ``(name, grad)`` for every parameter that has a gradient."""
    pairs = [
        (name, _check_grad(name, p.grad))
        for name, p in _named_params(obj)
        if p.grad is not None
    ]
    if not pairs:
        raise ValueError(
            "no parameter has a gradient (every .grad is None): call backward() "
            "first, and pass the parameters or the module, not the gradients"
        )
    return pairs


def _grads(obj: object) -> list[torch.Tensor]:
    return [g for _, g in _named_grads(obj)]


def _norm(grads: list[torch.Tensor], p: float) -> float:
    return get_total_norm(grads, norm_type=p).item()


def _nonfinite(grads: list[torch.Tensor]) -> int:
    return sum(int((~torch.isfinite(g)).sum()) for g in grads)


def grad_norm(params_or_model: object, norm_type: float = 2.0) -> float:
    """Global p-norm of all gradients, as ``clip_grad_norm_`` computes it.

    The gradients are viewed as one concatenated vector. The value comes from
    :func:`torch.nn.utils.get_total_norm`, so it is the number
    ``clip_grad_norm_(..., norm_type=norm_type)`` compares with ``max_norm`` and
    returns. Each gradient's norm is computed in that gradient's dtype.

    Parameters
    ----------
    params_or_model : nn.Module, Tensor or iterable of Tensor
        Parameters whose ``.grad`` is read; those without a gradient are skipped.
    norm_type : float, default 2.0
        Order p of the norm: any positive number, or ``float("inf")`` for the
        largest absolute entry.

    Returns
    -------
    float
        The norm; NaN if any gradient entry is NaN, inf if one is infinite.

    Raises
    ------
    TypeError
        If the input is not a module, a tensor or an iterable of tensors, a
        gradient is not a dense floating-point tensor, or ``norm_type`` is not a
        real number.
    ValueError
        If no parameter has a gradient, or ``norm_type`` is not positive.

    Examples
    --------
    >>> import torch
    >>> w = torch.zeros(2, requires_grad=True)
    >>> w.grad = torch.tensor([3.0, -4.0])
    >>> grad_norm(w)
    5.0
    >>> grad_norm(w, norm_type=1), grad_norm(w, norm_type=float("inf"))
    (7.0, 4.0)
    """
    p = _check_norm_type(norm_type)
    return _norm(_grads(params_or_model), p)


def grad_absmax(params_or_model: object) -> float:
    """Largest absolute gradient entry (the inf-norm), NaN if any entry is NaN.

    This is ``grad_norm(params_or_model, float("inf"))``; it is what
    ``clip_grad_value_`` bounds.

    Parameters
    ----------
    params_or_model : nn.Module, Tensor or iterable of Tensor
        Parameters whose ``.grad`` is read; those without a gradient are skipped.

    Returns
    -------
    float
        ``max |g_i|`` over all gradient entries.

    Examples
    --------
    >>> import torch
    >>> w = torch.zeros(3, requires_grad=True)
    >>> w.grad = torch.tensor([0.5, -2.0, 1.0])
    >>> grad_absmax(w)
    2.0
    """
    return grad_norm(params_or_model, float("inf"))


def nonfinite_count(params_or_model: object) -> int:
    """Number of gradient entries that are inf, -inf or NaN.

    Parameters
    ----------
    params_or_model : nn.Module, Tensor or iterable of Tensor
        Parameters whose ``.grad`` is read; those without a gradient are skipped.

    Returns
    -------
    int
        Count of non-finite entries over all gradients.

    Examples
    --------
    >>> import torch
    >>> w = torch.zeros(4, requires_grad=True)
    >>> w.grad = torch.tensor([1.0, float("nan"), float("inf"), 0.0])
    >>> nonfinite_count(w)
    2
    """
    return _nonfinite(_grads(params_or_model))


@dataclass(frozen=True)
class ParamGradStats:
    """Gradient statistics of one parameter, or of one layer's parameters.

    Attributes
    ----------
    name : str
        Parameter name (``"0.weight"``), or module name (``"0"``) for a layer row;
        ``""`` is the root module.
    shape : tuple of int or None
        Shape of the parameter; ``None`` for a layer row.
    numel : int
        Number of gradient entries.
    norm : float
        p-norm of the gradient entries, computed by ``get_total_norm``.
    norm_type : float
        The p of ``norm``.
    absmax : float
        Largest absolute gradient entry.
    nonfinite : int
        Number of inf or NaN gradient entries.
    """

    name: str
    shape: tuple[int, ...] | None
    numel: int
    norm: float
    norm_type: float
    absmax: float
    nonfinite: int


def _row(
    name: str, shape: tuple[int, ...] | None, grads: list[torch.Tensor], p: float
) -> ParamGradStats:
    return ParamGradStats(
        name=name,
        shape=shape,
        numel=sum(g.numel() for g in grads),
        norm=_norm(grads, p),
        norm_type=p,
        absmax=_norm(grads, float("inf")),
        nonfinite=_nonfinite(grads),
    )


def grad_table(
    model: nn.Module, norm_type: float = 2.0, *, by: str = "parameter"
) -> list[ParamGradStats]:
    """Per-parameter or per-layer gradient statistics of a module.

    Parameters
    ----------
    model : nn.Module
        The module; parameters whose ``.grad`` is ``None`` get no row.
    norm_type : float, default 2.0
        Order p of the ``norm`` column (positive, or ``float("inf")``).
    by : {"parameter", "layer"}, default "parameter"
        ``"parameter"``: one row per parameter, in ``named_parameters()`` order.
        ``"layer"``: one row per module that directly owns parameters (the name
        prefix before the last dot), over all of that module's gradients.

    Returns
    -------
    list of ParamGradStats
        The rows; print them with :func:`format_grad_table`.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(2, 1))
    >>> model[0].weight.grad = torch.tensor([[3.0, 0.0]])
    >>> model[0].bias.grad = torch.tensor([-4.0])
    >>> [(r.name, r.norm) for r in grad_table(model)]
    [('0.weight', 3.0), ('0.bias', 4.0)]
    >>> [(r.name, r.numel, r.norm) for r in grad_table(model, by="layer")]
    [('0', 3, 5.0)]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"grad_table expects an nn.Module (for parameter names); "
            f"got {type(model).__name__}"
        )
    p = _check_norm_type(norm_type)
    named = _named_grads(model)
    if by == "parameter":
        return [_row(name, tuple(g.shape), [g], p) for name, g in named]
    if by == "layer":
        groups: dict[str, list[torch.Tensor]] = {}
        for name, g in named:
            groups.setdefault(name.rpartition(".")[0], []).append(g)
        return [_row(layer, None, gs, p) for layer, gs in groups.items()]
    raise ValueError(f"by must be 'parameter' or 'layer', got {by!r}")


def _fmt_p(p: float) -> str:
    return "inf" if math.isinf(p) else f"{p:g}"


def format_grad_table(rows: Iterable[ParamGradStats], digits: int = 4) -> str:
    """Format rows from :func:`grad_table` as a fixed-width text table.

    Parameters
    ----------
    rows : iterable of ParamGradStats
        Rows to show, in order; all must share one ``norm_type``.
    digits : int, default 4
        Significant digits of the ``norm`` and ``absmax`` columns.

    Returns
    -------
    str
        A header line, a rule and one line per row, without a trailing newline.
        Layer rows show ``-`` as shape; the root module shows as ``(root)``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(2, 1))
    >>> model[0].weight.grad = torch.tensor([[3.0, float("nan")]])
    >>> model[0].bias.grad = torch.tensor([-4.0])
    >>> print(format_grad_table(grad_table(model)))
    name      shape  numel  norm(p=2)  absmax  nonfinite
    --------  -----  -----  ---------  ------  ---------
    0.weight  1x2        2        nan     nan          1
    0.bias    1          1          4       4          0
    """
    rows = list(rows)
    if not all(isinstance(r, ParamGradStats) for r in rows):
        raise TypeError("rows must be ParamGradStats objects, as grad_table returns")
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
        raise ValueError(f"digits must be a positive int, got {digits!r}")
    norm_types = {r.norm_type for r in rows}
    if len(norm_types) > 1:
        raise ValueError(f"rows mix norm types {sorted(norm_types)}; use one p")
    p = _fmt_p(norm_types.pop()) if norm_types else "?"
    header = ["name", "shape", "numel", f"norm(p={p})", "absmax", "nonfinite"]
    body = [
        [
            r.name or "(root)",
            "-" if r.shape is None else "x".join(map(str, r.shape)) or "()",
            str(r.numel),
            f"{r.norm:.{digits}g}",
            f"{r.absmax:.{digits}g}",
            str(r.nonfinite),
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(6)]
    rule = ["-" * w for w in widths]

    def line(cells: list[str]) -> str:
        left = [c.ljust(w) for c, w in zip(cells[:2], widths[:2], strict=True)]
        right = [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
        return "  ".join(left + right).rstrip()

    return "\n".join(line(cells) for cells in [header, rule, *body])


def grad_snapshot(model_or_params: object) -> torch.Tensor:
    """Copy all gradients into one flat, detached vector.

    Gradients are concatenated in parameter order; parameters without a gradient
    are skipped, so two snapshots are comparable only if the same parameters had
    gradients. The copy is independent of later in-place changes such as
    clipping.

    Parameters
    ----------
    model_or_params : nn.Module, Tensor or iterable of Tensor
        Parameters whose ``.grad`` is read.

    Returns
    -------
    torch.Tensor
        1-D tensor on the first gradient's device. Its dtype is float32, or
        float64 if any gradient is float64: float16 and bfloat16 gradients are
        widened (exactly), never narrowed.

    Examples
    --------
    >>> import torch
    >>> w = torch.zeros(2, 2, dtype=torch.bfloat16, requires_grad=True)
    >>> w.grad = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.bfloat16)
    >>> grad_snapshot(w)
    tensor([1., 2., 3., 4.])
    """
    grads = _grads(model_or_params)
    dtype = torch.float32
    for g in grads:
        dtype = torch.promote_types(dtype, g.dtype)
    device = grads[0].device
    return torch.cat([g.reshape(-1).to(device=device, dtype=dtype) for g in grads])


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine of the angle between two gradient snapshots.

    1.0 means the same direction (clip-by-norm only rescales, so it keeps 1.0);
    clip-by-value changes the direction and gives less than 1. Computed in
    float64. NaN in either snapshot gives NaN.

    Parameters
    ----------
    a, b : torch.Tensor
        Snapshots from :func:`grad_snapshot`, or any two floating-point tensors
        of the same shape.

    Returns
    -------
    float
        ``<a, b> / (||a|| ||b||)``, in [-1, 1] up to rounding.

    Raises
    ------
    TypeError
        If ``a`` or ``b`` is not a floating-point tensor.
    ValueError
        If the shapes differ or either vector is zero (no direction).

    Examples
    --------
    >>> import torch
    >>> cosine_similarity(torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.0]))
    1.0
    >>> cosine_similarity(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 3.0]))
    0.0
    """
    for label, t in (("a", a), ("b", b)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            what = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
            raise TypeError(
                f"{label} must be a floating-point torch.Tensor (for example from "
                f"grad_snapshot), got {what}"
            )
    if a.shape != b.shape:
        raise ValueError(
            f"snapshots must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}; were the same parameters given gradients?"
        )
    x = a.detach().reshape(-1).double()
    y = b.detach().reshape(-1).to(device=x.device, dtype=torch.float64)
    nx, ny = torch.linalg.vector_norm(x), torch.linalg.vector_norm(y)
    for label, n in (("a", nx), ("b", ny)):
        if n == 0:
            raise ValueError(
                f"{label} is a zero vector, which has no direction; the cosine "
                "similarity is undefined"
            )
    return (torch.dot(x, y) / (nx * ny)).item()
