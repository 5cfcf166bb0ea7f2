"""Writes the synthetic shapes dataset to disk as COCO json + PNG files, one split at a time.

Layout of a dataset directory (one ``ShapesSpec``, named by ``ShapesSpec.dirname()``)::

    <directory>/train/spec.json           the split's marker: format version, split and spec
    <directory>/train/annotations.json    COCO instances (bbox, area, RLE segmentation)
    <directory>/train/images/000001.png, ...
    <directory>/val/...                   the same for the val split

Each split is generated on its own, only when asked for: it is built in a hidden staging folder
inside ``<directory>`` and renamed into place, so a split folder that exists is always complete.
Staging folders left by a killed process are removed by the next generation in that directory
(``staging.remove_stale``). Output is byte-identical for the same spec: every image has its own
seeded generator, PNG compression is fixed and json keys are sorted.

The command line is ``python -m focal_eiou_d2.data.generate`` (see ``generate.py``).
"""

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import pycocotools.mask as mask_util
from tqdm import tqdm

from .root import default_root
from .scene import render_scene
from .shapes import CLASS_NAMES
from .staging import OLD, STAGING, install, make_work_dir, remove_stale

# The classes of a ``one_class`` spec.
ONE_CLASS_NAMES = ("shape",)

# Bump when the generator's output changes, so that existing datasets are regenerated.
FORMAT_VERSION = 2
SPLITS = ("train", "val")
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]
MARKER_FILE = "spec.json"
ANNOTATIONS_FILE = "annotations.json"
IMAGES_FOLDER = "images"
# What format 1 wrote: one marker for both splits, the json files next to the image folders.
LEGACY_ENTRIES = (MARKER_FILE, *SPLITS, *(f"{split}.json" for split in SPLITS))
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShapesSpec:
    """What to generate; two datasets with equal specs are byte-identical.

    Attributes:
        train_images (int): number of training images.
        val_images (int): number of validation images.
        image_size (int): side of the square images, in pixels.
        seed (int): base seed; image i of split s uses ``np.random.default_rng([seed, s, i])``.
        one_class (bool): annotate every object as the one class "shape" (same images): a
            detector of this variant learns the classes at once, so what it gets wrong is
            mostly localization, which is what box-regression losses differ in.
    """

    train_images: int = 1500
    val_images: int = 250
    image_size: int = 256
    seed: int = 0
    one_class: bool = False

    def num_images(self, split):
        """Returns the number of images of ``split`` ("train" or "val")."""
        return self.train_images if split == "train" else self.val_images

    def dirname(self):
        """Returns a name that tells specs apart, e.g. ``256px_1500train_250val_seed0``."""
        name = f"{self.image_size}px_{self.train_images}train_{self.val_images}val_seed{self.seed}"
        return name + ("_1class" if self.one_class else "")

    def class_names(self):
        """Returns the class names, in category-id order (ids 1..K)."""
        return ONE_CLASS_NAMES if self.one_class else CLASS_NAMES

    def marker(self, split):
        """Returns the json-able content of ``<split>/spec.json``."""
        return {"format_version": FORMAT_VERSION, "split": split, **asdict(self)}


DEFAULT_SPEC = ShapesSpec()
# A few small images: for smoke tests of the whole pipeline in seconds.
MINI_SPEC = ShapesSpec(train_images=16, val_images=8, image_size=128)
# The same images as DEFAULT_SPEC's training split, every object of one class, and twice the
# validation images: the localization variant, where AP depends mostly on how well boxes fit.
ONE_CLASS_SPEC = ShapesSpec(train_images=1500, val_images=500, image_size=256, one_class=True)


def dataset_dir(spec, root=None):
    """Returns the directory that holds the dataset of ``spec`` under ``root``.

    Args:
        spec (ShapesSpec): the dataset.
        root (str or None): parent directory; ``default_root()`` if None.
    """
    return os.path.join(root or default_root(), spec.dirname())


def split_paths(directory, split):
    """Returns ``(json_file, image_root)`` of ``split`` in a dataset directory."""
    split_dir = os.path.join(directory, split)
    return os.path.join(split_dir, ANNOTATIONS_FILE), os.path.join(split_dir, IMAGES_FOLDER)


