import json
import subprocess
import sys

import pytest

from mixprec import FORMATS
from mixprec.cli import main


def test_explain_prints_the_fields(capsys):
    assert main(["explain", "0.1", "--format", "bf16"]) == 0
    out = capsys.readouterr().out
    assert "0 01111011 1001101" in out and "0x3dcd" in out
    assert "\x1b[" not in out  # captured output is not a terminal


def test_explain_colours_a_terminal(capsys, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["explain", "1", "-f", "fp16"]) == 0
    assert "\x1b[34m01111\x1b[0m" in capsys.readouterr().out


def test_explain_json_for_several_values(capsys):
    assert main(["explain", "1/3", "2**-24", "-f", "fp16", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in records] == ["normal", "subnormal"]
    assert records[1]["value"] == 2.0**-24


def test_formats_lists_every_format(capsys):
    assert main(["formats", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(FORMATS)
    assert rows[list(FORMATS).index("float16")]["max"] == 65504.0
    assert main(["formats"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 1 + len(FORMATS)


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["explain", "0.1", "-f", "fp12"], "bfloat16 (bf16)"),
        (["explain", "zero point one"], "a fraction ('1/3')"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, names):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mixprec: error:") and names in err


def test_python_m_mixprec_without_importing_torch():
    code = (
        "import sys, runpy; sys.argv = ['mixprec', 'explain', '0.1', '-f', 'bf16'];"
        "\ntry: runpy.run_module('mixprec', run_name='__main__')"
        "\nexcept SystemExit as e: assert e.code == 0"
        "\nassert 'torch' not in sys.modules, 'the scalar path imported torch'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "0x3dcd" in result.stdout
