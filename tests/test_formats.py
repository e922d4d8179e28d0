"""Tests for mixprec.formats against torch and ml_dtypes as oracles.

Every registered format is checked; formats of 19 bits or fewer exhaustively.
Rounding is compared bit for bit with torch's casts (``x.to(dtype).to(x.dtype)``)
and ml_dtypes' (``x.astype(dtype).astype(np.float32)``), with NaN == NaN.
"""

import math
import re

import ml_dtypes
import numpy as np
import pytest
import torch

from mixprec.formats import FORMATS, FloatFormat, decode, encode, get_format, round_to

NAMES = list(FORMATS)
SMALL = [n for n in NAMES if FORMATS[n].bits <= 19]  # every pattern is tested
NUMPY = {"float64": np.float64, "float32": np.float32, "float16": np.float16}
ML = {n: NUMPY.get(n) or getattr(ml_dtypes, n, None) for n in NAMES}
ML = {n: d for n, d in ML.items() if d is not None}  # all but tf32
TORCH = {n: f.torch_dtype for n, f in FORMATS.items() if f.torch_dtype is not None}
CAST = [n for n in SMALL if n in ML]  # formats with an oracle cast to compare

# Where torch's casts differ from the IEEE-style default (see round_to's Notes).
TORCH_OVERFLOW = {"float8_e4m3fn": "saturate"}


# -- helpers ------------------------------------------------------------------
def all_patterns(fmt):
    return torch.arange(2**fmt.bits, dtype=torch.int64)


def finite_values(fmt):
    """Sorted distinct finite values of a small format, as float64."""
    v = decode(all_patterns(fmt), fmt)
    return torch.unique(v[torch.isfinite(v)])  # +0 and -0 merge


def ml_cast(x, name):
    """Round trip of a float32/float64 tensor through ml_dtypes (or numpy)."""
    with np.errstate(over="ignore", invalid="ignore"):
        y = x.numpy().astype(ML[name]).astype(x.numpy().dtype)
    return torch.from_numpy(y)


def torch_cast(x, name):
    return x.to(TORCH[name]).to(x.dtype)


def assert_same_bits(actual, expected, x):
    """Equal bit patterns (NaN == NaN regardless of payload), with a clear report."""
    assert actual.dtype == expected.dtype == x.dtype
    itype = torch.int32 if x.dtype == torch.float32 else torch.int64
    same = actual.view(itype) == expected.view(itype)
    same |= torch.isnan(actual) & torch.isnan(expected)
    if not bool(same.all()):
        bad = (~same).nonzero().flatten()[:5]
        rows = [
            f"x={x[i].item()!r} ({x[i].view(itype).item():#x}): "
            f"got {actual[i].item()!r}, expected {expected[i].item()!r}"
            for i in bad.tolist()
        ]
        raise AssertionError(
            f"{int((~same).sum())} of {x.numel()} differ:\n" + "\n".join(rows)
        )


def grid_inputs(fmt):
    """float32 inputs around every value of a small format.

    The values, the midpoints between neighbours (ties), the float32 numbers
    just below and above each midpoint, the same around the overflow threshold,
    and their negatives, ±0, ±inf and NaN.
    """
    v = finite_values(fmt)
    top_gap = math.ldexp(1.0, fmt.max_exponent - fmt.mantissa_bits)
    ends = torch.tensor([fmt.max + top_gap / 2, fmt.max + top_gap], dtype=torch.float64)
    mids = torch.cat([(v[1:] + v[:-1]) / 2, ends]).float()  # exact in float32
    inf = torch.full_like(mids, math.inf)
    near = torch.cat([mids, torch.nextafter(mids, inf), torch.nextafter(mids, -inf)])
    x = torch.cat([v.float(), near])
    specials = torch.tensor([0.0, -0.0, math.inf, -math.inf, math.nan])
    return torch.cat([x, -x, specials])


def random_inputs(fmt, n, seed):
    """float32 inputs: random bit patterns, and values spread over fmt's range."""
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(-(2**31), 2**31, (n,), generator=g, dtype=torch.int64)
    patterns = bits.to(torch.int32).view(torch.float32)
    lo = math.log2(fmt.smallest_subnormal) - 3
    hi = math.log2(fmt.max) + 2
    exponents = lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)
    signs = torch.randint(0, 2, (n,), generator=g) * 2 - 1
    spread = (signs * torch.exp2(exponents)).float()
    return torch.cat([patterns, spread])


