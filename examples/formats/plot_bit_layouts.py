"""
Bit layouts
===========

Every format in ``mixprec.FORMATS`` stores a number as a sign bit, an exponent
field and a mantissa field. We draw the fields of each format to scale, decode a
few values field by field with :func:`mixprec.explain`, and list how each format
spends its special bit patterns.
"""

# %%
# The fields, to scale
# --------------------
#
# One box per bit: the sign in red, the exponent in blue, the mantissa in green.
# The rows are aligned on the binary point, so the exponent, which sets the range,
# grows to the left and the mantissa, which sets the precision, grows to the right.
# The numbers after each row are the widths of the three fields.
import matplotlib.pyplot as plt

import mixprec
from mixprec.plotting import bit_layout_figure

fig = bit_layout_figure(list(mixprec.FORMATS))
fig.suptitle("Sign (s), exponent (e) and mantissa (m) bits of each format")
plt.show()

# %%
# The same layouts as numbers, with each format's bias, read from its
# :class:`mixprec.FloatFormat`:
print(f"{'format':<16} {'bits':>4} {'sign':>4} {'exp':>4} {'mant':>4} {'bias':>5}")
for fmt in mixprec.FORMATS.values():
    print(
        f"{fmt.name:<16} {fmt.bits:>4} {int(fmt.signed):>4} {fmt.exponent_bits:>4}"
        f" {fmt.mantissa_bits:>4} {fmt.bias:>5}"
    )

# %%
# What the fields mean
# --------------------
#
# Read the exponent field :math:`e` and the mantissa field :math:`m` as unsigned
# integers. When :math:`e` is neither all zeros nor reserved for special values,
# the number is normal and its value is
# :math:`(-1)^s \cdot 2^{e - \mathrm{bias}} \cdot 1.m`, where
# :math:`1.m = 1 + m / 2^M` is the mantissa with an implicit leading 1.
# An all-zero exponent field marks a subnormal number,
# :math:`(-1)^s \cdot 2^{1 - \mathrm{bias}} \cdot 0.m`: the implicit bit becomes 0
# and the exponent stays at the smallest normal one, so the values step evenly
# down to zero.

# %%
# :func:`mixprec.explain` rounds a value into a format exactly (strings such as
# ``"0.1"`` and ``"1/3"`` are read as exact numbers, not as float64) and returns
# the fields, the unbiased exponent, the significand (``1.m`` or ``0.m``), the
# stored value and its error. We decode a few values in float16 and bfloat16.
values = ["0.1", "1/3", "65504", "2**-24"]
print(
    f"{'value':<7} {'format':<9} {'s e m':<18} {'class':<9} {'exp':>4}"
    f" {'significand':<14} {'stored value':<22} {'error':>10}"
)
for fmt in ("float16", "bfloat16"):
    for value in values:
        e = mixprec.explain(value, fmt)
        print(
            f"{value:<7} {fmt:<9} {e.bit_string():<18} {e.kind:<9} {e.exponent:>4}"
            f" {e.significand!r:<14} {e.value!r:<22} {e.abs_error:>+10.2e}"
        )

# %%
# The formula rebuilds every stored value from the three fields alone; this check
# uses the fields and the bias, not the exponent and significand that
# :func:`mixprec.explain` computed.
checks = []
for fmt_name in ("float16", "bfloat16"):
    fmt = mixprec.get_format(fmt_name)
    for value in values:
        e = mixprec.explain(value, fmt)
        fraction = e.mantissa_field / 2**fmt.mantissa_bits
        if e.exponent_field == 0:
            rebuilt = 2.0 ** (1 - fmt.bias) * fraction
        else:
            rebuilt = 2.0 ** (e.exponent_field - fmt.bias) * (1 + fraction)
        checks.append((-1) ** e.sign * rebuilt == e.value)
print(f"formula reproduces all {len(checks)} stored values: {all(checks)}")

