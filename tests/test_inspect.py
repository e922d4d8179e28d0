import math
from decimal import Decimal
from fractions import Fraction

import pytest
import torch

from mixprec import FORMATS, decode, encode, round_to
from mixprec.inspect import explain

SMALL = [name for name, fmt in FORMATS.items() if fmt.bits <= 16]


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


@pytest.mark.parametrize("name", SMALL)
def test_every_value_of_the_format_is_stored_as_itself(name):
    fmt = FORMATS[name]
    patterns = torch.arange(2**fmt.bits, dtype=torch.int64)
    values = decode(patterns, fmt)
    for pattern, value in zip(patterns.tolist(), values.tolist(), strict=True):
        if math.isnan(value):
            continue
        e = explain(value, fmt)
        assert _same(e.value, value), (name, hex(pattern))
        assert e.bits == pattern or (value == 0 and not fmt.has_negative_zero)


@pytest.mark.parametrize("name", list(FORMATS))
def test_rounding_agrees_with_round_to(name):
    fmt = FORMATS[name]
    g = torch.Generator().manual_seed(0)
    # Random magnitudes across and beyond the format's range, both signs.
    low, high = math.log2(fmt.smallest_subnormal) - 2, math.log2(fmt.max) + 2
    exponents = torch.rand(1500, generator=g, dtype=torch.float64) * (high - low) + low
    signs = torch.where(torch.rand(1500, generator=g) < 0.5, -1.0, 1.0)
    x = (signs * torch.exp2(exponents)).to(torch.float32)
    if not fmt.signed:
        x = x.abs()
    expected = round_to(x, fmt).tolist()
    bits = [b % 2**fmt.bits for b in encode(x, fmt).tolist()]  # int64 is signed
    for value, want, pattern in zip(x.tolist(), expected, bits, strict=True):
        e = explain(value, fmt)
        assert _same(e.value, want), (name, value)
        if not math.isnan(want):
            assert e.bits == pattern, (name, value)


def test_fields_of_a_tenth_in_bfloat16():
    e = explain("0.1", "bf16")
    assert (e.sign, e.exponent_field, e.mantissa_field) == (0, 123, 77)
    assert e.kind == "normal" and e.exponent == -4 and e.significand == 1 + 77 / 128
    assert e.value == 0.10009765625
    assert e.abs_error == pytest.approx(0.10009765625 - 0.1, rel=1e-12)
    assert e.ulp == 2.0**-11
    assert (e.next_down, e.next_up) == (
        0.10009765625 - 2.0**-11,
        0.10009765625 + 2.0**-11,
    )


def test_decimal_input_is_rounded_once_not_through_float64():
    # Just above the float16 midpoint between 1 and 1 + 2**-10; float64 would
    # round it onto the midpoint first, and ties to even would then give 1.
    above_tie = Fraction(1) + Fraction(1, 2**11) + Fraction(1, 2**60)
    text = str(Decimal(above_tie.numerator) / Decimal(above_tie.denominator))
    assert float(text) == 1 + 2.0**-11
    assert explain(text, "fp16").value == 1 + 2.0**-10
    assert explain(float(text), "fp16").value == 1.0


@pytest.mark.parametrize(
    ("value", "fmt", "kind", "stored"),
    [
        ("65504", "fp16", "normal", 65504.0),
        ("65519", "fp16", "normal", 65504.0),
        ("65520", "fp16", "inf", math.inf),
        ("2**-24", "fp16", "subnormal", 2.0**-24),
        ("2^-25", "fp16", "zero", 0.0),
        ("-0", "fp16", "zero", -0.0),
        ("-0", "e4m3fnuz", "zero", 0.0),
        ("1/3", "fp32", "normal", float(torch.tensor(1 / 3, dtype=torch.float32))),
        ("0x1.8p-3", "fp32", "normal", 0.1875),
        ("500", "e4m3", "nan", math.nan),
        ("7", "fp4", "normal", 6.0),
        ("-inf", "fp4", "normal", -6.0),
        ("0", "e8m0", "nan", math.nan),
        ("0.1", "e8m0", "normal", 0.125),
    ],
)
def test_classes_and_special_values(value, fmt, kind, stored):
    e = explain(value, fmt)
    assert e.kind == kind
    assert _same(e.value, stored)


def test_neighbours_and_ulp():
    one = explain(1, "fp16")
    assert (one.next_down, one.next_up, one.ulp) == (
        1 - 2.0**-11,
        1 + 2.0**-10,
        2.0**-10,
    )
    top = explain("65504", "fp16")
    assert top.next_up == math.inf
    assert explain("448", "e4m3").next_up != explain("448", "e4m3").next_up  # NaN
    zero = explain(0, "bf16")
    assert (zero.next_down, zero.next_up) == (-(2.0**-133), 2.0**-133)


def test_json_ready_dict():
    d = explain("65520", "fp16").as_dict()
    assert d["format"] == "float16" and d["kind"] == "inf" and d["value"] == "inf"
    assert (
        explain("0.1", "fp64")
        .as_dict()["value_exact"]
        .startswith("0.1000000000000000055511")
    )


def test_bad_input_says_what_is_accepted():
    with pytest.raises(ValueError, match=r"fraction .*'1/3'"):
        explain("one third", "fp16")
    with pytest.raises(ValueError, match=r"float16 \(fp16, half\)"):
        explain("0.1", "fp12")
    with pytest.raises(ValueError, match="has no NaN"):
        explain("nan", "fp4")
    with pytest.raises(TypeError, match="int, float, Fraction or str"):
        explain([0.1], "fp16")
