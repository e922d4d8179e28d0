"""The ``mixprec`` command: look inside a value, or list the formats.

    mixprec explain 0.1 --format bf16
    mixprec explain 1/3 2**-24 --format fp16 --json
    mixprec formats

Bad input (an unknown format, an unreadable number) ends with status 2 and one line
on standard error that names what is accepted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from mixprec.formats import FORMATS
from mixprec.inspect import explain

# The properties `mixprec formats` lists, in order, with their column titles.
_COLUMNS = {
    "bits": "bits",
    "exponent_bits": "E",
    "mantissa_bits": "M",
    "bias": "bias",
    "specials": "specials",
    "max": "max",
    "smallest_normal": "min normal",
    "smallest_subnormal": "min subnormal",
    "eps": "eps",
    "max_exact_integer": "ints up to",
    "decimal_digits": "digits",
    "dynamic_range_decades": "decades",
    "finite_count": "finite values",
}


def _use_color(stream) -> bool:
    # Colour only on a terminal, and never when the reader asks for none.
    return stream.isatty() and "NO_COLOR" not in os.environ


def _explain(args) -> None:
    results = [explain(value, args.format) for value in args.values]
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
        return
    color = _use_color(sys.stdout)
    print("\n\n".join(r.report(color) for r in results))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _formats(args) -> None:
    rows = [
        {"name": fmt.name, "aliases": list(fmt.aliases)}
        | {key: getattr(fmt, key) for key in _COLUMNS}
        for fmt in FORMATS.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    titles = ["format", *_COLUMNS.values()]
    cells = [[row["name"], *(_cell(row[key]) for key in _COLUMNS)] for row in rows]
    widths = [
        max(len(c) for c in column) for column in zip(titles, *cells, strict=True)
    ]
    for line in [titles, *cells]:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixprec",
        description="Look inside floating-point formats.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ex = commands.add_parser(
        "explain",
        help="round values into a format and show their bits",
        description="Round each value into the format and show its sign, exponent "
        "and mantissa fields, class, exact stored value, rounding error, ULP and "
        "neighbours.",
        epilog="Values: decimals (0.1), fractions (1/3), powers (2**-24), hex floats "
        "(0x1p-3), inf and nan. Put -- before a value such as -inf or -1/3.",
    )
    ex.add_argument("values", nargs="+", metavar="VALUE")
    ex.add_argument(
        "-f",
        "--format",
        default="float32",
        help="format name or alias (default float32); see `mixprec formats`",
    )
    ex.add_argument("--json", action="store_true", help="print JSON")
    ex.set_defaults(run=_explain)
    fm = commands.add_parser("formats", help="list the formats and their limits")
    fm.add_argument("--json", action="store_true", help="print JSON")
    fm.set_defaults(run=_formats)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except ValueError as error:
        print(f"mixprec: error: {error}", file=sys.stderr)
        return 2
    return 0
