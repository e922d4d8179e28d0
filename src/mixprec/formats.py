"""Binary floating-point formats: descriptions, limits, rounding and bit patterns.

:class:`FloatFormat` describes a format by its bit fields; every limit (largest
value, machine epsilon, ...) is derived from those fields. :data:`FORMATS` holds
the formats used in training, from float64 down to the 4-bit MX element format,
and :func:`get_format` looks one up by name, alias, torch dtype or an ``"ExMy"``
string. :func:`round_to` rounds float32/float64 tensors to a format (bit-exact
with torch's and ml_dtypes' casts), and :func:`encode`/:func:`decode` convert
between values and bit patterns.

Two oracles disagree in a few places; :func:`round_to` follows the IEEE-style
behaviour and offers options to reproduce each oracle (see its Notes).

Examples
--------
>>> import torch
>>> from mixprec.formats import FORMATS, get_format, round_to
>>> list(FORMATS)[:5]
['float64', 'float32', 'tf32', 'float16', 'bfloat16']
>>> get_format("fp8_e4m3").max, get_format("e2m1").finite_count
(448.0, 15)
>>> round_to(torch.tensor([0.3, 5.0]), "fp4").tolist()
[0.5, 4.0]
"""

from __future__ import annotations

import functools
import math
import re
import sys
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported on first use: describing formats needs none
    import torch

__all__ = ["FORMATS", "FloatFormat", "decode", "encode", "get_format", "round_to"]