def torch_domain(name, x):
    """Inputs on which torch's cast follows the documented format semantics."""
    if name != "float8_e8m0fnu":
        return x
    # torch ignores the sign, maps 0 to 2**-127 and misrounds float32
    # subnormals for e8m0 (see test_oracle_disagreements)
    keep = torch.isnan(x) | (x >= torch.finfo(torch.float32).smallest_normal)
    return x[keep]


# -- registry and lookup ------------------------------------------------------
def test_registry_order_and_read_only():
    assert NAMES == [
        "float64",
        "float32",
        "tf32",
        "float16",
        "bfloat16",
        "float8_e4m3fn",
        "float8_e5m2",
        "float8_e4m3fnuz",
        "float8_e5m2fnuz",
        "float6_e3m2fn",
        "float6_e2m3fn",
        "float4_e2m1fn",
        "float8_e8m0fnu",
    ]
    with pytest.raises(TypeError):
        FORMATS["float16"] = FORMATS["float32"]
    with pytest.raises(AttributeError):
        FORMATS["float16"].mantissa_bits = 3


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("fp64", "float64"),
        ("fp32", "float32"),
        ("TF32", "tf32"),
        ("fp16", "float16"),
        ("Half", "float16"),
        ("bf16", "bfloat16"),
        ("e4m3", "float8_e4m3fn"),
        ("FP8_E4M3", "float8_e4m3fn"),
        ("e5m2", "float8_e5m2"),
        ("fp8_e5m2", "float8_e5m2"),
        ("e4m3fnuz", "float8_e4m3fnuz"),
        ("e5m2fnuz", "float8_e5m2fnuz"),
        ("fp6_e3m2", "float6_e3m2fn"),
        ("e3m2", "float6_e3m2fn"),
        ("fp6_e2m3", "float6_e2m3fn"),
        ("e2m3", "float6_e2m3fn"),
        ("fp4", "float4_e2m1fn"),
        ("fp4_e2m1", "float4_e2m1fn"),
        ("e2m1", "float4_e2m1fn"),
        ("e8m0", "float8_e8m0fnu"),
        ("Float8_E8M0FNU", "float8_e8m0fnu"),
    ],
)
def test_aliases(alias, name):
    assert get_format(alias) is FORMATS[name]


@pytest.mark.parametrize("name", NAMES)
def test_get_format_by_name_format_and_dtype(name):
    fmt = FORMATS[name]
    assert get_format(name) is fmt
    assert get_format(fmt) is fmt
    if name in TORCH:
        assert get_format(TORCH[name]) is fmt


def test_get_format_exmy_strings():
    e3m4 = get_format("e3m4")
    assert (e3m4.name, e3m4.exponent_bits, e3m4.mantissa_bits) == ("e3m4", 3, 4)
    assert (e3m4.bias, e3m4.specials, e3m4.bits) == (3, "ieee", 8)
    assert get_format("E11M52") == FloatFormat("e11m52", 11, 52)
    assert get_format("e8m23").max == FORMATS["float32"].max
    with pytest.raises(ValueError, match="exponent_bits >= 2"):
        get_format("e1m3")
    with pytest.raises(ValueError, match="to fit in float64"):
        get_format("e12m3")
    with pytest.raises(ValueError, match="to fit in float64"):
        get_format("e999999999m1")


def test_unknown_name_lists_every_accepted_name():
    with pytest.raises(ValueError) as info:
        get_format("fp12")
    message = str(info.value)
    assert message.startswith("unknown format 'fp12'; choose one of: float64 (fp64)")
    assert "\n" not in message
    assert "'ExMy'" in message
    for fmt in FORMATS.values():
        for name in (fmt.name, *fmt.aliases):
            assert re.search(rf"\b{name}\b", message), name


