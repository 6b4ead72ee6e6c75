"""Sphinx configuration: the markdown pages (MyST) and an API reference from the docstrings.

Build with ``make docs`` (warnings are errors).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ase_crystalgen  # noqa: E402

project = "ase_crystalgen"
author = "ase_crystalgen developers"
release = version = ase_crystalgen.__version__
copyright = "ase_crystalgen developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "api/generated/*.rst.bak"]
templates_path = ["_templates"]

# markdown: GitHub-style anchors for in-page links, $...$ maths, tables and definitions
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# API reference: one page per public module, written by autosummary at build time
autosummary_generate = True
autosummary_imported_members = False
# packages list their modules; each module page documents its members (see
# _templates/autosummary/module.rst), so nothing is documented twice
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

html_theme = "alabaster"
html_title = f"ase_crystalgen {version}"
html_static_path: list[str] = []


# Habits of the package's numpydoc docstrings that napoleon and plain reStructuredText read
# differently, handled here for every docstring rather than by a convention in each, before
# napoleon (priority 500) turns the numpydoc sections into fields: prose after a parameter list
# (after a blank line, not shaped like "name : type") is a note, not more parameters (napoleon
# would read it as parameters, and docutils would then find a field list ending without a
# blank line); and |x| is an absolute value (the package defines no substitutions).
_PARAM_SECTIONS = {"Parameters", "Other Parameters", "Attributes", "Keyword Arguments"}
_PARAM = re.compile(r"^\*{0,2}[A-Za-z_]\w*(\s*,\s*\*{0,2}[A-Za-z_]\w*)*\s*(:\s|:$|$)")
_ABS = re.compile(r"(?<![`\\|\w])\|([A-Za-z_]\w*)\|(?![`\w|])")


def _is_header(lines, i):
    return i + 1 < len(lines) and bool(lines[i].strip()) and set(lines[i + 1].strip()) == {"-"}


def _numpydoc_habits(app, what, name, obj, options, lines):
    out: list[str] = []
    in_params = blank = False
    for i, line in enumerate(lines):
        if _is_header(lines, i):
            in_params = line.strip() in _PARAM_SECTIONS
        elif in_params and blank and line and not line[0].isspace() and not _PARAM.match(line):
            out += ["Notes", "-----"]
            in_params = False
        blank = not line.strip()
        out.append(line if "``" in line else _ABS.sub(r"\\|\1\\|", line))
    lines[:] = out


def setup(app):
    app.connect("autodoc-process-docstring", _numpydoc_habits, priority=400)
