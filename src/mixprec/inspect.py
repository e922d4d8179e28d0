"""Look inside one value: its bit fields, class, exact stored value and neighbours.

:func:`explain` rounds a number into a format the way :func:`mixprec.round_to` does
by default (round to nearest, ties to even; overflow to inf, or to NaN or ±max in
formats without inf), but exactly: a decimal string such as ``"0.1"`` is rounded
once, from its exact value, with no detour through float64. It needs no torch, so
the ``mixprec explain`` command answers at once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from mixprec.formats import FloatFormat, get_format

__all__ = ["Explanation", "explain"]

_POWER = re.compile(r"(\d+)\s*(?:\*\*|\^)\s*([+-]?\d+)")
_ACCEPTED_VALUES = (
    "a decimal or integer ('0.1', '-3e-8', '65504'), a fraction ('1/3'), "
    "a power ('2**-24', '2^-24'), a hex float ('0x1.8p-3'), 'inf', '-inf' or 'nan'"
)


def _parse(value) -> tuple[int, Fraction | float]:
    """Split a number into its sign bit and magnitude (exact, or inf/NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction, str)):
        raise TypeError(
            f"value must be an int, float, Fraction or str, not {type(value).__name__}"
        )
    if isinstance(value, str):
        text = value.strip().lower().replace("_", "")
        sign = int(text.startswith("-"))
        body = text.lstrip("+-")
        if body in ("inf", "infinity"):
            return sign, math.inf
        if body == "nan":
            return sign, math.nan
        try:
            if body.startswith("0x"):
                return sign, Fraction(float.fromhex(body))
            power = _POWER.fullmatch(body)
            if power:
                return sign, Fraction(int(power[1])) ** int(power[2])
            return sign, Fraction(body)
        except (ValueError, ZeroDivisionError, OverflowError):
            raise ValueError(
                f"cannot read {value!r} as a number; give {_ACCEPTED_VALUES}"
            ) from None
    if isinstance(value, float):
        sign = int(math.copysign(1.0, value) < 0)
        if not math.isfinite(value):
            return sign, abs(value)
    else:
        sign = int(value < 0)
    return sign, abs(Fraction(value))


def _floor_log2(q: Fraction) -> int:
    e = q.numerator.bit_length() - q.denominator.bit_length()
    return e if Fraction(2) ** e <= q else e - 1


def _quantum(fmt: FloatFormat, magnitude: Fraction) -> Fraction:
    """Spacing of the format's values at ``magnitude`` (>= 0)."""
    if fmt.specials == "e8m0":
        return magnitude
    e = fmt.min_exponent if magnitude == 0 else _floor_log2(magnitude)
    return Fraction(2) ** (max(e, fmt.min_exponent) - fmt.mantissa_bits)


def _overflow(fmt: FloatFormat) -> Fraction | float:
    """What a value beyond the largest finite one becomes (as round_to does)."""
    if fmt.has_inf:
        return math.inf
    return math.nan if fmt.has_nan else Fraction(fmt.max)


def _round(fmt: FloatFormat, q: Fraction) -> Fraction | float:
    """Round an exact magnitude to the format, ties to even."""
    if fmt.specials == "e8m0":
        if q == 0:
            return math.nan  # e8m0 has no zero
        e = _floor_log2(q)
        e += q >= Fraction(3, 2) * Fraction(2) ** e  # ties round up, as the oracles
        rounded = Fraction(2) ** max(e, fmt.min_exponent)
    else:
        step = _quantum(fmt, q)
        rounded = round(q / step) * step  # round() of a Fraction: ties to even
    return _overflow(fmt) if rounded > Fraction(fmt.max) else rounded


def _fields(fmt: FloatFormat, sign: int, stored) -> tuple[int, int, int]:
    """Sign, exponent field and mantissa field of a value of the format."""
    top = 2**fmt.exponent_bits - 1
    m = fmt.mantissa_bits
    if isinstance(stored, float) and math.isnan(stored):
        if fmt.specials == "ieee":
            return sign, top, 1 << (m - 1)
        if fmt.specials == "fnuz":
            return 1, 0, 0
        return (0 if fmt.specials == "e8m0" else sign), top, 2**m - 1
    if isinstance(stored, float):  # inf
        return sign, top, 0
    if stored == 0:
        return (0 if fmt.specials == "fnuz" else sign), 0, 0
    e = _floor_log2(stored)
    if fmt.specials == "e8m0":
        return 0, e + fmt.bias, 0
    if e < fmt.min_exponent:
        return sign, 0, int(stored / Fraction(2) ** (fmt.min_exponent - m))
    return sign, e + fmt.bias, int((stored / Fraction(2) ** e - 1) * 2**m)