def test_get_format_bad_inputs():
    with pytest.raises(TypeError, match=r"FloatFormat, a str or a torch\.dtype"):
        get_format(16)
    with pytest.raises(ValueError, match=r"torch\.float16"):
        get_format(torch.int8)
    with pytest.raises(ValueError, match="unknown format ' fp16'"):
        get_format(" fp16")  # no silent stripping


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"specials": "inf"}, ValueError, "'ieee', 'fn', 'fnuz', 'none', 'e8m0'"),
        ({"exponent_bits": 0}, ValueError, "1 <= exponent_bits <= 11"),
        ({"mantissa_bits": -1}, ValueError, "0 <= mantissa_bits <= 52"),
        ({"mantissa_bits": 2.0}, TypeError, "mantissa_bits must be an int"),
        ({"exponent_bits": True}, TypeError, "exponent_bits must be an int"),
        ({"bias": "7"}, TypeError, "bias must be an int"),
        ({"aliases": ["x"]}, TypeError, "aliases must be a tuple"),
        ({"signed": 1}, TypeError, "signed must be a bool"),
        ({"signed": False}, ValueError, "specials='e8m0' goes with signed=False"),
        ({"specials": "e8m0"}, ValueError, "specials='e8m0' goes with signed=False"),
        ({"mantissa_bits": 0, "specials": "fn"}, ValueError, "'fn' specials need"),
        ({"exponent_bits": 12}, ValueError, "to fit in float64"),
        ({"bias": 2000}, ValueError, "does not fit in float64"),
    ],
)
def test_float_format_validation(kwargs, error, match):
    args = {"name": "x", "exponent_bits": 4, "mantissa_bits": 3, **kwargs}
    with pytest.raises(error, match=match):
        FloatFormat(**args)


def test_float_format_fields():
    fmt = FloatFormat("mine", 4, 3, aliases=("m",))
    assert fmt.bias == 7 and fmt == FloatFormat("mine", 4, 3, bias=7)  # aliases aside
    assert hash(fmt) == hash(FloatFormat("mine", 4, 3))
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        FloatFormat("", 4, 3)


# -- derived properties against the oracles ----------------------------------
@pytest.mark.parametrize("name", list(TORCH))
def test_properties_match_torch_finfo(name):
    fmt, fi = FORMATS[name], torch.finfo(TORCH[name])
    assert fmt.bits == fi.bits
    assert fmt.max == fi.max
    assert fmt.min == fi.min
    assert fmt.smallest_normal == fi.smallest_normal == fi.tiny
    assert fi.resolution == 10.0**-fmt.decimal_digits
    assert fmt.torch_dtype is TORCH[name]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            n,
            marks=pytest.mark.xfail(
                reason="torch.finfo(float8_e5m2fnuz).eps is 2**-3; 1 + 2**-2 exists"
            ),
        )
        if n == "float8_e5m2fnuz"
        else n
        for n in TORCH
    ],
)
def test_eps_matches_torch_finfo(name):
    assert FORMATS[name].eps == torch.finfo(TORCH[name]).eps


@pytest.mark.parametrize("name", list(ML))
def test_properties_match_ml_dtypes_finfo(name):
    fmt, fi = FORMATS[name], ml_dtypes.finfo(ML[name])
    assert fmt.bits == fi.bits
    assert (fmt.exponent_bits, fmt.mantissa_bits) == (fi.nexp, fi.nmant)
    assert fmt.max == float(fi.max)
    assert fmt.min == float(fi.min)
    assert fmt.smallest_normal == float(fi.smallest_normal)
    assert fmt.smallest_subnormal == float(fi.smallest_subnormal)
    assert fmt.eps == float(fi.eps)
    assert fmt.epsneg == float(fi.epsneg)
    assert fmt.min_exponent == fi.minexp
    assert fmt.max_exponent + 1 == fi.maxexp  # numpy: first power that overflows
    assert math.log2(fmt.eps) == fi.machep
    if name.startswith("float8"):
        # ml_dtypes hard-codes precision=1 for every float8 format, while
        # numpy's definition floor(-log10(eps)) gives 0 (it gives float6_e3m2fn,
        # with e5m2's mantissa, 0 too)
        assert (fi.precision, fmt.decimal_digits) == (1, 0)
    else:
        assert fmt.decimal_digits == fi.precision


def test_tf32_by_hand():
    tf32 = FORMATS["tf32"]
    assert (tf32.bits, tf32.bias, tf32.specials) == (19, 127, "ieee")
    assert tf32.max == float.fromhex("0x1.ffcp127")
    assert tf32.min == -float.fromhex("0x1.ffcp127")
    assert tf32.smallest_normal == 2.0**-126
    assert tf32.smallest_subnormal == 2.0**-136
    assert tf32.eps == 2.0**-10
    assert tf32.epsneg == 2.0**-11
    assert (tf32.min_exponent, tf32.max_exponent) == (-126, 127)
    assert tf32.max_exact_integer == 2**11
    assert tf32.decimal_digits == 3
    assert tf32.finite_count == 2**19 - 2**11 - 1
    assert tf32.torch_dtype is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("float64", 2**53),
        ("float32", 2**24),
        ("float16", 2**11),
        ("bfloat16", 2**8),
        ("float8_e4m3fn", 16),
        ("float6_e2m3fn", 7),  # max is 7.5 < 2**4
        ("float4_e2m1fn", 4),
        ("float8_e8m0fnu", 2),  # 1 and 2 (no zero)
    ],
)
def test_max_exact_integer(name, expected):
    assert FORMATS[name].max_exact_integer == expected


