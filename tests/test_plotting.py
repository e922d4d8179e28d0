import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from mixprec import FORMATS, explain
from mixprec.plotting import (
    FIELD_COLORS,
    bit_layout_figure,
    draw_bit_layout,
)


@pytest.fixture
def ax():
    return Figure().add_subplot()


def _field(box):
    colors = {to_rgba(c): field for field, c in FIELD_COLORS.items()}
    return colors[to_rgba(box.get_facecolor())]


@pytest.mark.parametrize("name", list(FORMATS))
def test_one_box_per_bit_coloured_by_field(ax, name):
    fmt = FORMATS[name]
    boxes = draw_bit_layout(ax, fmt)
    assert len(boxes) == len(ax.patches) == fmt.bits
    fields = [_field(b) for b in boxes]
    assert fields.count("sign") == int(fmt.signed)
    assert fields.count("exponent") == fmt.exponent_bits
    assert fields.count("mantissa") == fmt.mantissa_bits
    # sign, then exponent, then mantissa, from left to right
    assert fields == sorted(fields, key=["sign", "exponent", "mantissa"].index)
    assert not ax.texts


@pytest.mark.parametrize("name", list(FORMATS))
def test_boxes_are_to_scale_and_aligned_on_the_binary_point(ax, name):
    fmt = FORMATS[name]
    boxes = draw_bit_layout(ax, fmt, y=2.0)
    xs = [b.get_x() for b in boxes]
    assert xs == list(range(fmt.mantissa_bits - fmt.bits, fmt.mantissa_bits))
    assert {b.get_width() for b in boxes} == {1.0}
    mantissa = [b for b in boxes if _field(b) == "mantissa"]
    assert all(b.get_x() >= 0 for b in mantissa)
    assert all(b.get_x() < 0 for b in boxes if _field(b) != "mantissa")
    assert all(b.get_y() + b.get_height() / 2 == pytest.approx(2.0) for b in boxes)


@pytest.mark.parametrize("name", [n for n, f in FORMATS.items() if f.bits <= 32])
@pytest.mark.parametrize("value", ["0.1", "-1/3", "65504", "2**-24"])
def test_digits_of_a_pattern_are_written_in_the_boxes(ax, name, value):
    e = explain(value, FORMATS[name])
    boxes = draw_bit_layout(ax, name, pattern=e.bits)
    assert "".join(t.get_text() for t in ax.texts) == e.bit_string().replace(" ", "")
    for box, text in zip(boxes, ax.texts, strict=True):
        assert text.get_position() == (
            box.get_x() + box.get_width() / 2,
            box.get_y() + box.get_height() / 2,
        )


def test_bad_patterns_are_refused(ax):
    with pytest.raises(ValueError, match=r"\[0, 2\*\*16\)"):
        draw_bit_layout(ax, "float16", pattern=2**16)
    with pytest.raises(ValueError, match="float16"):
        draw_bit_layout(ax, "float16", pattern=-1)
    with pytest.raises(TypeError, match="int"):
        draw_bit_layout(ax, "float16", pattern="0x3c00")


def test_figure_has_one_labelled_row_per_format():
    names = list(FORMATS)
    fig = bit_layout_figure(names)
    try:
        (ax,) = fig.axes
        assert [t.get_text() for t in ax.get_yticklabels()] == names
        assert list(ax.get_yticks()) == [-row for row in range(len(names))]
        assert len(ax.patches) == sum(f.bits for f in FORMATS.values())
        for row, fmt in enumerate(FORMATS.values()):
            in_row = [p for p in ax.patches if p.get_y() + 0.4 == pytest.approx(-row)]
            assert len(in_row) == fmt.bits
        widths = [t.get_text() for t in ax.texts]
        assert widths == [
            f"{int(f.signed)}+{f.exponent_bits}+{f.mantissa_bits}"
            for f in FORMATS.values()
        ]
        # every box lies inside the axes' limits
        left, right = ax.get_xlim()
        assert all(left <= p.get_x() and p.get_x() + 1 <= right for p in ax.patches)
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == ["s", "e", "m"]
    finally:
        plt.close(fig)


def test_figure_writes_the_patterns_it_is_given():
    patterns = [explain("0.1", f).bits for f in ("bfloat16", "float16")]
    fig = bit_layout_figure(["bfloat16", "float16"], patterns=[patterns[0], None])
    try:
        digits = [t.get_text() for t in fig.axes[0].texts if t.get_text() in ("0", "1")]
        assert "".join(digits) == f"{patterns[0]:016b}"
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="one pattern"):
        bit_layout_figure(["bfloat16", "float16"], patterns=patterns[:1])
    with pytest.raises(ValueError, match="empty"):
        bit_layout_figure([])
