"""Sphinx configuration for the mixprec site (English source, zh_CN by gettext)."""

import hashlib
import importlib.metadata
import re
import shutil
import sys
from pathlib import Path

import jieba
from docutils import nodes
from sphinx.search.zh import SearchChinese
from sphinx.transforms import SphinxTransform

import mixprec

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "mixprec"
author = "the mixprec developers"
copyright = "2026, the mixprec developers"
release = version = mixprec.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
    "sphinx_gallery.gen_gallery",
    "myst_nb",
    "sphinx_copybutton",
]

root_doc = "index"
templates_path = ["_templates"]
html_static_path = ["_static"]
# sphinx-gallery also writes a notebook beside each generated page; myst-nb would
# read it as a second source for the same document.
exclude_patterns = ["_build", "auto_examples/**/*.ipynb", "auto_examples/*.ipynb"]

# --- languages -------------------------------------------------------------
language = "en"
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
locale_dirs = ["locale/"]
gettext_compact = False
gettext_uuid = False
gettext_location = False
# Gallery thumbnails carry their titles in raw HTML.
gettext_additional_targets = ["raw"]

# --- gallery ---------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "subsection_order": [
        "../examples/formats",
        "../examples/clipping",
        "../examples/amp",
    ],
    "within_subsection_order": "reading_order.ReadingOrder",
    "download_all_examples": True,
    # The running time changes every build and would become a new message to
    # translate each time.
    "min_reported_time": 10**9,
    "write_computation_times": False,
    "remove_config_comments": True,
    "show_memory": False,
    "show_signature": False,
    "reset_modules": ("matplotlib", "seaborn"),
    "matplotlib_animations": False,
}

# --- notebooks and Markdown (MyST-NB) ---------------------------------------
_HERE = Path(__file__).parent
_BUILD = _HERE / "_build"
nb_execution_mode = "cache"
# One cache for every builder, so the second language reuses the first's outputs.
nb_execution_cache_path = str(_BUILD / ".jupyter_cache")
nb_execution_raise_on_error = True
nb_execution_timeout = 120
nb_render_markdown_format = "myst"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3


def _discard_outputs_of_an_older_package():
    # sphinx-gallery re-runs an example only when the example changes, and Sphinx
    # re-reads (and MyST-NB re-executes) a page only when the page changes; both
    # would keep showing what an older mixprec computed. Start afresh whenever the
    # package's code differs.
    sources = sorted(Path(mixprec.__file__).parent.rglob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    stamp = _BUILD / "mixprec.sha256"
    if stamp.exists() and stamp.read_text() == digest:
        return
    for generated in (_HERE / "auto_examples", _BUILD / "doctrees", _BUILD / "html"):
        shutil.rmtree(generated, ignore_errors=True)
    shutil.rmtree(nb_execution_cache_path, ignore_errors=True)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)


_discard_outputs_of_an_older_package()

# --- API docs --------------------------------------------------------------
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
# Docstring examples are run by pytest --doctest-modules; the doctest builder
# runs the docs pages, whose blocks bring their own imports.
doctest_test_doctest_blocks = ""

# --- math without a CDN ----------------------------------------------------
# One self-contained MathJax file (SVG output, all TeX packages) from the
# sphinx-mathjax-offline wheel, served from _static like everything else.
_MATHJAX = importlib.metadata.distribution("sphinx-mathjax-offline").locate_file(
    "sphinx-mathjax-offline/static/mathjax/tex-svg-full.js"
)
html_static_path.append(str(_MATHJAX))
mathjax_path = "tex-svg-full.js"

# --- HTML ------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "mixprec"
html_last_updated_fmt = None
html_show_sourcelink = False
html_css_files = ["mixprec.css"]
html_js_files = ["mixprec.js"]
html_favicon = "_static/favicon.svg"
html_context = {"default_mode": "auto"}
html_theme_options = {
    "navbar_end": ["language-switcher", "theme-switcher"],
    "secondary_sidebar_items": ["page-toc"],
    "show_prev_next": True,
    "navigation_with_keys": False,
    "show_version_warning_banner": False,
}
html_sidebars = {"index": [], "glossary": [], "search": []}
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

# Strings the theme shows that depend on the language being built.
_SEARCH_BAR_TEXT = {"en": "Search the docs ...", "zh_CN": "搜索文档……"}
# MyST-NB's toggle of a hidden code cell; {type} is "source", "outputs" or "content".
_CODE_PROMPTS = {
    "en": ("Show code cell {type}", "Hide code cell {type}"),
    "zh_CN": ("显示代码", "隐藏代码"),
}


def _glossary_chinese_terms():
    """The Chinese terms of the glossary: its unindented lines in Chinese."""
    text = (Path(__file__).parent / "glossary.md").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line[:1].strip()]
    return [term for line in lines for term in re.findall(r"[\u4e00-\u9fff]+", line)]


class _SearchChinese(SearchChinese):
    # Sphinx 9.0's language_data.js ends in `window.Stemmer = ChineseStemmer;`,
    # which is never defined, so in-browser search hangs (sphinx-doc/sphinx#14229).
    # Chinese search uses the English stemmer code, so name it after that.
    language_name = "English"

    def __init__(self, options):
        super().__init__(options)
        # The search box matches whole index terms, and jieba would cut a term
        # like 次正规数 into 次 / 正规 / 数; teach it the glossary's terms.
        for term in _glossary_chinese_terms():
            jieba.add_word(term)


def _set_language_dependent(app, config):
    config.html_theme_options["search_bar_text"] = _SEARCH_BAR_TEXT[config.language]
    config.nb_code_prompt_show, config.nb_code_prompt_hide = _CODE_PROMPTS[
        config.language
    ]


def _add_language_links(app, pagename, templatename, context, doctree):
    up = "../" * (pagename.count("/") + 1)
    links = [
        {
            "code": code,
            "hreflang": code.replace("_", "-"),
            "name": name,
            "url": f"{up}{code}/{pagename}.html",
            "current": code == app.config.language,
        }
        for code, name in LANGUAGES.items()
    ]
    context["mixprec_languages"] = links
    context["metatags"] = context.get("metatags", "") + "".join(
        f'\n<link rel="alternate" hreflang="{link["hreflang"]}" href="{link["url"]}">'
        for link in links
    )


class _KeepCellOutputsUntranslated(SphinxTransform):
    """Leave what code cells print out of the message catalogs.

    A Markdown table printed by a cell would otherwise become one message per
    cell, numbers included, and every change of a computed value would make the
    catalogs stale. Printed output is code output, as in the examples' pages.
    """

    default_priority = 10  # before Sphinx's Locale transform (20) translates

    def apply(self):
        for container in self.document.findall(nodes.container):
            if container.get("nb_element") == "cell_code_output":
                for node in container.findall(nodes.TextElement):
                    node["translatable"] = False


def _alt_text_for_thumbnails(app, doctree, docname):
    # sphinx-gallery leaves gallery thumbnails without alt text; the example's
    # title, the link right after the image, says what the picture shows.
    for image in doctree.findall(nodes.image):
        if image.get("alt") or "/thumb/" not in image["uri"]:
            continue
        following = image.parent.children[image.parent.index(image) + 1 :]
        image["alt"] = next(t for t in (n.astext().strip() for n in following) if t)


def setup(app):
    app.add_search_language(_SearchChinese)
    app.add_transform(_KeepCellOutputsUntranslated)
    app.connect("config-inited", _set_language_dependent)
    app.connect("html-page-context", _add_language_links)
    app.connect("doctree-resolved", _alt_text_for_thumbnails)
