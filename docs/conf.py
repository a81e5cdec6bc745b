"""Sphinx configuration of the gamejax documentation (built by tests/test_docs.py with warnings as errors).

Build: ``pip install -e ".[docs]" && sphinx-build -W --keep-going -b html docs docs/_build/html``.
"""

from __future__ import annotations

import enum
import inspect
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gamejax  # noqa: E402

project = "gamejax"
author = "the gamejax authors"
copyright = "the gamejax authors"  # noqa: A001
release = version = gamejax.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_nb",
]

exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

# Markdown (MyST): $…$ math, and GitHub-style heading anchors for links such as
# benchmarks/README.md#performance-report-perfpy.
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 4

# Notebooks are rendered from their stored outputs; CI executes them separately (nbmake).
nb_execution_mode = "off"

# Docstrings: Google style (napoleon) with reST markup; signatures without type hints (the
# docstrings' Args say what each argument is), members in source order.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False  # a Returns line reads "A wrapper: ...", not a type and a description
napoleon_attr_annotations = False  # Attributes say what each field holds; its annotation is mostly Any
autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True}
autosummary_generate = False
add_module_names = False


def _skip_fields(app, what, name, obj, skip, options):
    """Class members are methods and properties; fields are documented by the class's Attributes section.

    Without this, a NamedTuple field would also appear as "Alias for field number 0", and a
    dataclass field whose default is a documented object (``nnx.Param``) as that object's docstring.
    """
    if what == "class" and not (
        inspect.isroutine(obj) or isinstance(obj, (property, enum.Enum)) or inspect.isclass(obj) and name[:1].isupper()
    ):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_fields)


html_theme = "furo"
html_title = f"gamejax {version}"