@pytest.mark.parametrize("name", SMALL)
def test_properties_agree_with_the_enumerated_values(name):
    """Every limit, recomputed from the values the bit patterns decode to."""
    fmt = FORMATS[name]
    v = decode(all_patterns(fmt), fmt)
    finite = finite_values(fmt)
    positive = finite[finite > 0]
    assert fmt.finite_count == finite.numel()
    assert fmt.max == finite.max().item()
    assert fmt.min == (-fmt.max if fmt.signed else positive.min().item())
    assert fmt.smallest_subnormal == positive.min().item()
    assert fmt.has_inf == bool(torch.isinf(v).any())
    assert fmt.has_nan == bool(torch.isnan(v).any())
    assert fmt.has_zero == bool((v == 0).any())
    assert fmt.has_negative_zero == bool(((v == 0) & torch.signbit(v)).any())
    one = int(torch.searchsorted(finite, 1.0))
    assert finite[one] == 1.0
    assert fmt.eps == finite[one + 1].item() - 1.0
    assert fmt.epsneg == 1.0 - finite[one - 1].item()
    n = fmt.max_exact_integer
    integers = torch.arange(1, n + 2, dtype=torch.float64)
    present = torch.isin(integers, finite)
    assert bool(present[:n].all()) and not bool(present[n])
    # smallest normal: the first value from which on spacing is relative
    assert fmt.smallest_normal == 2.0**fmt.min_exponent
    assert fmt.smallest_normal in positive
    assert math.isclose(
        fmt.dynamic_range_decades,
        math.log10(fmt.max) - math.log10(fmt.smallest_subnormal),
    )
    normals = positive[positive >= fmt.smallest_normal]
    assert fmt.max_exponent == math.floor(math.log2(normals.max().item()))


# -- rounding: exhaustive identity and encode/decode round trips ---------------
@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_value_rounds_to_itself(name, dtype):
    fmt = FORMATS[name]
    v = decode(all_patterns(fmt), fmt).to(dtype)  # exact in float32 too
    assert_same_bits(round_to(v, fmt), v, v)
    keep = ~torch.isinf(v)  # finite values survive saturation and flushing
    assert_same_bits(round_to(v[keep], fmt, overflow="saturate"), v[keep], v[keep])
    normal = v.abs() >= fmt.smallest_normal
    if fmt.has_zero:
        normal |= v.abs() == 0
    assert_same_bits(round_to(v[normal], fmt, subnormals=False), v[normal], v[normal])


@pytest.mark.parametrize("name", SMALL)
def test_encode_decode_round_trip(name):
    fmt = FORMATS[name]
    patterns = all_patterns(fmt)
    v = decode(patterns, fmt)
    assert v.dtype == torch.float64
    nan = torch.isnan(v)
    assert torch.equal(encode(v[~nan], fmt), patterns[~nan])
    assert torch.equal(encode(v[~nan].float(), fmt), patterns[~nan])
    if fmt.has_nan:
        assert bool(torch.isnan(decode(encode(v[nan], fmt), fmt)).all())
    assert encode(v, fmt).dtype == torch.int64


@pytest.mark.parametrize(
    ("name", "itype"), [("float32", torch.int32), ("float64", torch.int64)]
)
def test_encode_decode_wide_formats_on_random_patterns(name, itype):
    fmt = FORMATS[name]
    g = torch.Generator().manual_seed(7)
    info = torch.iinfo(itype)
    raw = torch.randint(info.min, info.max, (2**16,), generator=g, dtype=torch.int64)
    raw = torch.cat(
        [raw.to(itype), torch.tensor([0, 1, info.min, info.min + 1], dtype=itype)]
    )
    values = raw.view(torch.float32 if itype == torch.int32 else torch.float64)
    patterns = raw.to(torch.int64) & (2**fmt.bits - 1) if fmt.bits < 64 else raw.long()
    decoded = decode(patterns, fmt)
    assert_same_bits(decoded, values.double(), values.double())
    finite = ~torch.isnan(values)
    assert torch.equal(encode(values[finite], fmt), patterns[finite])


