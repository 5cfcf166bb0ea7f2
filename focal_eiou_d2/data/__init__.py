"""Datasets: the embedded synthetic shapes dataset, and COCO-format datasets of the user.

Importing this package registers ``shapes_train`` and ``shapes_val`` (the default ``ShapesSpec``
under ``default_root()``), ``shapes_1class_train`` / ``shapes_1class_val`` (``ONE_CLASS_SPEC``: the
same kind of images, every object of one class, for experiments where localization decides AP) and
``shapes_mini_train`` / ``shapes_mini_val`` (``MINI_SPEC``, for smoke tests) with Detectron2;
nothing is generated until a split is requested, and then only that split.
The user's datasets come from the command line, ``--coco-dataset NAME ANNOTATIONS_JSON IMAGE_DIR``
(``add_coco_dataset_argument``, ``register_coco_datasets``), checked before use (``validate.py``).
"""

from .classes import dataset_classes, num_classes_for
from .coco import CocoDataset, add_coco_dataset_argument, register_coco_datasets
from .register import (
    DEFAULT_NAMES,
    MINI_NAMES,
    ONE_CLASS_DATASETS,
    check_datasets_exist,
    prepare_datasets,
    register_shapes,
)
from .root import datasets_root, default_root
from .scene import render_scene
from .shapes import CLASS_COLORS, CLASS_NAMES
from .validate import CocoSummary, DatasetError, check_coco_dataset
from .writer import (
    DEFAULT_SPEC,
    MINI_SPEC,
    ONE_CLASS_SPEC,
    ShapesSpec,
    dataset_dir,
    generate_shapes,
    generate_split,
    render_sample,
)

__all__ = [
    "check_datasets_exist",
    "prepare_datasets",
    "CLASS_COLORS",
    "CLASS_NAMES",
    "DEFAULT_NAMES",
    "DEFAULT_SPEC",
    "MINI_NAMES",
    "MINI_SPEC",
    "ONE_CLASS_DATASETS",
    "ONE_CLASS_SPEC",
    "CocoDataset",
    "CocoSummary",
    "DatasetError",
    "ShapesSpec",
    "add_coco_dataset_argument",
    "check_coco_dataset",
    "dataset_classes",
    "dataset_dir",
    "datasets_root",
    "default_root",
    "generate_shapes",
    "generate_split",
    "num_classes_for",
    "register_coco_datasets",
    "register_shapes",
    "render_sample",
    "render_scene",
]

register_shapes()
register_shapes(ONE_CLASS_DATASETS, ONE_CLASS_SPEC)
register_shapes(MINI_NAMES, MINI_SPEC)
