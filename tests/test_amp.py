import itertools
import math
import random

import pytest
import torch

from mixprec.amp import (
    DynamicLossScale,
    History,
    ScalerTrace,
    autocast_dtypes,
    pick_device,
    train,
)

# ---------------------------------------------------------------------------
# pick_device
# ---------------------------------------------------------------------------


def test_pick_device_honours_env(monkeypatch):
    monkeypatch.setenv("MIXPREC_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")


def test_pick_device_empty_env_counts_as_unset(monkeypatch):
    monkeypatch.setenv("MIXPREC_DEVICE", " ")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_pick_device_order(monkeypatch, cuda, mps, expected):
    monkeypatch.delenv("MIXPREC_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device() == torch.device(expected)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("tpu", "not a device name; accepted: 'cpu', 'cuda', 'cuda:N', 'mps'"),
        ("cuda:x", "not a device name"),
        ("meta", "device type 'meta' is not supported; accepted"),
        ("cuda:99", "'cuda:99' is not available on this machine; available: cpu"),
    ],
)
def test_pick_device_rejects_bad_values(monkeypatch, value, message):
    monkeypatch.setenv("MIXPREC_DEVICE", value)
    with pytest.raises(ValueError, match=f"MIXPREC_DEVICE.*{message}"):
        pick_device()