def test_encode_decode_examples():
    assert encode(torch.tensor([1.0, -2.0, math.inf, -0.0]), "fp16").tolist() == [
        0x3C00,
        0xC000,
        0x7C00,
        0x8000,
    ]
    assert encode(torch.tensor([448.0, 500.0, -0.0]), "e4m3").tolist() == [
        0x7E,
        0x7F,
        0x80,
    ]
    assert encode(torch.tensor([1.0, 0.0, 2.0**-127]), "e8m0").tolist() == [127, 255, 0]
    assert encode(torch.tensor([-0.0, math.nan]), "e4m3fnuz").tolist() == [0, 0x80]
    assert decode(torch.tensor([0x7C00, 0xFC00, 0x7E00, 1]), "fp16").tolist()[:2] == [
        math.inf,
        -math.inf,
    ]
    assert decode(torch.tensor([1]), "fp16").item() == 2.0**-24
    assert decode(torch.tensor([0, 254]), "e8m0").tolist() == [2.0**-127, 2.0**127]


def test_encode_decode_errors():
    with pytest.raises(ValueError, match="float4_e2m1fn has no NaN encoding"):
        encode(torch.tensor([1.0, math.nan]), "fp4")
    with pytest.raises(TypeError, match="float32 or float64"):
        encode(torch.tensor([1], dtype=torch.int32), "fp16")
    with pytest.raises(TypeError, match="integer tensor"):
        decode(torch.tensor([1.0]), "fp16")
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        decode([1, 2], "fp16")
    with pytest.raises(ValueError, match=r"\[0, 2\*\*8\)"):
        decode(torch.tensor([256]), "e4m3")
    with pytest.raises(ValueError, match=r"\[0, 2\*\*4\)"):
        decode(torch.tensor([-1]), "fp4")


# -- rounding against the oracles ---------------------------------------------
@pytest.mark.parametrize("name", CAST)
def test_grid_matches_ml_dtypes(name):
    fmt = FORMATS[name]
    x = grid_inputs(fmt)
    if not fmt.has_nan:  # ml_dtypes turns NaN into a zero here; we keep NaN
        x = x[~torch.isnan(x)]
    assert_same_bits(round_to(x, fmt), ml_cast(x, name), x)


@pytest.mark.parametrize("name", [n for n in CAST if n in TORCH])
def test_grid_matches_torch(name):
    fmt = FORMATS[name]
    x = torch_domain(name, grid_inputs(fmt))
    overflow = TORCH_OVERFLOW.get(name, "inf")
    assert_same_bits(round_to(x, fmt, overflow=overflow), torch_cast(x, name), x)


@pytest.mark.parametrize("name", [n for n in NAMES if n in ML and n != "float64"])
def test_random_float32_matches_ml_dtypes(name):
    fmt = FORMATS[name]
    x = random_inputs(fmt, 2**19, seed=NAMES.index(name))
    assert x.numel() >= 2**20
    if not fmt.has_nan:
        x = x[~torch.isnan(x)]
    assert_same_bits(round_to(x, fmt), ml_cast(x, name), x)


@pytest.mark.parametrize("name", [n for n in TORCH if n != "float64"])
def test_random_float32_matches_torch(name):
    fmt = FORMATS[name]
    x = random_inputs(fmt, 2**19, seed=100 + NAMES.index(name))
    assert x.numel() >= 2**20
    x = torch_domain(name, x)
    overflow = TORCH_OVERFLOW.get(name, "inf")
    assert_same_bits(round_to(x, fmt, overflow=overflow), torch_cast(x, name), x)


@pytest.mark.parametrize("name", [n for n in NAMES if n in ML])
def test_float64_inputs_round_once_like_ml_dtypes(name):
    """float64 inputs just off the ties, where rounding through float32 fails."""
    fmt = FORMATS[name]
    g = torch.Generator().manual_seed(3)
    if fmt.bits <= 16:
        mids = grid_inputs(fmt).double()
    else:
        mids = random_inputs(fmt, 2**14, seed=3).double()
    mids = mids[torch.isfinite(mids)]
    offsets = torch.rand(mids.numel(), generator=g, dtype=torch.float64) * 2.0**-30
    x = torch.cat([mids, mids * (1 + offsets), mids * (1 - offsets)])
    if not fmt.has_nan:
        x = x[~torch.isnan(x)]
    assert_same_bits(round_to(x, fmt), ml_cast(x, name), x)


def test_float32_format_from_float64_matches_torch():
    x = random_inputs(FORMATS["float32"], 2**15, seed=5).double()
    x = torch.cat([x, x * (1 + 2.0**-30), torch.tensor([1e300, -1e-300, 2.0**-150])])
    assert_same_bits(round_to(x, "float32"), x.float().double(), x)


