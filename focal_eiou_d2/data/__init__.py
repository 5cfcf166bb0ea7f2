"""Synthetic detection dataset of coloured shapes, for training and evaluating box regression.

Importing this package registers ``shapes_train`` and ``shapes_val`` (the default ``ShapesSpec``
under ``default_root()``) and ``shapes_mini_train`` / ``shapes_mini_val`` (``MINI_SPEC``, for smoke
tests) with Detectron2; nothing is generated until a split is requested.
"""

from .register import DEFAULT_NAMES, MINI_NAMES, register_shapes
from .scene import render_scene
from .shapes import CLASS_COLORS, CLASS_NAMES
from .writer import (
    DEFAULT_SPEC,
    MINI_SPEC,
    ShapesSpec,
    dataset_dir,
    default_root,
    generate_shapes,
    render_sample,
)

__all__ = [
    "CLASS_COLORS",
    "CLASS_NAMES",
    "DEFAULT_NAMES",
    "DEFAULT_SPEC",
    "MINI_NAMES",
    "MINI_SPEC",
    "ShapesSpec",
    "dataset_dir",
    "default_root",
    "generate_shapes",
    "register_shapes",
    "render_sample",
    "render_scene",
]

register_shapes()
register_shapes(MINI_NAMES, MINI_SPEC)