def test_pick_device_rejects_missing_mps(monkeypatch):
    monkeypatch.setenv("MIXPREC_DEVICE", "mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"'mps' is not available.*available: cpu"):
        pick_device()


# ---------------------------------------------------------------------------
# autocast_dtypes and dtype validation
# ---------------------------------------------------------------------------


def test_autocast_dtypes_cpu_compute_checked():
    dtypes = autocast_dtypes("cpu")
    assert set(dtypes) == {torch.float16, torch.bfloat16}
    a = torch.linspace(-3, 3, 12).reshape(3, 4)
    b = torch.linspace(0.1, 1.3, 8).reshape(4, 2)
    for dtype in dtypes:
        with torch.amp.autocast("cpu", dtype=dtype):
            out = a @ b
        # Independent oracle: the same product with inputs cast by hand.
        assert out.dtype == dtype
        torch.testing.assert_close(out, a.to(dtype) @ b.to(dtype))
    assert autocast_dtypes(torch.device("cpu")) == dtypes


def test_autocast_dtypes_rejects_missing_device():
    with pytest.raises(ValueError, match="'cuda:99' is not available"):
        autocast_dtypes("cuda:99")


@pytest.mark.parametrize("dtype", [torch.float64, torch.int8, torch.float32])
def test_train_rejects_unsupported_autocast_dtype(dtype):
    with pytest.raises(
        ValueError,
        match=rf"does not support dtype={dtype}; supported: torch\.float16, "
        r"torch\.bfloat16",
    ):
        train(torch.nn.Linear(2, 1), [], device="cpu", dtype=dtype)


# ---------------------------------------------------------------------------
# DynamicLossScale against torch.amp.GradScaler
# ---------------------------------------------------------------------------


def _gradscaler_run(flags, **config):
    """Scales, skips and growth trackers of a real GradScaler, inf injected."""
    p = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([p], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", **config)
    scales, skipped, trackers = [], [], []
    for i, found_inf in enumerate(flags):
        opt.zero_grad(set_to_none=True)
        scaler.scale(p.sum() * 1e-3).backward()
        if found_inf:
            p.grad[0] = math.inf if i % 2 else math.nan
        before = p.detach().clone()
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
        skipped.append(torch.equal(before, p.detach()))
        trackers.append(scaler.state_dict()["_growth_tracker"])
    return scales, skipped, trackers


_rng = random.Random(0)
_FLAGS = [False] * 7 + [True] + [False] * 3 + [True, True] + [False] * 4
_FLAGS += [_rng.random() < 0.3 for _ in range(40)]


@pytest.mark.parametrize(
    "config",
    [
        {"init_scale": 2.0**10, "growth_interval": 3},
        {
            "init_scale": 1000.1,
            "growth_factor": 1.7,
            "backoff_factor": 0.3,
            "growth_interval": 2,
        },
        # Growth stops at the float32 limit instead of overflowing to inf.
        {"init_scale": 2.0**125, "growth_interval": 1},
    ],
)
def test_dynamic_loss_scale_matches_gradscaler(config):
    scales, skipped, trackers = _gradscaler_run(_FLAGS, **config)
    rule = DynamicLossScale(**config)
    mine = []
    for found_inf in _FLAGS:
        mine.append((rule.update(found_inf), rule.clean_steps))
    assert mine == list(zip(scales, trackers, strict=True))
    assert skipped == _FLAGS
    # The sequence exercises both directions of the rule.
    steps = list(itertools.pairwise([rule.init_scale, *scales]))
    assert any(b > a for a, b in steps) and any(b < a for a, b in steps)


def test_dynamic_loss_scale_rejects_bad_factors():
    with pytest.raises(ValueError, match="growth_factor must be > 1"):
        DynamicLossScale(growth_factor=1.0)
    with pytest.raises(ValueError, match=r"backoff_factor must be in \(0, 1\)"):
        DynamicLossScale(backoff_factor=1.0)
    with pytest.raises(ValueError, match="growth_interval must be an int >= 1"):
        DynamicLossScale(growth_interval=0)


# ---------------------------------------------------------------------------
# ScalerTrace
# ---------------------------------------------------------------------------


def test_scaler_trace_records_what_gradscaler_did():
    flags = [False, False, True, False, False, False, True]
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1)
    scaler = ScalerTrace(
        torch.amp.GradScaler("cpu", init_scale=64.0, growth_interval=2)
    )
    for found_inf in flags:
        opt.zero_grad()
        scaler.scale((p * p).sum()).backward()
        if found_inf:
            p.grad[1] = math.inf
        scaler.step(opt)
        scaler.update()
    assert scaler.skipped_steps == [2, 6]
    assert scaler.scales == [64.0, 64.0, 128.0, 64.0, 64.0, 128.0, 128.0]
    assert [e.scale_after for e in scaler.events] == [*scaler.scales[1:], 64.0]
    assert scaler.get_scale() == 64.0  # forwarded to the wrapped scaler

    scaler.update(new_scale=5.0)  # a scale set by hand says nothing about skips
    assert scaler.events[-1].skipped is None
    assert scaler.events[-1].scale_after == 5.0


def test_scaler_trace_rejects_non_scaler():
    with pytest.raises(TypeError, match=r"wraps a torch\.amp\.GradScaler"):
        ScalerTrace(object())


# ---------------------------------------------------------------------------
# The training harness
# ---------------------------------------------------------------------------


def _regression(n_batches=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    batches = []
    for _ in range(n_batches):
        x = torch.randn(16, 4, generator=g)
        batches.append((x, x @ w + 0.01 * torch.randn(16, 1, generator=g)))
    return batches


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(4, 1)


def test_fp32_run_records_unit_scale_and_no_skips():
    h = train(_model(), _regression(), device="cpu", lr=0.1)
    assert len(h) == 20
    assert h.scales == [1.0] * 20
    assert h.skipped == [False] * 20
    assert all(math.isfinite(v) and v > 0 for v in h.grad_norms)
    assert h.label == "cpu float32"


@pytest.mark.parametrize(
    ("dtype", "scaler"),
    [(None, False), (torch.bfloat16, False), (torch.float16, True)],
)
def test_loss_decreases(dtype, scaler):
    if scaler:
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    h = train(_model(), _regression(), device="cpu", dtype=dtype, scaler=scaler, lr=0.1)
    assert h.losses[-1] < 0.05 * h.losses[0]
    assert h.skipped_steps == []


def test_fp16_overflow_skips_exactly_that_step_and_halves_scale():
    k = 5
    batches = _regression(10)
    x, y = batches[k]
    batches[k] = (x * 1e5, y)  # beyond float16's 65504: the forward pass overflows
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    h = train(
        _model(), batches, device="cpu", dtype=torch.float16, scaler=scaler, lr=0.1
    )
    assert h.skipped_steps == [k]
    assert h.scales == [2.0**10] * (k + 1) + [2.0**9] * (10 - k - 1)
    assert not math.isfinite(h.grad_norms[k]) and not math.isfinite(h.losses[k])
    finite = [v for i, v in enumerate(h.grad_norms) if i != k]
    assert all(math.isfinite(v) for v in finite)
    assert h.label == "cpu float16 + GradScaler"

    # The skipped step left the weights alone.
    runs = []
    for n in (k, k + 1):
        model = _model()
        train(
            model,
            batches[:n],
            device="cpu",
            dtype=torch.float16,
            lr=0.1,
            scaler=torch.amp.GradScaler("cpu", init_scale=2.0**10),
        )
        runs.append(model.state_dict())
    for name in runs[0]:
        assert torch.equal(runs[0][name], runs[1][name])


def test_clipping_and_steps_cycle():
    h = train(_model(), _regression(3), device="cpu", lr=0.1, clip_norm=0.5, steps=7)
    assert h.steps == list(range(7))
    assert h.losses[3] != h.losses[0]  # same batch, updated weights


def test_clip_norm_is_recorded_before_clipping():
    model = _model()
    before = train(_model(), _regression(1), device="cpu", lr=0.1).grad_norms[0]
    after = train(model, _regression(1), device="cpu", lr=0.1, clip_norm=1e-3)
    assert after.grad_norms[0] == before > 1e-3


def test_deterministic_with_fixed_seed():
    def run():
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=3)
        h = train(
            _model(), _regression(8), device="cpu", dtype=torch.float16, scaler=scaler
        )
        return h.losses, h.grad_norms, h.scales, h.skipped

    assert run() == run()


def test_nonfinite_loss_without_scaler_raises():
    batches = [(torch.full((2, 4), math.inf), torch.zeros(2, 1))]
    with pytest.raises(FloatingPointError, match=r"step 0: loss is .*no GradScaler"):
        train(_model(), batches, device="cpu")


def test_train_rejects_bad_arguments():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="either optimizer or lr"):
        train(model, _regression(1), device="cpu", optimizer=opt, lr=0.1)
    with pytest.raises(ValueError, match="batches is empty"):
        train(model, [], device="cpu")
    with pytest.raises(TypeError, match="scaler must be a bool"):
        train(model, _regression(1), device="cpu", scaler="yes")


def test_history_columns_for_plotting():
    h = train(_model(), _regression(3), device="cpu", scaler=True)
    columns = h.as_dict()
    assert list(columns) == ["step", "loss", "grad_norm", "scale", "skipped", "seconds"]
    assert columns["loss"] == h.losses and columns["scale"] == [2.0**16] * 3
    assert all(s > 0 for s in h.seconds)
    assert isinstance(h, History) and [r.step for r in h] == h.steps


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_gradscaler_without_device_disables_itself_without_cuda():
    with pytest.warns(UserWarning, match="CUDA is not available.  Disabling."):
        scaler = torch.amp.GradScaler()
    assert not scaler.is_enabled()
    assert scaler.get_scale() == 1.0
    h = train(_model(), _regression(2), device="cpu", scaler=scaler)
    assert not h.scaled and h.scales == [1.0, 1.0]