def tf32_reference(x):
    """Independent tf32 rounding: float16 has tf32's 10 mantissa bits.

    Normal values are scaled into float16's [0.5, 1) and back; tf32 subnormals
    (spacing 2**-136) are scaled by 2**112 onto float16's subnormals (2**-24).
    """
    x64 = x.double()
    mant, exp = torch.frexp(x64)
    normal = torch.ldexp(mant.half().double(), exp)
    tiny = (x64 * 2.0**112).half().double() * 2.0**-112
    out = torch.where(x64.abs() < 2.0**-126, tiny, normal)
    return torch.where(torch.isfinite(x64), out, x64).float()


def test_tf32_matches_float16_based_reference():
    fmt = FORMATS["tf32"]
    v = finite_values(fmt)
    v = v[v.abs() < 2.0**-100]  # the subnormal and smallest normal range
    mids = ((v[1:] + v[:-1]) / 2).float()
    inf = torch.full_like(mids, math.inf)
    x = torch.cat(
        [
            random_inputs(fmt, 2**19, seed=11),
            mids,
            torch.nextafter(mids, inf),
            torch.nextafter(mids, -inf),
            torch.tensor([fmt.max, 3.4e38, -3.4e38, math.inf, -0.0, math.nan]),
        ]
    )
    assert_same_bits(round_to(x, fmt), tf32_reference(x), x)


def test_user_format_matches_ml_dtypes_float8_e3m4():
    """ "e3m4" is IEEE-style, like ml_dtypes.float8_e3m4."""
    fmt = get_format("e3m4")
    assert fmt.max == float(ml_dtypes.finfo(ml_dtypes.float8_e3m4).max)
    x = torch.cat([grid_inputs(fmt), random_inputs(fmt, 2**16, seed=9)])
    with np.errstate(over="ignore", invalid="ignore"):
        expected = x.numpy().astype(ml_dtypes.float8_e3m4).astype(np.float32)
    assert_same_bits(round_to(x, fmt), torch.from_numpy(expected), x)


def test_oracle_disagreements():
    """The differences between torch and ml_dtypes documented in round_to."""
    big = torch.tensor([500.0, -1e30, math.inf])
    assert torch_cast(big, "float8_e4m3fn").tolist() == [448.0, -448.0, 448.0]
    assert bool(ml_cast(big, "float8_e4m3fn").isnan().all())
    assert bool(round_to(big, "e4m3").isnan().all())
    assert round_to(big, "e4m3", overflow="saturate").tolist() == [448.0, -448.0, 448.0]

    odd = torch.tensor([0.0, -4.0, 1.25 * 2.0**-127])
    assert torch_cast(odd, "float8_e8m0fnu").tolist() == [2.0**-127, 4.0, 2.0**-126]
    assert_same_bits(round_to(odd, "e8m0"), ml_cast(odd, "float8_e8m0fnu"), odd)
    assert round_to(odd, "e8m0")[2].item() == 2.0**-127

    nan = torch.tensor([math.nan])
    assert ml_cast(nan, "float4_e2m1fn").item() == 0.0
    assert math.isnan(round_to(nan, "fp4").item())

    x64 = torch.tensor([1 + 2.0**-11 + 2.0**-40], dtype=torch.float64)
    assert torch_cast(x64, "float16").item() == 1.0  # through float32: a tie
    assert (
        ml_cast(x64, "float16").item() == round_to(x64, "fp16").item() == 1 + 2.0**-10
    )


def test_results_do_not_depend_on_flush_denormal_mode():
    names = [*CAST, "tf32"]
    inputs = {n: grid_inputs(FORMATS[n]) for n in names}

    def run():
        out = {}
        for n, x in inputs.items():
            g = torch.Generator().manual_seed(0)
            sr = round_to(x, n, rounding="stochastic", generator=g)
            out[n] = (round_to(x, n), round_to(x, n, subnormals=False), sr)
        return out

    expected = run()
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    try:
        assert float(torch.tensor([1e-40]) * 1.0) == 0.0  # the mode is on
        got = run()
    finally:
        torch.set_flush_denormal(False)
    for n, x in inputs.items():
        for a, b in zip(got[n], expected[n], strict=True):
            assert_same_bits(a, b, x)