_SPECIALS = ("ieee", "fn", "fnuz", "none", "e8m0")
_ROUNDINGS = ("nearest", "stochastic")
_OVERFLOWS = ("inf", "saturate")


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format described by its bit fields.

    Parameters
    ----------
    name : str
        Canonical name, e.g. ``"float16"``.
    exponent_bits, mantissa_bits : int
        Widths of the exponent and (stored) mantissa fields.
    bias : int, optional
        Exponent bias; defaults to ``2**(exponent_bits - 1) - 1``.
    specials : {"ieee", "fn", "fnuz", "none", "e8m0"}
        How the format spends its special encodings:

        - ``"ieee"``: the top exponent field holds inf (mantissa 0) and NaN.
        - ``"fn"``: finite; only the all-ones exponent+mantissa pattern is NaN.
        - ``"fnuz"``: finite, no negative zero; the pattern ``100...0`` is NaN.
        - ``"none"``: every pattern is a finite number (no inf, no NaN).
        - ``"e8m0"``: unsigned, exponent only, no zero; the all-ones pattern is
          NaN and every other pattern ``e`` means ``2**(e - bias)``.
    aliases : tuple of str
        Other names :func:`get_format` accepts (case-insensitive).
    signed : bool
        Whether the format has a sign bit (only ``"e8m0"`` formats have none).

    Notes
    -----
    All limits are computed from these fields and agree with ``torch.finfo`` and
    ``ml_dtypes.finfo`` wherever those define them (see each property). Two
    formats compare equal when their fields other than ``aliases`` are equal.
    The format must fit in float64 (the type :func:`decode` returns).

    Examples
    --------
    >>> fp16 = FloatFormat("float16", exponent_bits=5, mantissa_bits=10)
    >>> fp16.bits, fp16.bias, fp16.max, fp16.eps
    (16, 15, 65504.0, 0.0009765625)
    >>> FloatFormat("float8_e4m3fn", 4, 3, specials="fn").max
    448.0
    """

    name: str
    exponent_bits: int
    mantissa_bits: int
    bias: int | None = None
    specials: str = "ieee"
    aliases: tuple[str, ...] = field(default=(), compare=False)
    signed: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty str, got {self.name!r}")
        for attr in ("exponent_bits", "mantissa_bits", "bias"):
            value = getattr(self, attr)
            if attr == "bias" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{attr} must be an int, got {value!r}")
        if self.specials not in _SPECIALS:
            raise ValueError(
                f"unknown specials {self.specials!r}; choose one of: "
                + ", ".join(repr(s) for s in _SPECIALS)
            )
        if not isinstance(self.aliases, tuple) or not all(
            isinstance(a, str) and a for a in self.aliases
        ):
            raise TypeError(
                f"aliases must be a tuple of non-empty str, got {self.aliases!r}"
            )
        if not isinstance(self.signed, bool):
            raise TypeError(f"signed must be a bool, got {self.signed!r}")
        e, m = self.exponent_bits, self.mantissa_bits
        if not (1 <= e <= 11 and 0 <= m <= 52):
            raise ValueError(
                f"{self.name}: need 1 <= exponent_bits <= 11 and "
                f"0 <= mantissa_bits <= 52 to fit in float64, got {e} and {m}"
            )
        if self.specials == "ieee" and (e < 2 or m < 1):
            raise ValueError(
                f"{self.name}: 'ieee' specials need exponent_bits >= 2 and "
                f"mantissa_bits >= 1 (to encode inf and NaN), got e{e}m{m}"
            )
        if self.specials == "fn" and m < 1:
            raise ValueError(f"{self.name}: 'fn' specials need mantissa_bits >= 1")
        if (self.specials == "e8m0") != (not self.signed) or (
            self.specials == "e8m0" and m != 0
        ):
            raise ValueError(
                f"{self.name}: specials='e8m0' goes with signed=False and "
                f"mantissa_bits=0, and only it (got specials={self.specials!r}, "
                f"signed={self.signed}, mantissa_bits={m})"
            )
        if self.bias is None:
            object.__setattr__(self, "bias", 2 ** (e - 1) - 1)
        if self.min_exponent - m < -1074 or self.max_exponent > 1023:
            raise ValueError(
                f"{self.name}: e{e}m{m} with bias {self.bias} does not fit in "
                "float64 (its exponents must lie within float64's)"
            )

    # -- bit layout ---------------------------------------------------------
    @property
    def bits(self) -> int:
        """Total width in bits (``finfo.bits``).

        Examples
        --------
        >>> FORMATS["tf32"].bits, FORMATS["float4_e2m1fn"].bits
        (19, 4)
        """
        return int(self.signed) + self.exponent_bits + self.mantissa_bits

    @property
    def has_inf(self) -> bool:
        """Whether the format encodes ±inf (only ``"ieee"`` formats do).

        Examples
        --------
        >>> FORMATS["float8_e5m2"].has_inf, FORMATS["float8_e4m3fn"].has_inf
        (True, False)
        """
        return self.specials == "ieee"

    @property
    def has_nan(self) -> bool:
        """Whether the format encodes NaN (all but ``"none"`` formats do).

        Examples
        --------
        >>> FORMATS["float8_e4m3fn"].has_nan, FORMATS["float4_e2m1fn"].has_nan
        (True, False)
        """
        return self.specials != "none"

    @property
    def has_zero(self) -> bool:
        """Whether zero is representable (not in ``"e8m0"`` formats).

        Examples
        --------
        >>> FORMATS["float8_e8m0fnu"].has_zero
        False
        """
        return self.specials != "e8m0"

    @property
    def has_negative_zero(self) -> bool:
        """Whether -0 is a distinct pattern (not in fnuz and e8m0 formats).

        Examples
        --------
        >>> FORMATS["float8_e4m3fnuz"].has_negative_zero
        False
        """
        return self.specials in ("ieee", "fn", "none")

    @property
    def has_subnormals(self) -> bool:
        """Whether values below :attr:`smallest_normal` (other than 0) exist.

        Examples
        --------
        >>> get_format("bf16").has_subnormals, get_format("e8m0").has_subnormals
        (True, False)
        """
        return self.specials != "e8m0" and self.mantissa_bits > 0

    @property
    def _top_field(self) -> int:
        # biased exponent field of the largest finite value
        top = 2**self.exponent_bits - 1
        return top - 1 if self.specials in ("ieee", "e8m0") else top

    @property
    def _max_significand(self) -> int:
        # significand of max, as an integer in units of 2**-mantissa_bits
        full = 2 ** (self.mantissa_bits + 1) - 1
        return full - 1 if self.specials == "fn" else full

    # -- exponents and limits -----------------------------------------------
    @property
    def max_exponent(self) -> int:
        """Unbiased exponent of the largest finite value (``finfo.maxexp - 1``).

        Examples
        --------
        >>> FORMATS["float16"].max_exponent, FORMATS["float8_e4m3fn"].max_exponent
        (15, 8)
        """
        return self._top_field - self.bias

    @property
    def min_exponent(self) -> int:
        """Unbiased exponent of the smallest normal value (``finfo.minexp``).

        Examples
        --------
        >>> FORMATS["float16"].min_exponent, FORMATS["float8_e8m0fnu"].min_exponent
        (-14, -127)
        """
        return -self.bias if self.specials == "e8m0" else 1 - self.bias

    @property
    def max(self) -> float:
        """Largest finite value (``finfo.max``).

        Examples
        --------
        >>> FORMATS["bfloat16"].max == float.fromhex("0x1.fep127")
        True
        """
        return math.ldexp(self._max_significand, self.max_exponent - self.mantissa_bits)

    @property
    def min(self) -> float:
        """Most negative finite value; for unsigned formats the smallest one.

        This is what ``finfo.min`` reports in torch and ml_dtypes.

        Examples
        --------
        >>> FORMATS["float16"].min, FORMATS["float8_e8m0fnu"].min == 2.0**-127
        (-65504.0, True)
        """
        return -self.max if self.signed else self.smallest_normal

    @property
    def smallest_normal(self) -> float:
        """Smallest positive normal value (``finfo.smallest_normal``, ``tiny``).

        Examples
        --------
        >>> FORMATS["float16"].smallest_normal == 2.0**-14
        True
        """
        return math.ldexp(1.0, self.min_exponent)

    @property
    def smallest_subnormal(self) -> float:
        """Smallest positive value (``finfo.smallest_subnormal``).

        For formats without subnormals (e8m0) this is :attr:`smallest_normal`,
        as in ``ml_dtypes.finfo``.

        Examples
        --------
        >>> FORMATS["float16"].smallest_subnormal == 2.0**-24
        True
        """
        if not self.has_subnormals:
            return self.smallest_normal
        return math.ldexp(1.0, self.min_exponent - self.mantissa_bits)

    @property
    def eps(self) -> float:
        """Machine epsilon, the gap between 1 and the next larger value.

        Examples
        --------
        >>> FORMATS["float32"].eps == 2.0**-23, FORMATS["float8_e8m0fnu"].eps
        (True, 1.0)
        """
        return math.ldexp(1.0, -self.mantissa_bits)

    @property
    def epsneg(self) -> float:
        """The gap between 1 and the next smaller value (``finfo.epsneg``).

        Examples
        --------
        >>> FORMATS["float16"].epsneg == 2.0**-11, FORMATS["float4_e2m1fn"].epsneg
        (True, 0.5)
        """
        return math.ldexp(1.0, max(-1, self.min_exponent) - self.mantissa_bits)

    @property
    def decimal_digits(self) -> int:
        """Decimal digits of precision, ``floor(-log10(eps))``.

        This is numpy's ``finfo.precision`` and matches torch's
        ``finfo.resolution == 10**-decimal_digits``. ``ml_dtypes.finfo`` gives
        every float8 format ``precision=1`` (by this formula e4m3 has 0.90 digits
        and e5m2 0.60, so 0; ml_dtypes gives float6_e3m2fn, which has the same
        mantissa as e5m2, 0).

        Examples
        --------
        >>> [get_format(n).decimal_digits for n in ("float32", "float16", "bf16")]
        [6, 3, 2]
        """
        return math.floor(self.mantissa_bits * math.log10(2))

    @property
    def max_exact_integer(self) -> int:
        """Largest ``N`` such that every integer ``1..N`` is representable.

        Zero is representable too, except in e8m0 formats. This is
        ``min(2**(mantissa_bits + 1), floor(max))``, or 0 when 1 itself is not
        representable.

        Examples
        --------
        >>> [get_format(n).max_exact_integer for n in ("fp32", "fp16", "bf16", "fp4")]
        [16777216, 2048, 256, 4]
        """
        m = self.mantissa_bits
        if max(0, self.min_exponent) - m > 0 or self.max < 1:
            return 0
        return min(2 ** (m + 1), math.floor(self.max))

    @property
    def dynamic_range_decades(self) -> float:
        """Decades of positive values, ``log10(max / smallest_subnormal)``.

        Examples
        --------
        >>> round(FORMATS["float16"].dynamic_range_decades, 2)
        12.04
        """
        return math.log10(self.max) - math.log10(self.smallest_subnormal)

    @property
    def finite_count(self) -> int:
        """Number of distinct finite values; +0 and -0 count once.

        Examples
        --------
        >>> FORMATS["float8_e4m3fn"].finite_count, FORMATS["float4_e2m1fn"].finite_count
        (253, 15)
        """
        patterns = 2**self.bits
        special = {
            "ieee": 2 ** (self.mantissa_bits + 1),
            "fn": 2,
            "fnuz": 1,
            "none": 0,
            "e8m0": 1,
        }[self.specials]
        return patterns - special - int(self.has_negative_zero)

    @property
    def torch_dtype(self) -> torch.dtype | None:
        """The torch dtype of this format, or None (tf32, float6, float4).

        Examples
        --------
        >>> FORMATS["bfloat16"].torch_dtype, FORMATS["tf32"].torch_dtype
        (torch.bfloat16, None)
        """
        import torch

        dtype = getattr(torch, self.name, None)
        if isinstance(dtype, torch.dtype) and _BUILTIN.get(self.name) == self:
            return dtype
        return None


_BUILTIN: dict[str, FloatFormat] = {
    f.name: f
    for f in (
        FloatFormat("float64", 11, 52, aliases=("fp64",)),
        FloatFormat("float32", 8, 23, aliases=("fp32",)),
        FloatFormat("tf32", 8, 10),
        FloatFormat("float16", 5, 10, aliases=("fp16", "half")),
        FloatFormat("bfloat16", 8, 7, aliases=("bf16",)),
        FloatFormat("float8_e4m3fn", 4, 3, specials="fn", aliases=("e4m3", "fp8_e4m3")),
        FloatFormat("float8_e5m2", 5, 2, aliases=("e5m2", "fp8_e5m2")),
        FloatFormat("float8_e4m3fnuz", 4, 3, 8, "fnuz", aliases=("e4m3fnuz",)),
        FloatFormat("float8_e5m2fnuz", 5, 2, 16, "fnuz", aliases=("e5m2fnuz",)),
        FloatFormat(
            "float6_e3m2fn", 3, 2, specials="none", aliases=("fp6_e3m2", "e3m2")
        ),
        FloatFormat(
            "float6_e2m3fn", 2, 3, specials="none", aliases=("fp6_e2m3", "e2m3")
        ),
        FloatFormat(
            "float4_e2m1fn", 2, 1, specials="none", aliases=("fp4", "fp4_e2m1", "e2m1")
        ),
        FloatFormat(
            "float8_e8m0fnu", 8, 0, specials="e8m0", signed=False, aliases=("e8m0",)
        ),
    )
}

#: Read-only mapping of the registered formats, name -> :class:`FloatFormat`,
#: from float64 down to the MX formats (aliases are resolved by get_format).
FORMATS: types.MappingProxyType[str, FloatFormat] = types.MappingProxyType(_BUILTIN)

_BY_NAME = {n.lower(): f for f in _BUILTIN.values() for n in (f.name, *f.aliases)}
_EXMY = re.compile(r"e(\d+)m(\d+)", re.IGNORECASE)


def _accepted_names() -> str:
    names = [
        f"{f.name} ({', '.join(f.aliases)})" if f.aliases else f.name
        for f in _BUILTIN.values()
    ]
    return ", ".join(names) + ", or an 'ExMy' string such as 'e3m4'"


def get_format(fmt: FloatFormat | str | torch.dtype) -> FloatFormat:
    """Return the :class:`FloatFormat` for a format, name, alias or torch dtype.

    Parameters
    ----------
    fmt : FloatFormat, str or torch.dtype
        A format (returned as is); a registered name or alias, compared
        case-insensitively; an ``"ExMy"`` string such as ``"e3m4"`` for an
        IEEE-style format with ``x`` exponent and ``y`` mantissa bits (aliases
        win: ``"e4m3"`` is float8_e4m3fn); or a torch floating dtype.

    Raises
    ------
    ValueError
        Unknown name or unsupported dtype; the message lists the accepted names.
    TypeError
        Anything that is not a FloatFormat, str or torch.dtype.

    Examples
    --------
    >>> import torch
    >>> get_format("BF16").name, get_format(torch.float16).name
    ('bfloat16', 'float16')
    >>> get_format("e3m4").max
    15.5
    """
    if isinstance(fmt, FloatFormat):
        return fmt
    torch = sys.modules.get("torch")  # a torch.dtype implies torch is imported
    if torch is not None and isinstance(fmt, torch.dtype):
        for f in _BUILTIN.values():
            if f.torch_dtype == fmt:
                return f
        raise ValueError(
            f"no format for torch dtype {fmt}; accepted dtypes: "
            + ", ".join(str(f.torch_dtype) for f in _BUILTIN.values() if f.torch_dtype)
        )
    if isinstance(fmt, str):
        found = _BY_NAME.get(fmt.lower())
        if found is not None:
            return found
        match = _EXMY.fullmatch(fmt)
        if match:
            e, m = int(match[1]), int(match[2])
            return FloatFormat(f"e{e}m{m}", e, m)
        raise ValueError(f"unknown format {fmt!r}; choose one of: {_accepted_names()}")
    raise TypeError(
        "format must be a FloatFormat, a str or a torch.dtype, "
        f"not {type(fmt).__name__}"
    )


# ---------------------------------------------------------------------------
# Rounding works on the integer view ``u`` of the float32/float64 input. Within
# a binade consecutive floats are consecutive integers, and the carry out of the
# mantissa steps into the next binade, so rounding to a coarser spacing 2**k
# (in units of the last place) is integer rounding of the low k bits.


@functools.cache
def _inputs() -> dict:
    """Input dtype -> (int dtype of the same width, mantissa bits, bias)."""
    import torch

    return {
        torch.float32: (torch.int32, 23, 127),
        torch.float64: (torch.int64, 52, 1023),
    }


_BLOCK = 2**18  # lanes per block: temporaries stay small and in cache


def _bits_of(value: float, dtype: torch.dtype) -> int:
    import torch

    return int(torch.tensor(value, dtype=dtype).view(_inputs()[dtype][0]).item())


@dataclass(frozen=True)
class _Plan:
    """Constants for rounding one format from one input dtype.

    The ``int`` fields are bit patterns of the input dtype (magnitudes).
    """

    dtype: torch.dtype
    itype: torch.dtype
    p: int  # input mantissa bits
    bias_in: int
    m: int  # target mantissa bits
    emin: int  # target min_exponent, biased like the input
    q: int  # smallest positive value of the target (its subnormal step)
    q_half: int  # q / 2 (0 if the input dtype cannot hold it)
    sn: int  # smallest normal
    max: int  # largest finite
    ovf: int  # what overflow becomes
    nan: int
    inf: int
    absmask: int
    signmask: int
    expmask: int
    flush: bool
    kernel: str  # "magic", "shift" or "general": see _round_nearest_fast
    low: int  # the shift kernel redoes lanes below this (and above max)


@functools.cache
def _plan(
    fmt: FloatFormat, dtype: torch.dtype, overflow: str, subnormals: bool
) -> _Plan:
    import torch

    itype, p, bias_in = _inputs()[dtype]
    width = torch.iinfo(itype).bits
    inf = _bits_of(math.inf, dtype)
    max_bits = _bits_of(fmt.max, dtype)
    if overflow == "saturate" or fmt.specials == "none":
        ovf = max_bits
    else:
        ovf = inf if fmt.has_inf else _bits_of(math.nan, dtype)
    sn = _bits_of(fmt.smallest_normal, dtype)
    q = fmt.smallest_subnormal
    k = p - fmt.mantissa_bits
    flush = not subnormals and fmt.has_subnormals
    if k < 1:
        kernel = "general"
    elif (
        not flush
        and fmt.specials != "e8m0"
        and q >= 2 * torch.finfo(dtype).smallest_normal
        and fmt.max_exponent + k <= bias_in
    ):
        kernel = "magic"
    else:
        kernel = "shift"
    # The shift kernel is exact at and above both smallest normals; below, only
    # if both subnormal ranges coincide (bfloat16, tf32 from float32).
    low = 0 if fmt.min_exponent == 1 - bias_in else max(sn, 1 << p)
    if flush or fmt.specials == "fnuz":
        low = max(low, sn, 1)
    return _Plan(
        dtype=dtype,
        itype=itype,
        p=p,
        bias_in=bias_in,
        m=fmt.mantissa_bits,
        emin=fmt.min_exponent + bias_in,
        q=_bits_of(q, dtype),
        q_half=_bits_of(q / 2, dtype),
        sn=sn,
        max=max_bits,
        ovf=ovf,
        nan=_bits_of(math.nan, dtype),
        inf=inf,
        absmask=2 ** (width - 1) - 1,
        signmask=-(2 ** (width - 1)),
        expmask=inf,
        flush=flush,
        kernel=kernel,
        low=low,
    )


def _round_general(
    u: torch.Tensor,
    fmt: FloatFormat,
    pl: _Plan,
    stochastic: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Round the integer views ``u`` of any values, each lane with its own shift."""
    import torch

    p = pl.p
    a = u & pl.absmask
    ef = a >> p
    # biased exponent of the leading bit; for input subnormals it comes from an
    # exact int -> float conversion of the mantissa
    lead = (a.to(pl.dtype).view(pl.itype) >> p) - (pl.bias_in + p - 1)
    lead = torch.where(ef > 0, ef, lead)
    # k: log2 of the target's spacing at |x|, in units of this lane's last place
    k = torch.clamp(lead, min=pl.emin) - pl.m + p - torch.clamp(ef, min=1)
    k.clamp_(0, p)
    mask = (torch.ones_like(k) << k) - 1
    rem = a & mask
    if stochastic:
        rand = torch.rand(
            u.shape, generator=generator, dtype=torch.float64, device=u.device
        )
        scale = ((k.to(torch.int64) + 1023) << 52).view(torch.float64)  # 2.0**k
        up = rand * scale < rem
        # |x| / q; input subnormals via their integer bits, so that a
        # flush-to-zero floating-point mode cannot turn them into 0
        q = fmt.smallest_subnormal
        tiny = math.ldexp(1.0, 1 - pl.bias_in - p) / q
        x = a.view(pl.dtype).to(torch.float64)
        ratio = torch.where(ef == 0, a.to(torch.float64) * tiny, x / q)
        up_q = rand < ratio
    else:
        half = (mask + 1) >> 1
        lsb = (((a | (1 << p)) >> k) & 1).bool()  # bit p: the implicit leading 1
        up = (rem > half) | ((rem == half) & (rem != 0) & lsb)
        up_q = a > pl.q_half
    out = a - rem + up.to(pl.itype) * (mask + 1)
    # below the smallest positive value q the neighbours are 0 and q
    out = torch.where(a < pl.q, up_q.to(pl.itype) * pl.q, out)
    if fmt.specials == "e8m0":
        out = torch.where(out == 0, pl.sn, out)  # no zero: tiny values go to min
    if pl.flush:
        out = torch.where(out < pl.sn, 0, out)
    out = torch.where(out > pl.max, pl.ovf, out)
    if fmt.specials == "e8m0":  # -x, ±0 and NaN
        return torch.where((u <= 0) | (a > pl.inf), pl.nan, out)
    sign = u & pl.signmask
    if fmt.specials == "fnuz":
        sign = torch.where(out == 0, 0, sign)
    out = torch.where(a > pl.inf, pl.nan, out)
    return out | torch.where(out == pl.nan, 0, sign)