# %%
# One value in bfloat16 and float16
# ---------------------------------
#
# The digits of 0.1 in bfloat16 and float16. Both have the same unbiased exponent
# but different biases, so their exponent fields differ. Aligned on the binary
# point, the mantissas line up: bfloat16 keeps the first bits of float16's
# mantissa, rounded to its shorter length.
formats = ["bfloat16", "float16"]
patterns = [mixprec.explain("0.1", f).bits for f in formats]
fig = bit_layout_figure(formats, patterns=patterns)
fig.suptitle("0.1 in bfloat16 and float16")
plt.show()

# %%
# Special encodings
# -----------------
#
# The formats differ in what their reserved bit patterns mean:
#
# - ``ieee`` (float64, float32, tf32, float16, bfloat16, float8_e5m2): the
#   all-ones exponent field holds ±inf (mantissa zero) and NaN (any other
#   mantissa), so the whole top binade is given up to special values.
# - ``fn`` (float8_e4m3fn): no inf; only the patterns with every exponent and
#   mantissa bit set are NaN, so the rest of the top binade holds ordinary
#   numbers and the largest value grows.
# - ``fnuz`` (the float8 ``fnuz`` formats): no inf and no negative zero; the
#   pattern that would be −0 is the only NaN, and the bias differs from the
#   ``fn`` format's (see the bias column above).
# - ``none`` (float6 and float4): every pattern is a finite number.
# - ``e8m0`` (float8_e8m0fnu, the MX scale format): no sign and no mantissa, so
#   every value is :math:`2^{e - \mathrm{bias}}`, an all-zero field included, and
#   there is no zero; the all-ones pattern is NaN.

# %%
# For every format of at most 16 bits, we decode all bit patterns with
# :func:`mixprec.decode` and count what they hold; the counts are checked against
# the format's properties. The wider formats are too large to enumerate here.
import torch

header = f"{'format':<16} {'specials':<8} {'inf':<5} {'NaN':<5} {'-0':<5}"
print(f"{header} {'NaN patterns':>12} {'finite values':>13}")
agree = []
for fmt in mixprec.FORMATS.values():
    row = f"{fmt.name:<16} {fmt.specials:<8} {fmt.has_inf!s:<5} {fmt.has_nan!s:<5}"
    row += f" {fmt.has_negative_zero!s:<5}"
    if fmt.bits > 16:
        print(f"{row} {'-':>12} {'-':>13}")
        continue
    v = mixprec.decode(torch.arange(2**fmt.bits), fmt)
    nans = int(v.isnan().sum())
    negative_zero = bool(((v == 0) & v.signbit()).any())
    finite = int(v.isfinite().sum()) - negative_zero  # +0 and -0 count once
    agree += [
        bool(v.isinf().any()) == fmt.has_inf,
        (nans > 0) == fmt.has_nan,
        negative_zero == fmt.has_negative_zero,
        finite == fmt.finite_count,
    ]
    print(f"{row} {nans:>12} {finite:>13}")
print(f"decoded patterns agree with the format properties: {all(agree)}")

# %%
# The special patterns themselves, in one format of each kind: what the largest
# value, an infinite input, NaN and −0 are stored as. A dash marks a value the
# format cannot hold at all.
rows = []
for name in ("float16", "e4m3", "e4m3fnuz", "fp4", "e8m0"):
    fmt = mixprec.get_format(name)
    cells = [fmt.name]
    for value in (fmt.max, "inf", "nan", "-0"):
        try:
            e = mixprec.explain(value, fmt)
            cells.append(f"{e.bit_string()} {e.kind}")
        except ValueError:
            cells.append("-")
    rows.append(cells)
widths = [max(len(r[i]) for r in rows) for i in range(5)]
for cells in [["format", "max", "inf", "nan", "-0"], *rows]:
    print("  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True)).rstrip())

# %%
# Conclusion
# ----------
#
# A format is its field widths, its bias and its rule for special patterns; every
# value follows from :math:`(-1)^s \cdot 2^{e - \mathrm{bias}} \cdot 1.m`, or the
# subnormal variant with :math:`0.m`. Use :func:`mixprec.explain` (or the
# ``mixprec explain`` command) to decode any value, and see
# :ref:`sphx_glr_auto_examples_formats_plot_range_precision.py` for what the field
# widths mean for range and precision.