def _next(fmt: FloatFormat, stored: Fraction, up: bool) -> float:
    """The neighbour of a finite magnitude away from (up) or towards zero."""
    if fmt.specials == "e8m0":
        neighbour = stored * 2 if up else stored / 2
    elif up:
        neighbour = stored + _quantum(fmt, stored)
    else:
        # Just below a power of two the spacing is half as large.
        neighbour = stored - _quantum(fmt, stored - _quantum(fmt, stored) / 2)
    if neighbour > Fraction(fmt.max):
        return math.inf if fmt.has_inf else math.nan
    if fmt.specials == "e8m0" and neighbour < Fraction(fmt.smallest_normal):
        return math.nan
    return float(neighbour)


@dataclass(frozen=True)
class Explanation:
    """What :func:`explain` found; ``str()`` gives a readable report.

    Attributes
    ----------
    text : str
        The input as given.
    format : FloatFormat
        The format rounded into.
    value : float
        The stored value (exact: every value of these formats is a float64).
    bits : int
        The bit pattern, as an unsigned integer.
    sign, exponent_field, mantissa_field : int
        The three fields of the pattern.
    kind : str
        ``"zero"``, ``"subnormal"``, ``"normal"``, ``"inf"`` or ``"nan"``.
    exponent : int or None
        Unbiased exponent of a nonzero finite value (``min_exponent`` for
        subnormals).
    significand : float or None
        The significand with its implicit bit: ``1.m`` for normal values,
        ``0.m`` for subnormal ones, so that ``value = ±significand * 2**exponent``.
    abs_error, rel_error : float or None
        ``value - input`` and its ratio to ``|input|`` (None when undefined).
    ulp : float or None
        Distance from the value to the next value of larger magnitude.
    next_down, next_up : float or None
        The neighbouring values below and above: inf past the largest value in
        formats with inf, NaN where the format has no neighbour there.
    """

    text: str
    format: FloatFormat
    value: float
    bits: int
    sign: int
    exponent_field: int
    mantissa_field: int
    kind: str
    exponent: int | None
    significand: float | None
    abs_error: float | None
    rel_error: float | None
    ulp: float | None
    next_down: float | None
    next_up: float | None

    def as_dict(self) -> dict:
        """Every field as JSON-ready values; the format by name."""
        fields = {k: getattr(self, k) for k in self.__dataclass_fields__}
        fields["format"] = self.format.name
        fields["value_exact"] = _exact(self.value)
        return {k: (_json(v) if isinstance(v, float) else v) for k, v in fields.items()}

    def bit_string(self, color: bool = False) -> str:
        """The pattern as ``sign exponent mantissa`` groups of 0s and 1s."""
        fmt = self.format
        groups = [
            (fmt.signed, self.sign, 1, "31"),
            (True, self.exponent_field, fmt.exponent_bits, "34"),
            (fmt.mantissa_bits > 0, self.mantissa_field, fmt.mantissa_bits, "32"),
        ]
        parts = [
            _paint(format(value, f"0{width}b"), code, color)
            for present, value, width, code in groups
            if present
        ]
        return " ".join(parts)

    def report(self, color: bool = False) -> str:
        """A multi-line report; ANSI colours mark the fields when ``color``."""
        fmt = self.format
        layout = f"{int(fmt.signed)} sign + {fmt.exponent_bits} exponent"
        layout += f" + {fmt.mantissa_bits} mantissa bits"
        hex_digits = (fmt.bits + 3) // 4
        lines = [
            f"{self.text} in {fmt.name} ({layout})",
            f"  bits       {self.bit_string(color)}   0x{self.bits:0{hex_digits}x}",
            f"  class      {self.kind}",
        ]
        if fmt.signed:
            sign = _paint(str(self.sign), "31", color)
            lines.append(f"  sign       {sign} ({'-' if self.sign else '+'})")
        if self.exponent is not None:
            field = _paint(str(self.exponent_field), "34", color)
            if self.kind == "subnormal":
                # Field 0 encodes the smallest normal exponent, without the 1.
                rule = f"field {field} is subnormal: 1 - bias {fmt.bias}"
            else:
                rule = f"field {field} - bias {fmt.bias}"
            lines.append(f"  exponent   {rule} = {self.exponent}")
        if self.significand is not None and fmt.mantissa_bits:
            field = _paint(str(self.mantissa_field), "32", color)
            lines.append(
                f"  mantissa   field {field} / 2^{fmt.mantissa_bits}, implicit bit"
                f" {int(self.kind == 'normal')}: significand {self.significand!r}"
            )
        lines.append(f"  stored     {_exact(self.value)}")
        if self.abs_error is not None:
            rel = "" if self.rel_error is None else f", relative {self.rel_error:+.3e}"
            lines.append(f"  error      absolute {self.abs_error:+.3e}{rel}")
        if self.ulp is not None:
            lines.append(f"  ULP        {self.ulp!r} (2^{round(math.log2(self.ulp))})")
        if self.next_down is not None:
            below, above = self.next_down, self.next_up
            lines.append(f"  neighbours {below!r} < {self.value!r} < {above!r}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _exact(value: float) -> str:
    return str(Decimal(value)).lower() if math.isfinite(value) else repr(value)


def _json(value: float):
    # JSON has no inf or NaN; name them instead.
    return value if math.isfinite(value) else repr(value)


def explain(value, fmt="float32") -> Explanation:
    """Round ``value`` into ``fmt`` and describe the stored number.

    Parameters
    ----------
    value : int, float, fractions.Fraction or str
        The number. Strings are read exactly: decimals (``"0.1"``), fractions
        (``"1/3"``), powers (``"2**-24"``), hex floats (``"0x1p-3"``), ``"inf"``
        and ``"nan"``, each with an optional sign.
    fmt : FloatFormat or str
        The format, anything :func:`mixprec.get_format` accepts.

    Returns
    -------
    Explanation
        Bit fields, class, stored value, rounding error, ULP and neighbours.

    Raises
    ------
    ValueError
        An unreadable number (the message lists the accepted forms), an unknown
        format, or NaN for a format that has no NaN.

    Examples
    --------
    >>> e = explain("0.1", "bf16")
    >>> e.bit_string(), hex(e.bits), e.kind, e.exponent
    ('0 01111011 1001101', '0x3dcd', 'normal', -4)
    >>> e.value, e.next_down, e.next_up
    (0.10009765625, 0.099609375, 0.1005859375)
    >>> explain("65520", "fp16").kind
    'inf'
    >>> explain("2**-24", "fp16").kind
    'subnormal'
    """
    fmt = get_format(fmt)
    sign, magnitude = _parse(value)
    if not fmt.signed and sign and magnitude != 0:
        magnitude = math.nan  # an unsigned format has no negative values
    if isinstance(magnitude, float) and math.isnan(magnitude):
        if not fmt.has_nan:
            raise ValueError(f"{fmt.name} has no NaN (every bit pattern is a number)")
        stored = math.nan
    elif isinstance(magnitude, float):
        stored = _overflow(fmt)
    else:
        stored = _round(fmt, magnitude)

    s, exponent_field, mantissa_field = _fields(fmt, sign, stored)
    bits = (exponent_field << fmt.mantissa_bits) | mantissa_field
    if fmt.signed:
        bits |= s << (fmt.exponent_bits + fmt.mantissa_bits)
    details = dict.fromkeys(
        (
            "exponent",
            "significand",
            "abs_error",
            "rel_error",
            "ulp",
            "next_down",
            "next_up",
        )
    )
    if isinstance(stored, float):
        kind = "nan" if math.isnan(stored) else "inf"
        if kind == "inf" and isinstance(magnitude, Fraction):
            details["abs_error"] = math.inf  # a finite input overflowed
    else:
        if stored == 0:
            kind = "zero"
        elif exponent_field == 0 and fmt.specials != "e8m0":
            kind = "subnormal"
            details["exponent"] = fmt.min_exponent
            details["significand"] = mantissa_field / 2**fmt.mantissa_bits
        else:
            kind = "normal"
            details["exponent"] = _floor_log2(stored)
            details["significand"] = 1 + mantissa_field / 2**fmt.mantissa_bits
        if isinstance(magnitude, Fraction):
            error = (-stored if s else stored) - (-magnitude if sign else magnitude)
            details["abs_error"] = float(error)
            details["rel_error"] = float(error / magnitude) if magnitude else None
        details["ulp"] = float(_quantum(fmt, stored))
        up, down = _next(fmt, stored, up=True), _next(fmt, stored, up=False)
        if stored == 0:
            down = -up
        details["next_down"], details["next_up"] = (-up, -down) if s else (down, up)
    return Explanation(
        text=str(value),
        format=fmt,
        value=-float(stored) if s else float(stored),
        bits=bits,
        sign=s,
        exponent_field=exponent_field,
        mantissa_field=mantissa_field,
        kind=kind,
        **details,
    )