# -- overflow, saturation and flushing ----------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_overflow_modes(name):
    fmt = FORMATS[name]
    beyond = 2.0 * fmt.max if fmt.max < 1e300 else math.inf
    dtype = torch.float64 if fmt.max > 3e38 else torch.float32
    x = torch.tensor([beyond, -beyond, math.inf, -math.inf, math.nan], dtype=dtype)
    saturated = round_to(x, fmt, overflow="saturate")
    if fmt.signed:
        assert saturated[:4].tolist() == [fmt.max, -fmt.max, fmt.max, -fmt.max]
    else:
        assert saturated[[0, 2]].tolist() == [fmt.max, fmt.max]
        assert bool(saturated[[1, 3]].isnan().all())
    assert math.isnan(saturated[4].item())
    result = round_to(x, fmt)
    if fmt.has_inf:
        expected = [math.inf, -math.inf, math.inf, -math.inf]
        assert result[:4].tolist() == expected
    elif fmt.has_nan:
        assert bool(result.isnan().all())
    else:  # neither inf nor NaN: saturate, as ml_dtypes does
        assert result[:4].tolist() == [fmt.max, -fmt.max, fmt.max, -fmt.max]
    assert math.isnan(result[4].item())


@pytest.mark.parametrize("name", SMALL)
def test_flush_to_zero(name):
    fmt = FORMATS[name]
    x = random_inputs(fmt, 2**16, seed=21)
    plain = round_to(x, fmt)
    flushed = round_to(x, fmt, subnormals=False)
    if not fmt.has_subnormals:
        assert_same_bits(flushed, plain, x)
        return
    zero = torch.zeros_like(plain) if fmt.specials == "fnuz" else plain * 0.0
    expected = torch.where(plain.abs() < fmt.smallest_normal, zero, plain)
    assert_same_bits(flushed, expected, x)
    assert bool((plain.abs() < fmt.smallest_normal).any())  # the test bites
    # rounding happens first: just below the smallest normal rounds up to it
    below = torch.tensor([fmt.smallest_normal * (1 - fmt.eps / 4)])
    assert round_to(below, fmt, subnormals=False).item() == fmt.smallest_normal
    sub = torch.tensor([-fmt.smallest_subnormal])
    flushed_sub = round_to(sub, fmt, subnormals=False)
    assert flushed_sub.item() == 0.0
    assert bool(torch.signbit(flushed_sub)) == fmt.has_negative_zero


def test_signed_zeros():
    x = torch.tensor([-0.0, -1e-30, 0.0])
    assert torch.signbit(round_to(x, "fp16")).tolist() == [True, True, False]
    assert torch.signbit(round_to(x, "e4m3fnuz")).tolist() == [False, False, False]
    assert bool(round_to(x, "e8m0").isnan().all())


# -- stochastic rounding --------------------------------------------------------
def neighbours(fmt, x):
    """The format values just below and above each x (float64 values)."""
    v = finite_values(fmt)
    i = torch.searchsorted(v, x.double(), right=True).clamp(1, v.numel() - 1)
    return v[i - 1], v[i]


@pytest.mark.parametrize("name", CAST)
def test_stochastic_gives_a_neighbour(name):
    fmt = FORMATS[name]
    g = torch.Generator().manual_seed(1)
    x = random_inputs(fmt, 2**15, seed=31)
    lo_edge = fmt.min if not fmt.signed else -fmt.max
    x = x[(x >= lo_edge) & (x <= fmt.max)]  # away from overflow
    y = round_to(x, fmt, rounding="stochastic", generator=g).double()
    lo, hi = neighbours(fmt, x)
    on_grid = torch.isin(x.double(), finite_values(fmt))
    assert bool(((y == lo) | (y == hi)).all())
    assert torch.equal(y[on_grid], x.double()[on_grid])  # exact values stay
    assert bool((y != round_to(x, fmt).double()).any())  # not plain nearest


def test_stochastic_is_seeded_and_reproducible():
    x = torch.randn(10_000, generator=torch.Generator().manual_seed(0))

    def sr(seed):
        g = torch.Generator().manual_seed(seed)
        return round_to(x, "e4m3", rounding="stochastic", generator=g)

    assert torch.equal(sr(5), sr(5))
    assert not torch.equal(sr(5), sr(6))
    torch.manual_seed(0)
    a = round_to(x, "e4m3", rounding="stochastic")
    torch.manual_seed(0)
    assert torch.equal(a, round_to(x, "e4m3", rounding="stochastic"))