def _round_blocks(
    u: torch.Tensor,
    fmt: FloatFormat,
    pl: _Plan,
    stochastic: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """:func:`_round_general` over a 1-D tensor, one block of lanes at a time."""
    import torch

    return torch.cat(
        [_round_general(b, fmt, pl, stochastic, generator) for b in u.split(_BLOCK)]
    )


def _round_nearest_fast(u: torch.Tensor, fmt: FloatFormat, pl: _Plan) -> torch.Tensor:
    """Round to nearest even, a block of lanes at a time, in a few integer ops.

    Two kernels round the common lanes; lanes above ``fmt.max`` (overflow, ±inf,
    NaN) and, for the shift kernel, below ``pl.low`` are redone by
    :func:`_round_general`. Blocks keep the temporaries small and in cache.

    - ``"magic"``: with ``M`` the power of two whose last place is the format's
      spacing at ``|x|``, the float sum ``|x| + M`` is rounded to that spacing
      by the FPU (ties to even), and ``(|x| + M) - M`` is exact. This covers
      subnormal results too. It needs ``M`` finite and the format's smallest
      subnormal at least twice the input's smallest normal, so neither input
      subnormals nor flush-to-zero modes can change a result.
    - ``"shift"``: adding ``2**(k-1) - 1 + lsb`` to the integer view and
      clearing its low ``k = p - m`` bits rounds every normal result.
    """
    import torch

    flat = u.reshape(-1)
    out = torch.empty_like(flat)
    tmp = torch.empty(min(_BLOCK, flat.numel()), dtype=pl.itype, device=u.device)
    k = pl.p - pl.m
    for start in range(0, flat.numel(), _BLOCK):
        ub, ob = flat[start : start + _BLOCK], out[start : start + _BLOCK]
        t = tmp[: ub.numel()]
        torch.bitwise_and(ub, pl.absmask, out=ob)
        low, high = torch.aminmax(ob)
        if pl.kernel == "magic":
            torch.bitwise_and(ob, pl.expmask, out=t)  # 2**exponent of |x|
            t.clamp_(min=pl.sn).add_(k << pl.p)  # M
            ob.view(pl.dtype).add_(t.view(pl.dtype)).sub_(t.view(pl.dtype))
            torch.bitwise_and(ub, pl.signmask, out=t)
            if fmt.specials == "fnuz":  # no -0: keep the sign of nonzero results
                t &= torch.neg(ob) >> (torch.iinfo(pl.itype).bits - 1)
            ob |= t
        else:
            if pl.m > 0:
                torch.add(ub, 2 ** (k - 1) - 1, out=ob)
                ob += torch.bitwise_right_shift(ub, k, out=t).bitwise_and_(1)
            else:  # the last kept bit is the implicit leading 1: ties round up
                torch.add(ub, 2 ** (k - 1), out=ob)
            ob &= -(2**k)
            if fmt.specials == "e8m0":  # -x and ±0 become NaN: t = -1 there, else 0
                torch.clamp(ub, -1, 1, out=t).sub_(1).bitwise_right_shift_(1)
                ob |= t.bitwise_and_(pl.nan)
        if high > pl.max or (pl.kernel == "shift" and low < pl.low):
            torch.bitwise_and(ub, pl.absmask, out=t)
            bad = t > pl.max
            if pl.kernel == "shift" and pl.low:
                bad |= t < pl.low
            ob[bad] = _round_blocks(ub[bad], fmt, pl)
    return out.view(u.shape)


def _check_float(x: object, what: str) -> torch.Tensor:
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} expects a torch.Tensor, not {type(x).__name__}")
    if x.dtype not in _inputs():
        raise TypeError(
            f"{what} accepts float32 or float64 tensors, got {x.dtype}; "
            "convert explicitly, e.g. x.float()"
        )
    return x.detach()


