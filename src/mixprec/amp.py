"""Device choice, autocast dtypes, a tiny AMP training harness and scaler tracing.

Only the device-generic API is used: ``torch.amp.autocast(device_type, dtype=...)``
and ``torch.amp.GradScaler(device)``.

A note on ``torch.amp.GradScaler()`` without a device argument: its device defaults
to ``"cuda"``. In torch 2.13, on a machine without CUDA (a CPU-only or an mps-only
machine) the constructor emits ``UserWarning: torch.cuda.amp.GradScaler is enabled,
but CUDA is not available.  Disabling.`` and the scaler turns itself off:
``scale()`` returns the loss unchanged, ``unscale_()`` and ``update()`` do nothing,
``step()`` always calls ``optimizer.step()`` and ``get_scale()`` returns ``1.0``.
Float16 training then runs with no loss scaling at all. Always pass the device
type, ``torch.amp.GradScaler(device.type)``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import struct
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

__all__ = [
    "DynamicLossScale",
    "History",
    "ScaleEvent",
    "ScalerTrace",
    "StepRecord",
    "autocast_dtypes",
    "pick_device",
    "train",
]

#: Environment variable that overrides :func:`pick_device`.
DEVICE_ENV = "MIXPREC_DEVICE"

_DEVICE_TYPES = ("cpu", "cuda", "mps")
# Candidates only: which of them autocast really supports is found by probing.
_CANDIDATE_DTYPES = (torch.float16, torch.bfloat16)


# ---------------------------------------------------------------------------
# Devices and dtypes
# ---------------------------------------------------------------------------


def _mps_available() -> bool:
    return bool(torch.backends.mps.is_available())


def _available_devices() -> list[str]:
    names = ["cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    return names


def _check_available(device: torch.device, what: str) -> None:
    """Raise ValueError unless ``device`` exists on this machine."""
    available = _available_devices()
    if device.type == "cuda":
        ok = torch.cuda.is_available() and (
            device.index is None or device.index < torch.cuda.device_count()
        )
    elif device.type == "mps":
        ok = _mps_available() and device.index in (None, 0)
    else:
        ok = device.type == "cpu"
    if not ok:
        raise ValueError(
            f"{what} {str(device)!r} is not available on this machine; "
            f"available: {', '.join(available)}"
        )


def pick_device() -> torch.device:
    """Return the device to run on: cuda, then mps, then cpu.

    The environment variable ``MIXPREC_DEVICE`` (``"cpu"``, ``"cuda"``,
    ``"cuda:1"``, ``"mps"``) overrides the choice; an empty value counts as unset.

    Returns
    -------
    torch.device
        The first available of cuda, mps and cpu, or the device named by
        ``MIXPREC_DEVICE``.

    Raises
    ------
    ValueError
        If ``MIXPREC_DEVICE`` names an unknown device type or a device this
        machine does not have. There is no silent fallback.

    Examples
    --------
    >>> pick_device().type in {"cpu", "cuda", "mps"}
    True
    """
    value = os.environ.get(DEVICE_ENV, "").strip()
    if not value:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    accepted = "'cpu', 'cuda', 'cuda:N', 'mps'"
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise ValueError(
            f"{DEVICE_ENV}={value!r} is not a device name; accepted: {accepted}"
        ) from None
    if device.type not in _DEVICE_TYPES:
        raise ValueError(
            f"{DEVICE_ENV}={value!r}: device type {device.type!r} is not supported; "
            f"accepted: {accepted}"
        )
    _check_available(device, DEVICE_ENV)
    return device


@functools.cache
def _probe_autocast_dtypes(device_type: str) -> tuple[torch.dtype, ...]:
    if not torch.amp.autocast_mode.is_autocast_available(device_type):
        return ()
    a = torch.ones(2, 2, device=device_type)
    found = []
    for dtype in _CANDIDATE_DTYPES:
        # An unsupported dtype makes autocast warn and disable itself (CPU, mps)
        # or raise (bfloat16 on an old CUDA GPU); both mean "not supported", and
        # the result dtype of the matmul is the real answer.
        try:
            with (
                warnings.catch_warnings(),
                torch.no_grad(),
                torch.amp.autocast(device_type, dtype=dtype),
            ):
                warnings.simplefilter("ignore")
                ok = torch.mm(a, a).dtype == dtype
        except RuntimeError:
            ok = False
        if ok:
            found.append(dtype)
    return tuple(found)


def autocast_dtypes(device: str | torch.device) -> tuple[torch.dtype, ...]:
    """Low-precision dtypes that ``torch.amp.autocast`` supports on ``device``.

    Found by probing torch, not from a table: for float16 and bfloat16, a tiny
    matmul runs under autocast and counts if its result has that dtype. The
    answer is cached per device type.

    Parameters
    ----------
    device : str or torch.device
        A device such as ``"cpu"``, ``"cuda:0"`` or ``torch.device("mps")``.

    Returns
    -------
    tuple of torch.dtype
        Empty if autocast is not available for the device type at all.

    Raises
    ------
    ValueError
        If the device does not exist on this machine (it cannot be probed).

    Examples
    --------
    >>> torch.bfloat16 in autocast_dtypes("cpu")
    True
    """
    device = torch.device(device)
    _check_available(device, "device")
    return _probe_autocast_dtypes(device.type)


def _check_dtype(device: torch.device, dtype: torch.dtype) -> None:
    supported = autocast_dtypes(device)
    if dtype not in supported:
        names = ", ".join(str(d) for d in supported) or "none"
        raise ValueError(
            f"autocast on {device.type!r} does not support dtype={dtype}; "
            f"supported: {names} (use dtype=None to train in float32 "
            "without autocast)"
        )


# ---------------------------------------------------------------------------
# Dynamic loss scaling, re-implemented and traced
# ---------------------------------------------------------------------------


def _float32(x: float) -> float:
    """Round a Python float to the nearest float32, as a C cast does."""
    try:
        return struct.unpack("f", struct.pack("f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


@dataclass
class DynamicLossScale:
    """GradScaler's dynamic loss-scaling rule in pure Python.

    On a step with inf/NaN gradients the scale is multiplied by
    ``backoff_factor`` and the count of clean steps restarts at 0. After
    ``growth_interval`` consecutive clean steps the scale is multiplied by
    ``growth_factor`` (unless that would overflow float32) and the count
    restarts. The scale is kept in float32, like ``torch.amp.GradScaler``'s,
    so the two agree step for step.

    Parameters
    ----------
    init_scale, growth_factor, backoff_factor, growth_interval
        As for ``torch.amp.GradScaler``, with the same defaults.

    Attributes
    ----------
    scale : float
        The current scale (a float32 value).
    clean_steps : int
        Consecutive clean steps since the last growth or backoff (GradScaler's
        ``"_growth_tracker"``).

    Examples
    --------
    >>> rule = DynamicLossScale(init_scale=8.0, growth_interval=2)
    >>> [rule.update(found_inf) for found_inf in (False, False, True, False)]
    [8.0, 16.0, 8.0, 8.0]
    """

    init_scale: float = 2.0**16
    growth_factor: float = 2.0
    backoff_factor: float = 0.5
    growth_interval: int = 2000
    scale: float = field(init=False)
    clean_steps: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if not self.growth_factor > 1.0:
            raise ValueError(f"growth_factor must be > 1, got {self.growth_factor}")
        if not 0.0 < self.backoff_factor < 1.0:
            raise ValueError(
                f"backoff_factor must be in (0, 1), got {self.backoff_factor}"
            )
        if not (isinstance(self.growth_interval, int) and self.growth_interval >= 1):
            raise ValueError(
                f"growth_interval must be an int >= 1, got {self.growth_interval!r}"
            )
        self.scale = _float32(self.init_scale)

    def update(self, found_inf: bool) -> float:
        """Apply one step's outcome and return the new scale.

        Parameters
        ----------
        found_inf : bool
            Whether this step's gradients had an inf or NaN (the step that
            GradScaler skips).
        """
        if found_inf:
            self.scale = _float32(self.scale * self.backoff_factor)
            self.clean_steps = 0
        elif self.clean_steps + 1 == self.growth_interval:
            grown = _float32(self.scale * self.growth_factor)
            if math.isfinite(grown):
                self.scale = grown
            self.clean_steps = 0
        else:
            self.clean_steps += 1
        return self.scale


@dataclass(frozen=True)
class ScaleEvent:
    """One ``GradScaler.update()`` call seen by :class:`ScalerTrace`.

    ``skipped`` is None when the scale was set by hand (``update(new_scale)``),
    because the scale change then says nothing about the step.
    """

    step: int
    scale_before: float
    scale_after: float
    skipped: bool | None


class ScalerTrace:
    """Record what a ``torch.amp.GradScaler`` does, in any training loop.

    Wrap the scaler and use the wrapper in its place; every attribute is
    forwarded, and each ``update()`` appends a :class:`ScaleEvent` to
    ``events`` with the scale before and after and whether the step was
    skipped.

    A step counts as skipped when ``update()`` lowered the scale. GradScaler
    skips ``optimizer.step()`` exactly when it found inf/NaN gradients, and
    then, and only then, ``update()`` multiplies the scale by
    ``backoff_factor < 1``. This uses only the public ``get_scale()`` and works
    for fused optimizers too, which skip inside ``optimizer.step()``; the
    alternative, GradScaler's per-optimizer ``found_inf_per_device``, is
    private state that ``update()`` clears. It fails only in degenerate cases:
    a scale that has decayed to 0, or a ``backoff_factor`` so close to 1 that
    the float32 product rounds back to the same scale.

    Parameters
    ----------
    scaler : torch.amp.GradScaler

    Examples
    --------
    >>> model = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> scaler = ScalerTrace(torch.amp.GradScaler("cpu", init_scale=1024.0))
    >>> for overflow in (False, True):
    ...     opt.zero_grad()
    ...     scaler.scale(model(torch.ones(1, 2)).sum()).backward()
    ...     if overflow:
    ...         _ = model.bias.grad.fill_(float("inf"))
    ...     _ = scaler.step(opt)
    ...     scaler.update()
    >>> scaler.skipped_steps, scaler.get_scale()
    ([1], 512.0)
    """

    def __init__(self, scaler: torch.amp.GradScaler) -> None:
        if not isinstance(scaler, torch.amp.GradScaler):
            raise TypeError(
                f"ScalerTrace wraps a torch.amp.GradScaler, got {type(scaler).__name__}"
            )
        self.scaler = scaler
        self.events: list[ScaleEvent] = []

    def update(self, new_scale: float | torch.Tensor | None = None) -> None:
        """Call ``scaler.update(new_scale)`` and record a :class:`ScaleEvent`."""
        before = self.scaler.get_scale()
        self.scaler.update(new_scale)
        after = self.scaler.get_scale()
        skipped = None if new_scale is not None else after < before
        self.events.append(ScaleEvent(len(self.events), before, after, skipped))

    def __getattr__(self, name: str):
        # Only called for attributes not found on the wrapper itself.
        if "scaler" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["scaler"], name)

    @property
    def scales(self) -> list[float]:
        """Scale used by each recorded step (before its update)."""
        return [e.scale_before for e in self.events]

    @property
    def skipped_steps(self) -> list[int]:
        """Indices of the recorded steps whose optimizer step was skipped."""
        return [e.step for e in self.events if e.skipped]


# ---------------------------------------------------------------------------
# Training harness
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StepRecord:
    """What happened in one training step.

    Attributes
    ----------
    step : int
    loss : float
        The unscaled loss (inf/NaN if the forward pass overflowed).
    grad_norm : float
        Total 2-norm of the gradients after unscaling and before clipping;
        inf or NaN when they overflowed.
    scale : float
        Loss scale used for this step's backward pass; 1.0 without a scaler.
    skipped : bool
        Whether GradScaler skipped the optimizer step.
    seconds : float
        Wall time of the step.
    """

    step: int
    loss: float
    grad_norm: float
    scale: float
    skipped: bool
    seconds: float


@dataclass
class History:
    """Per-step records of a :func:`train` run, with list views for plotting.

    Examples
    --------
    >>> h = History([StepRecord(0, 1.0, 2.0, 8.0, True, 0.1)], "cpu", None, True)
    >>> h.losses, h.scales, h.skipped_steps, h.label
    ([1.0], [8.0], [0], 'cpu float32 + GradScaler')
    """

    records: list[StepRecord] = field(default_factory=list)
    device: str = "cpu"
    dtype: torch.dtype | None = None
    scaled: bool = False

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[StepRecord]:
        return iter(self.records)

    @property
    def steps(self) -> list[int]:
        return [r.step for r in self.records]

    @property
    def losses(self) -> list[float]:
        return [r.loss for r in self.records]

    @property
    def grad_norms(self) -> list[float]:
        return [r.grad_norm for r in self.records]

    @property
    def scales(self) -> list[float]:
        return [r.scale for r in self.records]

    @property
    def skipped(self) -> list[bool]:
        return [r.skipped for r in self.records]

    @property
    def seconds(self) -> list[float]:
        return [r.seconds for r in self.records]

    @property
    def skipped_steps(self) -> list[int]:
        """Indices of the steps whose optimizer step was skipped."""
        return [r.step for r in self.records if r.skipped]

    @property
    def label(self) -> str:
        """Short legend text, e.g. ``'cpu float16 + GradScaler'``."""
        name = str(self.dtype or torch.float32).removeprefix("torch.")
        return f"{self.device} {name}" + (" + GradScaler" if self.scaled else "")

    def as_dict(self) -> dict[str, list]:
        """Columns ``step, loss, grad_norm, scale, skipped, seconds`` as lists."""
        columns: dict[str, list] = {f.name: [] for f in fields(StepRecord)}
        for record in self.records:
            for name, value in asdict(record).items():
                columns[name].append(value)
        return columns


def train(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    device: str | torch.device,
    dtype: torch.dtype | None = None,
    scaler: bool | torch.amp.GradScaler | ScalerTrace = False,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    clip_norm: float | None = None,
    steps: int | None = None,
) -> History:
    """Train ``model`` with the standard AMP recipe and record every step.

    Each step: ``zero_grad(set_to_none=True)``, forward pass under
    ``torch.amp.autocast(device.type, dtype=dtype)``,
    ``scaler.scale(loss).backward()``, ``scaler.unscale_(optimizer)``,
    optional ``clip_grad_norm_``, ``scaler.step(optimizer)``,
    ``scaler.update()``.

    Parameters
    ----------
    model : torch.nn.Module
        Moved to ``device`` in place.
    batches : iterable of (inputs, targets)
        Moved to ``device`` batch by batch.
    device : str or torch.device
    dtype : torch.dtype or None
        Autocast dtype, one of :func:`autocast_dtypes` for the device; None
        trains in float32 without autocast.
    scaler : bool or torch.amp.GradScaler or ScalerTrace
        True makes a ``torch.amp.GradScaler(device.type)``; False uses none.
    optimizer : torch.optim.Optimizer, optional
        Default: ``torch.optim.SGD(model.parameters(), lr=lr)``.
    lr : float, optional
        Learning rate of the default optimizer (default 0.01); not allowed
        together with ``optimizer``.
    loss_fn : callable, optional
        ``loss_fn(outputs, targets)``; default ``torch.nn.functional.mse_loss``.
    clip_norm : float, optional
        If given, gradients are clipped to this total 2-norm after unscaling.
    steps : int, optional
        Number of steps, cycling over ``batches``; default one pass.

    Returns
    -------
    History

    Raises
    ------
    ValueError
        For an autocast dtype the device does not support, an unavailable
        device, ``lr`` together with ``optimizer``, or no batches.
    FloatingPointError
        Without an enabled scaler, when the loss or the gradient norm is not
        finite: the optimizer step would write inf/NaN into the weights. With
        a scaler, non-finite values are GradScaler's business: it inspects the
        gradients (not the loss), skips the step and backs off the scale, and
        the step is recorded with ``skipped=True``.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(8, 3)
    >>> batches = [(x, x.sum(dim=1, keepdim=True))] * 5
    >>> h = train(torch.nn.Linear(3, 1), batches, device="cpu", lr=0.1)
    >>> len(h), h.scales[0], h.skipped_steps, h.losses[-1] < h.losses[0]
    (5, 1.0, [], True)
    """
    device = torch.device(device)
    _check_available(device, "device")
    if dtype is not None:
        _check_dtype(device, dtype)
    if optimizer is not None and lr is not None:
        raise ValueError("pass either optimizer or lr, not both")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")

    if scaler is True:
        scaler = torch.amp.GradScaler(device.type)
    if scaler is False:
        trace = None
    elif isinstance(scaler, ScalerTrace):
        trace = scaler
    elif isinstance(scaler, torch.amp.GradScaler):
        trace = ScalerTrace(scaler)
    else:
        raise TypeError(
            "scaler must be a bool, a torch.amp.GradScaler or a ScalerTrace, "
            f"got {type(scaler).__name__}"
        )
    scaled = trace is not None and trace.is_enabled()

    model.to(device)
    model.train()
    if optimizer is None:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01 if lr is None else lr)
    if loss_fn is None:
        loss_fn = nn.functional.mse_loss
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if steps is not None:
        batches = itertools.islice(itertools.cycle(batches), steps)

    history = History(device=str(device), dtype=dtype, scaled=scaled)
    for step, (inputs, targets) in enumerate(batches):
        start = time.perf_counter()
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad(set_to_none=True)
        context = (
            contextlib.nullcontext()
            if dtype is None
            else torch.amp.autocast(device.type, dtype=dtype)
        )
        with context:
            loss = loss_fn(model(inputs), targets)
        loss_value = float(loss.detach())
        if not scaled and not math.isfinite(loss_value):
            raise FloatingPointError(
                f"step {step}: loss is {loss_value} and no GradScaler is enabled"
            )

        if trace is not None:
            trace.scale(loss).backward()
            trace.unscale_(optimizer)
        else:
            loss.backward()
        grads = [p.grad for p in params if p.grad is not None]
        if clip_norm is not None:
            norm = nn.utils.clip_grad_norm_(params, clip_norm)
        else:
            norm = nn.utils.get_total_norm(grads)
        grad_norm = float(norm)
        if not scaled and not math.isfinite(grad_norm):
            raise FloatingPointError(
                f"step {step}: gradient norm is {grad_norm} and no GradScaler "
                "is enabled"
            )

        if trace is not None:
            trace.step(optimizer)
            # ScalerTrace.update() decides "skipped" from the public get_scale():
            # the scale drops exactly when GradScaler found inf/NaN and skipped
            # the step (see ScalerTrace for why not the private found_inf state).
            trace.update()
            event = trace.events[-1]
            scale, skipped = event.scale_before, bool(event.skipped)
        else:
            optimizer.step()
            scale, skipped = 1.0, False
        seconds = time.perf_counter() - start
        history.records.append(
            StepRecord(step, loss_value, grad_norm, scale, skipped, seconds)
        )
    if not history.records:
        raise ValueError("batches is empty: nothing to train on")
    return history