@pytest.mark.parametrize(
    ("name", "lo", "hi"),
    [
        ("float16", 1.0, 1.0 + 2.0**-10),
        ("float16", 2.0**-24, 2.0**-23),  # subnormal
        ("float16", 0.0, 2.0**-24),  # below the smallest subnormal
        ("bfloat16", 3 * 2.0**-133, 4 * 2.0**-133),  # float32-subnormal range
        ("bfloat16", 0.0, 2.0**-133),  # below bfloat16's smallest subnormal
        ("float8_e4m3fn", 416.0, 448.0),
        ("float4_e2m1fn", 4.0, 6.0),
        ("float8_e8m0fnu", 2.0**-3, 2.0**-2),
    ],
)
@pytest.mark.parametrize("fraction", [0.125, 0.5, 0.8125])
def test_stochastic_is_unbiased(name, lo, hi, fraction):
    n = 40_000
    value = lo + fraction * (hi - lo)  # exact in float32 for these pairs
    x = torch.full((n,), value)
    assert x[0].item() == value
    g = torch.Generator().manual_seed(int(fraction * 100))
    y = round_to(x, name, rounding="stochastic", generator=g).double()
    assert bool(((y == lo) | (y == hi)).all())
    ups = (y == hi).double().mean().item()
    std = math.sqrt(fraction * (1 - fraction) / n)
    assert abs(ups - fraction) < 5 * std
    assert abs(y.mean().item() - value) < 5 * std * (hi - lo)


def test_stochastic_float64_uses_all_bits():
    """A float64 value 2**-30 of a spacing above a tie: float32 would lose it."""
    n = 200_000
    fraction = 0.5 + 2.0**-3 + 2.0**-30
    value = 1.0 + fraction * 2.0**-10
    x = torch.full((n,), value, dtype=torch.float64)
    g = torch.Generator().manual_seed(4)
    y = round_to(x, "fp16", rounding="stochastic", generator=g)
    assert y.dtype == torch.float64
    ups = (y == 1.0 + 2.0**-10).double().mean().item()
    assert abs(ups - fraction) < 5 * math.sqrt(fraction * (1 - fraction) / n)


def test_stochastic_overflow_follows_overflow_mode():
    x = torch.full((1000,), 456.0)  # between 448 and the NaN slot (480)
    g = torch.Generator().manual_seed(0)
    y = round_to(x, "e4m3", rounding="stochastic", generator=g)
    assert 0 < int(y.isnan().sum()) < 1000
    assert set(y[~y.isnan()].tolist()) == {448.0}
    g = torch.Generator().manual_seed(0)
    y = round_to(x, "e4m3", rounding="stochastic", generator=g, overflow="saturate")
    assert set(y.tolist()) == {448.0}


# -- shapes, dtypes and bad input -----------------------------------------------
@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
def test_shapes_dtypes_and_input_untouched(rounding):
    x = torch.randn(3, 70_000, generator=torch.Generator().manual_seed(2)).t()
    x.requires_grad_(True)
    before = x.detach().clone()
    y = round_to(x, "bf16", rounding=rounding)
    assert y.shape == x.shape and y.dtype == x.dtype and not y.requires_grad
    assert torch.equal(x.detach(), before)
    if rounding == "nearest":
        assert_same_bits(y, torch_cast(x.detach(), "bfloat16"), x.detach())
    for shape in [(), (0,), (2, 0, 3)]:
        z = torch.ones(shape, dtype=torch.float64)
        assert round_to(z, "fp4", rounding=rounding).shape == z.shape


def test_round_to_bad_input():
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        round_to([1.0], "fp16")
    for dtype in (torch.float16, torch.bfloat16, torch.int32):
        with pytest.raises(TypeError, match=r"float32 or float64 .*got torch\."):
            round_to(torch.ones(2, dtype=dtype), "fp16")
    x = torch.ones(2)
    with pytest.raises(ValueError, match="'nearest' or 'stochastic'"):
        round_to(x, "fp16", rounding="up")
    with pytest.raises(ValueError, match="'inf' or 'saturate'"):
        round_to(x, "fp16", overflow="clip")
    with pytest.raises(TypeError, match="subnormals must be a bool"):
        round_to(x, "fp16", subnormals=0)
    with pytest.raises(TypeError, match=r"torch\.Generator"):
        round_to(x, "fp16", rounding="stochastic", generator=0)
    with pytest.raises(ValueError, match="only used with rounding='stochastic'"):
        round_to(x, "fp16", generator=torch.Generator())
    with pytest.raises(ValueError, match="unknown format 'fp12'"):
        round_to(x, "fp12")