def round_to(
    x: torch.Tensor,
    fmt: FloatFormat | str | torch.dtype,
    *,
    rounding: str = "nearest",
    generator: torch.Generator | None = None,
    overflow: str = "inf",
    subnormals: bool = True,
) -> torch.Tensor:
    """Round ``x`` to the values of ``fmt``, keeping ``x``'s dtype.

    Parameters
    ----------
    x : torch.Tensor
        float32 or float64 tensor (it is read, not modified; the result carries
        no autograd history).
    fmt : FloatFormat, str or torch.dtype
        Target format, anything :func:`get_format` accepts.
    rounding : {"nearest", "stochastic"}
        ``"nearest"``: round to nearest, ties to even. ``"stochastic"``: round to
        one of the two neighbours with probability proportional to closeness,
        so the result is unbiased in expectation (probabilities are exact
        whenever the distance to the lower neighbour is a multiple of 2**-53 of
        the spacing).
    generator : torch.Generator, optional
        Random source for ``rounding="stochastic"`` (seed it for reproducible
        results); not allowed with ``"nearest"``.
    overflow : {"inf", "saturate"}
        ``"inf"`` (IEEE): results that round beyond ``fmt.max`` and ±inf become
        ±inf, or NaN in formats without inf (fn, fnuz, e8m0), or ±max in
        formats with neither inf nor NaN (float6/float4). ``"saturate"``:
        they become ±max (inf included).
    subnormals : bool
        If False, results below ``fmt.smallest_normal`` (after rounding) are
        flushed to zero of the same sign (+0 in fnuz formats).

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``x``; each value is representable in ``fmt``
        (NaN stays NaN, even for formats without NaN). For float32 inputs and
        formats wider than float32, results beyond float32's range are inf.

    Notes
    -----
    Values equal the oracles' casts bit for bit on float32 inputs:
    ``x.to(dtype).to(x.dtype)`` in torch and ``x.astype(dtype).astype(...)`` in
    ml_dtypes, except where the oracles themselves disagree:

    - float8_e4m3fn: torch saturates overflow and ±inf to ±448 (use
      ``overflow="saturate"``); ml_dtypes and the default give NaN.
    - float8_e8m0fnu: ml_dtypes and the default give NaN for zero and negative
      inputs; torch ignores the sign and maps 0 to 2**-127. Torch also rounds
      float32 subnormals in (2**-127, 1.5 * 2**-127) up to 2**-126. Ties round
      up (the implicit leading 1 is the last kept bit), as both oracles do.
    - float6/float4 (no NaN): ml_dtypes turns NaN into a zero; we keep NaN.
    - float64 inputs: torch rounds through float32 (double rounding);
      ml_dtypes and :func:`round_to` round once.

    The work is integer arithmetic on the bits, plus exact float additions that
    assume the default round-to-nearest floating-point mode; results do not
    change under ``torch.set_flush_denormal(True)``. Stochastic rounding is
    several times slower than rounding to nearest.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 70000.0, -1e-8])
    >>> round_to(x, "float16").tolist()
    [1.0, 1.001953125, inf, -0.0]
    >>> round_to(x, "e4m3", overflow="saturate").tolist()
    [1.0, 1.0, 448.0, -0.0]
    >>> g = torch.Generator().manual_seed(0)
    >>> y = round_to(torch.full((10000,), 1.0 + 2.0**-12), "fp16",
    ...              rounding="stochastic", generator=g)
    >>> sorted(set(y.tolist())), abs(y.double().mean().item() - (1 + 2.0**-12)) < 1e-5
    ([1.0, 1.0009765625], True)
    """
    import torch

    x = _check_float(x, "round_to")
    fmt = get_format(fmt)
    if rounding not in _ROUNDINGS:
        raise ValueError(
            f"rounding must be 'nearest' or 'stochastic', got {rounding!r}"
        )
    if overflow not in _OVERFLOWS:
        raise ValueError(f"overflow must be 'inf' or 'saturate', got {overflow!r}")
    if not isinstance(subnormals, bool):
        raise TypeError(f"subnormals must be a bool, got {subnormals!r}")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator, not {type(generator).__name__}"
            )
        if rounding != "stochastic":
            raise ValueError("generator is only used with rounding='stochastic'")
    if x.dtype == torch.float32 and (
        fmt.mantissa_bits > 23
        or fmt.smallest_subnormal < 2.0**-149
        or fmt.max > torch.finfo(torch.float32).max
    ):  # not every value of fmt is a float32: round in float64
        return round_to(
            x.double(),
            fmt,
            rounding=rounding,
            generator=generator,
            overflow=overflow,
            subnormals=subnormals,
        ).float()
    pl = _plan(fmt, x.dtype, overflow, subnormals)
    u = x.view(pl.itype)
    if rounding == "nearest" and pl.kernel != "general":
        r = _round_nearest_fast(u, fmt, pl)
    else:
        stochastic = rounding == "stochastic"
        r = _round_blocks(u.reshape(-1), fmt, pl, stochastic, generator)
    return r.view(x.shape).view(x.dtype)


