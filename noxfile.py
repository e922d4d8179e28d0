"""Sessions for testing mixprec and building its bilingual site.

A bare ``nox`` runs what CI runs. Each session installs torch first, from
``MIXPREC_TORCH`` (pip arguments; default: a pinned release), so that the project's
own ``torch>=2.6`` requirement is already met and pip pulls no other build.
"""

import os
import shlex
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "tests", "docs", "doctest", "i18n", "browser"]

ROOT = Path(__file__).parent
DOCS = ROOT / "docs"
BUILD = DOCS / "_build"
HTML = BUILD / "html"
GETTEXT = BUILD / "gettext"
LOCALE = DOCS / "locale"
LANGUAGES = ["en", "zh_CN"]
TORCH = shlex.split(os.environ.get("MIXPREC_TORCH", "torch==2.13.0"))


def _install(session, *extras):
    session.install("--upgrade", "pip")
    session.install(*TORCH)
    session.install("-e", f".[{','.join(extras)}]" if extras else ".")


def _sphinx(session, builder, outdir, *args):
    session.run(
        "sphinx-build",
        "-b",
        builder,
        "-W",
        "--keep-going",
        "-q",
        *args,
        str(DOCS),
        str(outdir),
    )


@nox.session
def lint(session):
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def tests(session):
    """pytest over tests/ and the doctests in src/mixprec; warnings are errors."""
    _install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def docs(session):
    """Build the site in English, then in Chinese, with zero warnings."""
    _install(session, "docs")
    for lang in LANGUAGES:
        _sphinx(
            session,
            "html",
            HTML / lang,
            "-D",
            f"language={lang}",
            "-d",
            str(BUILD / "doctrees" / lang),
        )
    shutil.copy(DOCS / "_root" / "index.html", HTML / "index.html")
    session.log(f"open {HTML / 'index.html'}")


@nox.session
def doctest(session):
    """Run the code blocks of the docs pages with Sphinx's doctest builder."""
    _install(session, "docs")
    _sphinx(
        session, "doctest", BUILD / "doctest", "-d", str(BUILD / "doctrees" / "doctest")
    )


@nox.session
def i18n(session):
    """Update the zh_CN catalogs; with ``-- --check`` (or on CI) only check them."""
    _install(session, "docs")
    check = "--check" in session.posargs or "CI" in os.environ
    shutil.rmtree(GETTEXT, ignore_errors=True)
    _sphinx(session, "gettext", GETTEXT, "-d", str(BUILD / "doctrees" / "gettext"))
    session.run(
        "python",
        "tools/catalogs.py",
        "check" if check else "update",
        str(GETTEXT),
        str(LOCALE / "zh_CN"),
    )


@nox.session
def browser(session):
    """Serve the built site and test it in headless Chromium."""
    if not (HTML / "en" / "index.html").exists():
        session.error("no site to test: run `nox -s docs` first")
    session.install("pytest>=8", "selenium>=4.20")
    session.run("pytest", "browser", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def bench(session):
    """Time round_to against torch's and ml_dtypes' casts; not run by CI."""
    _install(session, "test")
    session.run("python", "benchmarks/bench_round_to.py", *session.posargs)