def read_marker(split_dir):
    """Returns the parsed ``spec.json`` of a split folder, or None if it has none."""
    try:
        with open(os.path.join(split_dir, MARKER_FILE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def categories(spec):
    """Returns the COCO ``categories`` list: ids 1..K in ``spec.class_names()`` order."""
    return [
        {"id": i + 1, "name": name, "supercategory": "shape"}
        for i, name in enumerate(spec.class_names())
    ]


def coco_annotation(obj, annotation_id, image_id, spec):
    """Converts a ``SceneObject`` into a COCO annotation dict.

    The bbox is tight around the visible pixels, the area is their count and the segmentation is
    their compressed RLE with ``counts`` as str. The category is the object's shape, or 1 for a
    ``one_class`` spec.
    """
    rle = mask_util.encode(np.asfortranarray(obj.mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": 1 if spec.one_class else obj.category + 1,
        "bbox": obj.bbox(),
        "area": int(obj.mask.sum()),
        "segmentation": rle,
        "iscrowd": 0,
    }


def render_sample(spec, split, index):
    """Renders image ``index`` of ``split`` from its own generator, independent of other images.

    Returns:
        tuple: the image, uint8 array of shape (S, S, 3), and its list of ``SceneObject``.
    """
    rng = np.random.default_rng([spec.seed, SPLITS.index(split), index])
    return render_scene(rng, spec.image_size)


def write_split(split_dir, split, spec):
    """Renders and writes the images, the COCO json and the marker of one split.

    Args:
        split_dir (str): empty folder that receives the split (a staging folder, see
            ``generate_split``).
        split (str): "train" or "val".
        spec (ShapesSpec): the dataset.
    """
    json_file = os.path.join(split_dir, ANNOTATIONS_FILE)
    image_root = os.path.join(split_dir, IMAGES_FOLDER)
    os.makedirs(image_root)
    size = spec.image_size
    images, annotations = [], []
    for index in tqdm(range(spec.num_images(split)), desc=f"shapes {split}", unit="img"):
        image, objects = render_sample(spec, split, index)
        image_id = index + 1
        file_name = f"{image_id:06d}.png"
        cv2.imwrite(os.path.join(image_root, file_name), image, PNG_PARAMS)
        images.append({"id": image_id, "file_name": file_name, "height": size, "width": size})
        for obj in objects:
            annotations.append(coco_annotation(obj, len(annotations) + 1, image_id, spec))
    coco = {
        "info": {"description": "focal_eiou_d2 synthetic shapes", "spec": spec.marker(split)},
        "licenses": [],
        "categories": categories(spec),
        "images": images,
        "annotations": annotations,
    }
    write_json(json_file, coco)
    write_json(os.path.join(split_dir, MARKER_FILE), spec.marker(split))


def write_json(path, obj):
    """Writes ``obj`` as compact json with sorted keys (deterministic bytes)."""
    with open(path, "w") as f:
        json.dump(obj, f, sort_keys=True, separators=(",", ":"))


def generate_split(directory, split, spec=DEFAULT_SPEC):
    """Makes sure ``directory`` holds split ``split`` of ``spec``; generates only that split if not.

    Nothing is done when ``<directory>/<split>/spec.json`` matches. Otherwise the split is written
    into a staging folder in ``directory`` and renamed into place, replacing an outdated split
    (another format version). Staging folders of processes that are gone are deleted first.

    Args:
        directory (str): dataset directory, e.g. ``dataset_dir(spec)``.
        split (str): "train" or "val".
        spec (ShapesSpec): the dataset.

    Returns:
        str: the split folder, ``<directory>/<split>``.

    Raises:
        ValueError: ``split`` is not one of ``SPLITS``.
        FileExistsError: ``directory`` holds files that are not a shapes dataset: it is not touched.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    split_dir = os.path.join(directory, split)
    marker = spec.marker(split)

    def is_current(path):
        return read_marker(path) == marker

    if is_current(split_dir):
        return split_dir
    check_not_foreign(directory)
    retire_legacy(directory)
    os.makedirs(directory, exist_ok=True)
    remove_stale(directory)
    logger.info(f"Generating the {split} split of the shapes dataset in {split_dir}")
    staging = make_work_dir(directory, split, STAGING)
    try:
        write_split(staging, split, spec)
        install(staging, split_dir, is_current)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not is_current(split_dir):
        raise RuntimeError(f"{split_dir} could not be replaced, or another process replaced it")
    return split_dir


def generate_shapes(directory, spec=DEFAULT_SPEC, splits=SPLITS):
    """Makes sure ``directory`` holds the given splits of ``spec`` (see ``generate_split``).

    Args:
        directory (str): dataset directory, e.g. ``dataset_dir(spec)``.
        spec (ShapesSpec): the dataset.
        splits (tuple[str]): the splits to generate if missing; both by default.

    Returns:
        str: ``directory``.
    """
    for split in splits:
        generate_split(directory, split, spec)
    return directory


def is_legacy(directory):
    """Whether ``directory`` holds a dataset of format 1 (see ``LEGACY_ENTRIES``)."""
    marker = read_marker(directory)
    return isinstance(marker, dict) and marker.get("format_version") == 1


def check_not_foreign(directory):
    """Raises FileExistsError if ``directory`` holds something other than a shapes dataset.

    Ours are hidden entries (work folders), and split folders with a ``spec.json`` or, in a dataset
    of format 1 (``is_legacy``), the ``LEGACY_ENTRIES``.
    """
    if not os.path.isdir(directory):
        return
    legacy = is_legacy(directory)
    for name in os.listdir(directory):
        if name.startswith(".") or (legacy and name in LEGACY_ENTRIES):
            continue
        if name not in SPLITS or read_marker(os.path.join(directory, name)) is None:
            raise FileExistsError(
                f"{directory} holds {name!r}, which is not part of a shapes dataset; not writing "
                "there. Move it away, or generate the dataset elsewhere (--root, or "
                "$DETECTRON2_DATASETS)."
            )


def retire_legacy(directory):
    """Deletes the ``LEGACY_ENTRIES`` of a dataset of format 1 in ``directory``, if there is one.

    They go into an ``old`` work folder first, the marker last, so that a kill part way leaves a
    format-1 dataset that the next call retires, or nothing of it but that work folder.
    """
    if not is_legacy(directory):
        return
    old = make_work_dir(directory, "legacy", OLD)
    present = [name for name in LEGACY_ENTRIES[1:] if os.path.exists(os.path.join(directory, name))]
    for name in [*present, MARKER_FILE]:
        os.replace(os.path.join(directory, name), os.path.join(old, name))
    shutil.rmtree(old, ignore_errors=True)