def encode(x: torch.Tensor, fmt: FloatFormat | str | torch.dtype) -> torch.Tensor:
    """Bit patterns of ``round_to(x, fmt)`` (default options), as int64.

    Parameters
    ----------
    x : torch.Tensor
        float32 or float64 tensor.
    fmt : FloatFormat, str or torch.dtype
        Target format, anything :func:`get_format` accepts.

    Returns
    -------
    torch.Tensor
        int64 patterns in ``[0, 2**fmt.bits)``, the sign in the top bit (for
        float64 the int64 is the pattern itself, negative when the sign is
        set). NaN becomes the format's canonical NaN (positive, quiet).
        ``decode(encode(x, fmt), fmt)`` equals ``round_to(x, fmt)``.

    Raises
    ------
    ValueError
        If ``x`` holds NaN and ``fmt`` has no NaN encoding (float6, float4).

    Examples
    --------
    >>> import torch
    >>> encode(torch.tensor([1.0, -2.0, float("inf")]), "float16").tolist()
    [15360, 49152, 31744]
    >>> [hex(b) for b in encode(torch.tensor([448.0, 0.25]), "e4m3").tolist()]
    ['0x7e', '0x28']
    """
    import torch

    x = _check_float(x, "encode")
    fmt = get_format(fmt)
    r = round_to(x, fmt)
    nan = torch.isnan(r)
    if not fmt.has_nan and bool(nan.any()):
        raise ValueError(f"{fmt.name} has no NaN encoding, but x contains NaN")
    w = r.to(torch.float64).view(torch.int64)
    e_bits, m = fmt.exponent_bits, fmt.mantissa_bits
    a = w & (2**63 - 1)
    ef = a >> 52
    frac = a & (2**52 - 1)
    exp = torch.clamp(ef, min=1) - 1023
    normal = (ef > 0) & (exp >= fmt.min_exponent)  # normal in float64 and in fmt
    # a subnormal of fmt is sig * 2**(exp - 52) = mant * 2**(min_exponent - m)
    shift = torch.clamp(fmt.min_exponent - exp, min=0).add_(52 - m).clamp_(max=63)
    sig = frac | ((ef > 0).long() << 52)
    out = torch.where(
        normal, ((exp + fmt.bias) << m) | (frac >> (52 - m)), sig >> shift
    )
    if fmt.has_inf:
        out = torch.where(torch.isinf(r), (2**e_bits - 1) << m, out)
    if fmt.signed:
        sign_bit = 2 ** (fmt.bits - 1) if fmt.bits < 64 else -(2**63)
        out = torch.where(w < 0, out | sign_bit, out)
    if fmt.specials == "ieee":  # quiet NaN: top mantissa bit set
        nan_pattern = ((2**e_bits - 1) << m) | (1 << (m - 1))
    elif fmt.specials == "fn":  # all ones but the sign
        nan_pattern = 2 ** (fmt.bits - 1) - 1
    elif fmt.specials == "fnuz":  # the would-be -0
        nan_pattern = 2 ** (fmt.bits - 1)
    else:  # e8m0: all ones (unused for "none": NaN raised above)
        nan_pattern = 2**fmt.bits - 1
    return torch.where(nan, nan_pattern, out)


