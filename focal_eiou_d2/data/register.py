"""Registers the synthetic shapes dataset with Detectron2's catalogs.

Registration writes nothing: the loader of a split generates that split (and only that one) the
first time it is called (``DatasetCatalog.get(name)``, or building a data loader), then reads it
with ``load_coco_json``.
"""

import functools
import os

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json

from .shapes import CLASS_COLORS
from .writer import DEFAULT_SPEC, SPLITS, dataset_dir, generate_split, split_paths

DEFAULT_NAMES = ("shapes_train", "shapes_val")
MINI_NAMES = ("shapes_mini_train", "shapes_mini_val")
ONE_CLASS_DATASETS = ("shapes_1class_train", "shapes_1class_val")


def load_shapes(name, directory, split, spec):
    """Generates the split if needed (not the other one) and loads it as Detectron2 dicts.

    Args:
        name (str): registered dataset name; its metadata receives the category mapping.
        directory (str): dataset directory.
        split (str): "train" or "val".
        spec (ShapesSpec): the dataset.

    Returns:
        list[dict]: Detectron2's standard dataset dicts (boxes in XYWH_ABS, RLE segmentations).
    """
    generate_split(directory, split, spec)
    json_file, image_root = split_paths(directory, split)
    return load_coco_json(json_file, image_root, dataset_name=name)


def register_shapes(names=DEFAULT_NAMES, spec=DEFAULT_SPEC, root=None):
    """Registers the train and val splits of a shapes dataset; calling it again re-registers.

    Each name gets ``evaluator_type="coco"``, ``thing_classes``, ``thing_colors``,
    ``thing_dataset_id_to_contiguous_id``, ``json_file`` and ``image_root`` metadata. ``json_file``
    exists only once the split has been requested, so load it (``DatasetCatalog.get``) before
    building a ``COCOEvaluator`` for it (``DefaultTrainer.test`` builds the loader first).

    Args:
        names (tuple[str, str]): dataset names of the train and val splits.
        spec (ShapesSpec): sizes and seed.
        root (str or None): parent of the dataset directory; ``default_root()`` if None.

    Example::

        register_shapes(("tiny_train", "tiny_val"), ShapesSpec(8, 4, image_size=128), root=tmp)
    """
    directory = dataset_dir(spec, root)
    for name, split in zip(names, SPLITS, strict=True):
        register_split(name, directory, split, spec)


def register_split(name, directory, split, spec):
    """Registers one split under ``name``, replacing an earlier registration of that name."""
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
    if name in MetadataCatalog.list():
        MetadataCatalog.remove(name)
    DatasetCatalog.register(name, functools.partial(load_shapes, name, directory, split, spec))
    json_file, image_root = split_paths(directory, split)
    MetadataCatalog.get(name).set(
        json_file=json_file,
        image_root=image_root,
        evaluator_type="coco",
        generated_on_first_use=True,
        thing_classes=list(spec.class_names()),
        thing_colors=[list(colour) for colour in CLASS_COLORS[: len(spec.class_names())]],
        thing_dataset_id_to_contiguous_id={i + 1: i for i in range(len(spec.class_names()))},
    )


def check_datasets_exist(names):
    """Raise FileNotFoundError naming the expected files when a dataset of ``names`` is missing.

    Datasets whose metadata names a ``json_file`` (Detectron2's builtin COCO registration, or
    ``register_coco_instances``) are checked; datasets generated on first use are skipped.

    Args:
        names (Iterable[str]): registered dataset names (the training ones, and the test ones;
            evaluation needs only the latter).
    """
    root = os.environ.get("DETECTRON2_DATASETS", "datasets")
    for name in names:
        metadata = MetadataCatalog.get(name)
        json_file = metadata.get("json_file", None)
        if json_file is None or metadata.get("generated_on_first_use", False):
            continue
        missing = [p for p in (json_file, metadata.get("image_root", ".")) if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(
                f"dataset {name!r} is not where Detectron2 expects it: missing {missing}. "
                f"Builtin datasets are read under $DETECTRON2_DATASETS (now {root!r}, relative to "
                f"the current folder); for COCO 2017 that is "
                f"{root}/coco/annotations/instances_{{train,val}}2017.json and "
                f"{root}/coco/{{train,val}}2017/. Set DETECTRON2_DATASETS to the folder holding "
                "coco/, register your own data with --coco-dataset NAME JSON IMAGE_DIR, or train "
                "on the embedded dataset (configs/quickstart/)."
            )


def prepare_datasets(names):
    """Generate the datasets of ``names`` that are generated on first use (the embedded shapes
    datasets), in this process: a launcher calls it once per machine, before the training
    processes start and would each generate them at once.

    Args:
        names (Iterable[str]): registered dataset names; the others are left alone.
    """
    for name in names:
        if MetadataCatalog.get(name).get("generated_on_first_use", False):
            DatasetCatalog.get(name)
