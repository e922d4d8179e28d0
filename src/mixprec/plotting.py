"""Figures shared by several examples: bit layouts drawn to scale.

Each bit of a format is one box of unit width, coloured by the field it belongs
to (:data:`FIELD_COLORS`: sign red, exponent blue, mantissa green). Rows are
aligned on the binary point, the boundary between exponent and mantissa: the
exponent, which sets the range, grows to the left and the mantissa, which sets
the precision, grows to the right, so formats with the same range (float32 and
bfloat16) end at the same place on the left and formats with the same precision
(float16 and tf32) end at the same place on the right.

This module needs matplotlib (the ``examples`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from mixprec.formats import FloatFormat, get_format

__all__ = ["FIELD_COLORS", "bit_layout_figure", "draw_bit_layout"]

FIELD_COLORS: dict[str, str] = {
    "sign": "#d62728",
    "exponent": "#1f77b4",
    "mantissa": "#2ca02c",
}
"""Fill colour of each field's boxes, matplotlib's default red, blue and green."""

_LEGEND_SYMBOLS = {"sign": "s", "exponent": "e", "mantissa": "m"}


def _field_of_bits(fmt: FloatFormat) -> list[str]:
    """The field of each bit, most significant bit first."""
    return (
        ["sign"] * int(fmt.signed)
        + ["exponent"] * fmt.exponent_bits
        + ["mantissa"] * fmt.mantissa_bits
    )


def draw_bit_layout(
    ax: Axes,
    fmt: FloatFormat | str,
    *,
    y: float = 0.0,
    pattern: int | None = None,
) -> list[Rectangle]:
    """Draw one box per bit of ``fmt`` on ``ax``, coloured by field.

    The boxes have unit width and height 0.8, centred on ``y``. The mantissa
    occupies ``0 <= x < mantissa_bits`` and the exponent and sign bits lie to
    the left of ``x = 0`` (the binary point), most significant bit leftmost.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw; its limits are left to the caller.
    fmt : FloatFormat or str
        The format, anything :func:`mixprec.get_format` accepts.
    y : float
        Vertical centre of the row.
    pattern : int, optional
        A bit pattern of ``fmt`` as an unsigned integer (for example
        :attr:`mixprec.Explanation.bits`); its 0/1 digits are written in the
        boxes.

    Returns
    -------
    list of matplotlib.patches.Rectangle
        The boxes, most significant bit first.

    Raises
    ------
    TypeError
        If ``pattern`` is not an int.
    ValueError
        If ``pattern`` lies outside ``[0, 2**fmt.bits)``.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = Figure().add_subplot()
    >>> boxes = draw_bit_layout(ax, "bfloat16", pattern=0x3DCD)
    >>> len(boxes), boxes[0].get_x(), boxes[-1].get_x()
    (16, -9.0, 6.0)
    >>> "".join(t.get_text() for t in ax.texts)
    '0011110111001101'
    """
    fmt = get_format(fmt)
    if pattern is not None:
        if isinstance(pattern, bool) or not isinstance(pattern, int):
            raise TypeError(
                f"pattern must be an int bit pattern, got {type(pattern).__name__}"
            )
        if not 0 <= pattern < 2**fmt.bits:
            raise ValueError(
                f"pattern for {fmt.name} must lie in [0, 2**{fmt.bits}), got {pattern}"
            )
    fields = _field_of_bits(fmt)
    left = fmt.mantissa_bits - fmt.bits
    boxes = []
    for i, field in enumerate(fields):
        box = Rectangle(
            (float(left + i), y - 0.4),
            1.0,
            0.8,
            facecolor=FIELD_COLORS[field],
            edgecolor="white",
            linewidth=0.8,
        )
        ax.add_patch(box)
        boxes.append(box)
        if pattern is not None:
            digit = (pattern >> (fmt.bits - 1 - i)) & 1
            ax.text(
                left + i + 0.5,
                y,
                str(digit),
                ha="center",
                va="center",
                color="white",
                fontsize="small",
                fontweight="bold",
            )
    return boxes


def bit_layout_figure(
    formats: Sequence[FloatFormat | str],
    *,
    patterns: Sequence[int | None] | None = None,
) -> Figure:
    """A figure with one row of bit boxes per format, aligned on the binary point.

    Rows go from top to bottom in the order given, each labelled with the
    format's name on the left and its field widths (sign + exponent + mantissa)
    on the right. A dotted vertical line marks the binary point, and a legend
    names the fields by the symbols of the formula
    :math:`(-1)^s \\cdot 2^{e - \\mathrm{bias}} \\cdot 1.m`.

    Parameters
    ----------
    formats : sequence of FloatFormat or str
        The formats, anything :func:`mixprec.get_format` accepts.
    patterns : sequence of int or None, optional
        One bit pattern (or None) per format, written into its boxes as in
        :func:`draw_bit_layout`.

    Returns
    -------
    matplotlib.figure.Figure
        A figure created with :func:`matplotlib.pyplot.subplots` (so that
        sphinx-gallery collects it) with a single axes; set its title yourself.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = bit_layout_figure(["float32", "bfloat16", "float16"])
    >>> ax = fig.axes[0]
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['float32', 'bfloat16', 'float16']
    >>> len(ax.patches)
    64
    >>> plt.close(fig)
    """
    fmts = [get_format(f) for f in formats]
    if not fmts:
        raise ValueError("formats is empty; give at least one format")
    if patterns is None:
        patterns = [None] * len(fmts)
    if len(patterns) != len(fmts):
        raise ValueError(
            f"give one pattern (or None) per format: {len(fmts)} formats, "
            f"{len(patterns)} patterns"
        )
    left = max(f.bits - f.mantissa_bits for f in fmts)
    right = max(f.mantissa_bits for f in fmts)
    fig, ax = plt.subplots(figsize=(7.0, 0.9 + 0.36 * len(fmts)), layout="constrained")
    for row, (fmt, pattern) in enumerate(zip(fmts, patterns, strict=True)):
        draw_bit_layout(ax, fmt, y=-row, pattern=pattern)
        widths = f"{int(fmt.signed)}+{fmt.exponent_bits}+{fmt.mantissa_bits}"
        ax.text(right + 0.6, -row, widths, va="center", fontsize="small")
    margin = 0.12 * (left + right) + 2.5  # room for the field widths
    ax.set_xlim(-left - 0.5, right + margin)
    ax.set_ylim(-len(fmts) + 0.4, 0.6)
    ax.set_yticks(range(0, -len(fmts), -1), [f.name for f in fmts])
    ax.axvline(0, color="black", linestyle=":", linewidth=1.0)
    ax.set_xlabel("bit position relative to the binary point")
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.tick_params(axis="y", length=0)
    handles = [
        Patch(facecolor=color, label=_LEGEND_SYMBOLS[field])
        for field, color in FIELD_COLORS.items()
    ]
    ax.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncols=3,
        frameon=False,
    )
    return fig