def decode(bits: torch.Tensor, fmt: FloatFormat | str | torch.dtype) -> torch.Tensor:
    """Values (float64) of the bit patterns ``bits`` in ``fmt``.

    Parameters
    ----------
    bits : torch.Tensor
        Integer tensor of patterns in ``[0, 2**fmt.bits)`` (for float64, any
        int64: the int64 is the pattern).
    fmt : FloatFormat, str or torch.dtype

    Returns
    -------
    torch.Tensor
        float64 values; NaN for the format's NaN patterns.

    Examples
    --------
    >>> import torch
    >>> decode(torch.arange(16), "float4_e2m1fn")[:8].tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
    >>> decode(torch.tensor([0x7F, 0x80]), "e4m3").tolist()
    [nan, -0.0]
    """
    import torch

    if not isinstance(bits, torch.Tensor):
        raise TypeError(f"decode expects a torch.Tensor, not {type(bits).__name__}")
    if (
        bits.dtype.is_floating_point
        or bits.dtype.is_complex
        or bits.dtype == torch.bool
    ):
        raise TypeError(
            f"decode expects an integer tensor of bit patterns (e.g. torch.int64), "
            f"got {bits.dtype}"
        )
    fmt = get_format(fmt)
    b = bits.to(torch.int64)
    if fmt.bits < 64 and bool(((b < 0) | (b >= 2**fmt.bits)).any()):
        raise ValueError(
            f"bit patterns for {fmt.name} must lie in [0, 2**{fmt.bits}), "
            f"got values in [{int(b.min())}, {int(b.max())}]"
        )
    e_bits, m = fmt.exponent_bits, fmt.mantissa_bits
    ef = (b >> m) & (2**e_bits - 1)
    frac = b & (2**m - 1)
    if fmt.specials == "e8m0":
        sig, exp = frac + 1, ef - fmt.bias
    else:
        sig = frac | ((ef > 0).long() << m)
        exp = torch.clamp(ef, min=1) - fmt.bias
    j = exp - m  # value = sig * 2**j, with 2**j built from its bits
    scale = torch.where(
        j >= -1022,
        (torch.clamp(j, min=-1022) + 1023) << 52,
        torch.ones_like(j) << torch.clamp(j + 1074, min=0, max=51),
    ).view(torch.float64)
    value = sig.to(torch.float64) * scale
    if fmt.signed:
        value = torch.where(((b >> (fmt.bits - 1)) & 1) == 1, -value, value)
    top = ef == 2**e_bits - 1
    nan = {
        "ieee": top & (frac != 0),
        "fn": top & (frac == 2**m - 1),
        "fnuz": b == 2 ** (fmt.bits - 1),
        "e8m0": top,
        "none": torch.zeros_like(top),
    }[fmt.specials]
    if fmt.has_inf:
        value = torch.where(top & (frac == 0), value.sign() * math.inf, value)
    return torch.where(nan, math.nan, value)
