"""Tests for mixprec.clipping: gradient statistics around torch's clipping."""

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import clip_grad_norm_, clip_grad_value_

from mixprec.clipping import (
    ParamGradStats,
    cosine_similarity,
    format_grad_table,
    grad_absmax,
    grad_norm,
    grad_snapshot,
    grad_table,
    nonfinite_count,
)

INF = float("inf")
NORM_TYPES = [1.0, 2.0, 3.0, INF]
GLOBAL_FUNCS = [grad_norm, grad_absmax, nonfinite_count, grad_snapshot]


def _oracle_norm(grads, p):
    """Norm of the concatenated gradients, in float64, by one vector_norm call."""
    flat = torch.cat([g.reshape(-1).double() for g in grads])
    return torch.linalg.vector_norm(flat, ord=p).item()


@pytest.fixture
def model():
    """Two layers with random gradients, plus a parameter that has no gradient."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3, bias=False))
    net.register_parameter("unused", nn.Parameter(torch.ones(7)))
    for p in net.parameters():
        if p is not net.unused:
            p.grad = torch.randn_like(p) * 10
    return net


def _with_grads(net):
    return [p for p in net.parameters() if p.grad is not None]


# %% Global statistics against independent computation


@pytest.mark.parametrize("p", NORM_TYPES)
def test_grad_norm_matches_concatenated_oracle(model, p):
    grads = [q.grad for q in _with_grads(model)]
    assert grad_norm(model, p) == pytest.approx(_oracle_norm(grads, p), rel=1e-6)


def test_grad_norm_accepts_module_list_generator_and_tensor(model):
    params = _with_grads(model)
    expected = grad_norm(model)
    assert grad_norm(params) == expected
    assert grad_norm(p for p in model.parameters()) == expected
    w = params[0]
    assert grad_norm(w) == pytest.approx(_oracle_norm([w.grad], 2.0), rel=1e-6)


def test_parameters_without_grad_are_skipped(model):
    assert model.unused.grad is None
    params = _with_grads(model)
    numel = sum(p.numel() for p in params)
    assert grad_norm(model) == grad_norm(params)
    assert grad_snapshot(model).numel() == numel
    assert "unused" not in [r.name for r in grad_table(model)]
    model.unused.grad = torch.full((7,), 1e6)
    assert grad_norm(model) > 1e6  # now it counts


def test_grad_absmax_is_largest_absolute_entry(model):
    model[0].weight.grad[1, 2] = -123.5
    assert grad_absmax(model) == 123.5
    assert grad_absmax(model) == grad_norm(model, INF)


def test_nonfinite_count_counts_inf_and_nan(model):
    assert nonfinite_count(model) == 0
    model[0].bias.grad[0] = math.nan
    model[2].weight.grad[1, 1] = INF
    model[2].weight.grad[2, 3] = -INF
    assert nonfinite_count(model) == 3


def test_nan_gradient_is_reported_not_hidden(model):
    model[0].bias.grad[0] = math.nan
    assert math.isnan(grad_norm(model))
    assert math.isnan(grad_absmax(model))
    assert nonfinite_count(model) == 1


def test_half_precision_gradients():
    w = torch.zeros(8, dtype=torch.bfloat16, requires_grad=True)
    w.grad = torch.arange(8, dtype=torch.bfloat16)
    assert grad_norm(w) == pytest.approx(_oracle_norm([w.grad], 2.0), rel=2**-8)
    assert grad_absmax(w) == 7.0


# %% Per-parameter and per-layer table


@pytest.mark.parametrize("p", NORM_TYPES)
def test_grad_table_rows_match_each_parameter(model, p):
    model[2].weight.grad[0, 0] = math.nan
    rows = grad_table(model, p)
    named = [(n, q) for n, q in model.named_parameters() if q.grad is not None]
    assert [r.name for r in rows] == [n for n, _ in named]
    for row, (_, q) in zip(rows, named, strict=True):
        g = q.grad
        assert row.shape == tuple(q.shape)
        assert row.numel == q.numel()
        assert row.norm_type == p
        assert row.nonfinite == int((~torch.isfinite(g)).sum())
        if row.nonfinite:
            assert math.isnan(row.norm) and math.isnan(row.absmax)
        else:
            assert row.norm == pytest.approx(_oracle_norm([g], p), rel=1e-6)
            assert row.absmax == g.abs().max().item()


def test_grad_table_by_layer_groups_module_parameters(model):
    rows = grad_table(model, by="layer")
    assert [r.name for r in rows] == ["0", "2"]
    assert [r.shape for r in rows] == [None, None]
    layer0 = [model[0].weight.grad, model[0].bias.grad]
    assert rows[0].numel == 5 * 4 + 4
    assert rows[0].norm == pytest.approx(_oracle_norm(layer0, 2.0), rel=1e-6)
    # the layer norms recombine into the global norm
    total = math.sqrt(sum(r.norm**2 for r in rows))
    assert total == pytest.approx(grad_norm(model), rel=1e-6)


def test_grad_table_root_parameters_form_the_root_layer(model):
    model.unused.grad = torch.ones(7)
    rows = grad_table(model, by="layer")
    # named_parameters() lists a module's own parameters before its children's
    assert [(r.name, r.numel) for r in rows] == [("", 7), ("0", 24), ("2", 12)]
    assert "(root)" in format_grad_table(rows)


def test_param_grad_stats_is_frozen(model):
    row = grad_table(model)[0]
    assert isinstance(row, ParamGradStats)
    with pytest.raises(AttributeError):
        row.norm = 0.0


def test_format_grad_table_is_fixed_width(model):
    rows = grad_table(model, INF)
    text = format_grad_table(rows, digits=3)
    lines = text.splitlines()
    assert len(lines) == 2 + len(rows)
    assert len({len(line) for line in lines}) == 1
    assert lines[0].split() == [
        "name",
        "shape",
        "numel",
        "norm(p=inf)",
        "absmax",
        "nonfinite",
    ]
    assert lines[2].split()[:3] == ["0.weight", "4x5", "20"]
    assert lines[2].split()[3] == f"{rows[0].norm:.3g}"


# %% Snapshots and cosine similarity


def test_grad_snapshot_is_a_detached_copy(model):
    snap = grad_snapshot(model)
    expected = torch.cat([p.grad.reshape(-1) for p in _with_grads(model)])
    assert torch.equal(snap, expected)
    assert snap.dtype == torch.float32 and not snap.requires_grad
    clip_grad_norm_(model.parameters(), max_norm=1e-3)
    assert torch.equal(snap, expected)


@pytest.mark.parametrize(
    ("grad_dtypes", "expected"),
    [
        ((torch.float16, torch.bfloat16), torch.float32),
        ((torch.float32,), torch.float32),
        ((torch.bfloat16, torch.float64), torch.float64),
    ],
)
def test_grad_snapshot_dtype_widens_never_narrows(grad_dtypes, expected):
    params = []
    for dt in grad_dtypes:
        p = torch.zeros(3, dtype=dt, requires_grad=True)
        p.grad = torch.tensor([1.5, -2.0, 3.0], dtype=dt)
        params.append(p)
    snap = grad_snapshot(params)
    assert snap.dtype == expected
    assert snap.tolist() == [1.5, -2.0, 3.0] * len(grad_dtypes)


def test_cosine_similarity_values():
    a = torch.tensor([1.0, 2.0, -3.0])
    assert cosine_similarity(a, 7.5 * a) == pytest.approx(1.0, abs=1e-15)
    assert cosine_similarity(a, -a) == pytest.approx(-1.0, abs=1e-15)
    assert cosine_similarity(a, torch.tensor([2.0, -1.0, 0.0])) == 0.0
    b = torch.tensor([1.0, 0.0, 0.0])
    assert cosine_similarity(a, b) == pytest.approx(1 / math.sqrt(14), rel=1e-12)


def test_cosine_similarity_errors():
    a = torch.ones(3)
    with pytest.raises(ValueError, match=r"same shape.*\(3,\) and \(4,\)"):
        cosine_similarity(a, torch.ones(4))
    with pytest.raises(ValueError, match="b is a zero vector"):
        cosine_similarity(a, torch.zeros(3))
    with pytest.raises(TypeError, match=r"floating-point torch\.Tensor.*list"):
        cosine_similarity(a, [1.0, 1.0, 1.0])
    with pytest.raises(TypeError, match=r"a must be .*torch\.int64"):
        cosine_similarity(torch.ones(3, dtype=torch.int64), a)


# %% The seed's demonstration: a 20-layer linear network with exploding gradients


def _seed_model():
    torch.manual_seed(0)
    net = nn.Sequential(*[nn.Linear(128, 128, bias=False) for _ in range(20)])
    for m in net:
        nn.init.kaiming_normal_(m.weight)
    x = torch.randn(32, 128)
    y = torch.randn(32, 128)
    net.zero_grad(set_to_none=True)
    (net(x) - y).pow(2).mean().backward()
    return net


@pytest.fixture
def seed_model():
    return _seed_model()


def test_seed_gradients_before_clipping(seed_model):
    norm = grad_norm(seed_model)
    assert norm == pytest.approx(4869028.5, rel=1e-5)
    assert norm == pytest.approx(4869029.5, rel=1e-5)  # the value the seed printed
    assert grad_absmax(seed_model) == pytest.approx(95971.7, rel=1e-5)
    assert nonfinite_count(seed_model) == 0
    grads = [p.grad for p in seed_model.parameters()]
    assert norm == pytest.approx(_oracle_norm(grads, 2.0), rel=1e-6)


def test_seed_clip_by_norm_keeps_direction(seed_model):
    before = grad_norm(seed_model)
    absmax_before = grad_absmax(seed_model)
    snap = grad_snapshot(seed_model)
    returned = clip_grad_norm_(seed_model.parameters(), max_norm=1.0)
    # clip_grad_norm_ returns the norm BEFORE clipping
    assert returned.item() == pytest.approx(before, rel=1e-6)
    assert grad_norm(seed_model) == pytest.approx(1.0, rel=1e-5)
    assert grad_absmax(seed_model) == pytest.approx(absmax_before / before, rel=1e-5)
    assert cosine_similarity(snap, grad_snapshot(seed_model)) > 0.999999


def test_seed_clip_by_value_changes_direction(seed_model):
    snap = grad_snapshot(seed_model)
    clip_grad_value_(seed_model.parameters(), clip_value=0.01)
    assert grad_absmax(seed_model) == pytest.approx(0.01, rel=1e-6)
    assert grad_norm(seed_model) == pytest.approx(5.724, abs=5e-4)
    assert cosine_similarity(snap, grad_snapshot(seed_model)) < 0.9


@pytest.mark.parametrize("p", [1.0, 2.0, INF])
@pytest.mark.parametrize("tau", [1.0, 1e9])
def test_clip_by_norm_formula_equals_torch(seed_model, p, tau):
    g = grad_snapshot(seed_model)
    by_hand = g * min(1.0, tau / torch.linalg.vector_norm(g.double(), p).item())
    clip_grad_norm_(seed_model.parameters(), max_norm=tau, norm_type=p)
    torch.testing.assert_close(grad_snapshot(seed_model), by_hand, rtol=1e-6, atol=0)
    if tau > grad_norm(seed_model, p):
        assert torch.equal(grad_snapshot(seed_model), g)  # below tau: untouched


# %% Clipping cannot repair non-finite gradients


@pytest.fixture
def nan_model(model):
    model[0].weight.grad[0, 0] = math.nan
    return model


def test_clip_grad_norm_error_if_nonfinite_raises(nan_model):
    snap = grad_snapshot(nan_model)
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(nan_model.parameters(), 1.0, error_if_nonfinite=True)
    torch.testing.assert_close(grad_snapshot(nan_model), snap, equal_nan=True)


def test_clip_grad_norm_spreads_a_nan_to_every_gradient(nan_model):
    total = grad_snapshot(nan_model).numel()
    assert nonfinite_count(nan_model) == 1
    returned = clip_grad_norm_(nan_model.parameters(), 1.0)
    assert math.isnan(returned.item())
    assert math.isnan(nan_model[0].weight.grad[0, 0].item())
    # the scale factor max_norm / NaN is NaN, so every entry becomes NaN
    assert nonfinite_count(nan_model) == total


def test_clip_grad_norm_turns_an_inf_into_nan(model):
    model[0].weight.grad[0, 0] = INF
    clip_grad_norm_(model.parameters(), 1.0)
    assert math.isnan(model[0].weight.grad[0, 0].item())  # inf * 0
    assert nonfinite_count(model) == 1
    assert grad_absmax(model[2]) == 0.0  # finite entries are scaled to 0


def test_clip_grad_value_keeps_a_nan(nan_model):
    clip_grad_value_(nan_model.parameters(), clip_value=0.01)
    assert nonfinite_count(nan_model) == 1
    assert math.isnan(nan_model[0].weight.grad[0, 0].item())


# %% Bad input


@pytest.mark.parametrize("func", GLOBAL_FUNCS)
@pytest.mark.parametrize("bad", ["weights", 3.0, None, {"w": torch.ones(2)}])
def test_rejects_non_parameter_input(func, bad):
    with pytest.raises(TypeError, match=r"nn\.Module, a parameter tensor, or an"):
        func(bad)


def test_rejects_non_tensor_item():
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match="item 1 of the iterable is float"):
        grad_norm([w, 1.0])


@pytest.mark.parametrize("func", GLOBAL_FUNCS)
def test_no_gradients_is_an_error(func):
    net = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="no parameter has a gradient"):
        func(net)
    with pytest.raises(ValueError, match="no parameter has a gradient"):
        func([])


def test_rejects_non_floating_gradient():
    t = torch.zeros(3, dtype=torch.int64)
    t.grad = torch.ones(3, dtype=torch.int64)
    with pytest.raises(TypeError, match=r"torch\.int64; only floating-point"):
        grad_norm(t)


def test_rejects_sparse_gradient():
    emb = nn.Embedding(10, 3, sparse=True)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(TypeError, match=r"'weight'.*only dense"):
        grad_norm(emb)


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, -INF])
def test_rejects_non_positive_norm_type(model, bad):
    with pytest.raises(ValueError, match=r"positive real number or float\('inf'\)"):
        grad_norm(model, bad)
    with pytest.raises(ValueError, match="positive real number"):
        grad_table(model, bad)


@pytest.mark.parametrize("bad", ["inf", "2", True, None])
def test_rejects_non_numeric_norm_type(model, bad):
    with pytest.raises(TypeError, match=r"positive real number or float\('inf'\)"):
        grad_norm(model, bad)


def test_grad_table_bad_input(model):
    with pytest.raises(TypeError, match=r"expects an nn\.Module.*list"):
        grad_table(list(model.parameters()))
    with pytest.raises(ValueError, match="'parameter' or 'layer', got 'module'"):
        grad_table(model, by="module")


def test_format_grad_table_bad_input(model):
    rows = grad_table(model)
    with pytest.raises(ValueError, match="digits must be a positive int"):
        format_grad_table(rows, digits=0)
    with pytest.raises(ValueError, match="mix norm types"):
        format_grad_table(rows + grad_table(model, 1.0))
    with pytest.raises(TypeError, match="ParamGradStats"):
        format_grad_table([("0.weight", 1.0)])
