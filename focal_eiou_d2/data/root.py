"""Where datasets live: ``$DETECTRON2_DATASETS``, else the project's ``datasets/`` folder.

The folder never depends on the current directory: a tool run from anywhere reads and generates
the embedded datasets in the same place.
"""

import os

ENV_VAR = "DETECTRON2_DATASETS"
# The package's own folder, focal_eiou_d2/.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Files next to the package folder that make its parent a source checkout of the project.
CHECKOUT_FILES = ("setup.py", "pyproject.toml")
DATASETS_FOLDER = "datasets"
SHAPES_FOLDER = "focal_eiou_shapes"


def checkout_dir():
    """Returns the source checkout the package is imported from, or None for an installed copy.

    A checkout is the package folder's parent when it holds ``setup.py`` and ``pyproject.toml``:
    running from the checkout and ``pip install -e .`` import the package from there; ``pip
    install .`` copies it into ``site-packages``, which is no checkout.
    """
    parent = os.path.dirname(PACKAGE_DIR)
    if all(os.path.isfile(os.path.join(parent, name)) for name in CHECKOUT_FILES):
        return parent
    return None


def cache_datasets_dir():
    """Returns ``$XDG_CACHE_HOME/focal_eiou_d2/datasets`` (``~/.cache/...`` by default)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "focal_eiou_d2", DATASETS_FOLDER)


def datasets_root():
    """Returns the absolute folder that holds datasets.

    It is ``$DETECTRON2_DATASETS`` when set and not empty (relative to the current directory, as
    Detectron2 reads it, but returned absolute so that a later change of directory has no effect).
    Otherwise it is the project's ``datasets/`` folder: ``<checkout>/datasets`` when the package is
    imported from a source checkout (see ``checkout_dir``), and ``cache_datasets_dir()`` for an
    installed copy, whose package folder lies inside ``site-packages``.
    """
    configured = os.environ.get(ENV_VAR)
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    checkout = checkout_dir()
    if checkout is None:
        return cache_datasets_dir()
    return os.path.join(checkout, DATASETS_FOLDER)


def default_root():
    """Returns the parent folder of the shapes datasets, ``<datasets_root()>/focal_eiou_shapes``.

    ``datasets_root()`` is ``$DETECTRON2_DATASETS`` if set, else the project's ``datasets/``:
    ``<checkout>/datasets`` for a source checkout (run in place or ``pip install -e .``) and
    ``$XDG_CACHE_HOME/focal_eiou_d2/datasets`` (default ``~/.cache/focal_eiou_d2/datasets``) for a
    non-editable install. The result is absolute and independent of the current directory.
    """
    return os.path.join(datasets_root(), SHAPES_FOLDER)
