"""Writes the synthetic shapes dataset to disk as COCO json + PNG files, once.

Layout of a dataset directory::

    <directory>/spec.json                  generation marker, written last
    <directory>/train.json, val.json       COCO instances (bbox, area, RLE segmentation)
    <directory>/train/000001.png, ...      images
    <directory>/val/000001.png, ...

The directory is built in a hidden temporary sibling and renamed into place, so a directory with a
``spec.json`` is always complete. Output is byte-identical for the same spec: every image has its
own seeded generator, PNG compression is fixed and json keys are sorted.

The command line is ``python -m focal_eiou_d2.data.generate`` (see ``generate.py``).
"""

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import pycocotools.mask as mask_util
from tqdm import tqdm

from .scene import render_scene
from .shapes import CLASS_NAMES

# Bump when the generator's output changes, so that existing datasets are regenerated.
FORMAT_VERSION = 1
SPLITS = ("train", "val")
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]


@dataclass(frozen=True)
class ShapesSpec:
    """What to generate; two datasets with equal specs are byte-identical.

    Attributes:
        train_images (int): number of training images.
        val_images (int): number of validation images.
        image_size (int): side of the square images, in pixels.
        seed (int): base seed; image i of split s uses ``np.random.default_rng([seed, s, i])``.
    """

    train_images: int = 1500
    val_images: int = 250
    image_size: int = 256
    seed: int = 0

    def num_images(self, split):
        """Returns the number of images of ``split`` ("train" or "val")."""
        return self.train_images if split == "train" else self.val_images

    def dirname(self):
        """Returns a name that tells specs apart, e.g. ``256px_1500train_250val_seed0``."""
        return f"{self.image_size}px_{self.train_images}train_{self.val_images}val_seed{self.seed}"

    def marker(self):
        """Returns the json-able content of ``spec.json``."""
        return {"format_version": FORMAT_VERSION, **asdict(self)}


DEFAULT_SPEC = ShapesSpec()
# A few small images: for smoke tests of the whole pipeline in seconds.
MINI_SPEC = ShapesSpec(train_images=16, val_images=8, image_size=128)


def default_root():
    """Returns ``$DETECTRON2_DATASETS/focal_eiou_shapes``, ``$DETECTRON2_DATASETS`` defaulting to
    ``datasets``."""
    return os.path.join(os.environ.get("DETECTRON2_DATASETS", "datasets"), "focal_eiou_shapes")


def dataset_dir(spec, root=None):
    """Returns the directory that holds the dataset of ``spec`` under ``root``.

    Args:
        spec (ShapesSpec): the dataset.
        root (str or None): parent directory; ``default_root()`` if None.
    """
    return os.path.join(root or default_root(), spec.dirname())


def split_paths(directory, split):
    """Returns ``(json_file, image_root)`` of ``split`` in a dataset directory."""
    return os.path.join(directory, f"{split}.json"), os.path.join(directory, split)


def read_marker(directory):
    """Returns the parsed ``spec.json`` of ``directory``, or None if it has none."""
    try:
        with open(os.path.join(directory, "spec.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def categories():
    """Returns the COCO ``categories`` list: ids 1..K in ``CLASS_NAMES`` order."""
    return [
        {"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(CLASS_NAMES)
    ]


def coco_annotation(obj, annotation_id, image_id):
    """Converts a ``SceneObject`` into a COCO annotation dict.

    The bbox is tight around the visible pixels, the area is their count and the segmentation is
    their compressed RLE with ``counts`` as str.
    """
    rle = mask_util.encode(np.asfortranarray(obj.mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": obj.category + 1,
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


def write_split(directory, split, spec):
    """Renders and writes the images and the COCO json of one split.

    Args:
        directory (str): dataset directory (normally a temporary one, see ``generate_shapes``).
        split (str): "train" or "val".
        spec (ShapesSpec): the dataset.
    """
    json_file, image_root = split_paths(directory, split)
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
            annotations.append(coco_annotation(obj, len(annotations) + 1, image_id))
    coco = {
        "info": {"description": "focal_eiou_d2 synthetic shapes", "spec": spec.marker()},
        "licenses": [],
        "categories": categories(),
        "images": images,
        "annotations": annotations,
    }
    write_json(json_file, coco)


def write_json(path, obj):
    """Writes ``obj`` as compact json with sorted keys (deterministic bytes)."""
    with open(path, "w") as f:
        json.dump(obj, f, sort_keys=True, separators=(",", ":"))


def generate_shapes(directory, spec=DEFAULT_SPEC):
    """Makes sure ``directory`` holds the dataset of ``spec``; generates it if not.

    Nothing is done when ``directory/spec.json`` matches ``spec``. Otherwise the dataset is written
    into a temporary sibling directory and swapped in, replacing an older dataset if there is one.

    Args:
        directory (str): dataset directory, e.g. ``dataset_dir(spec)``.
        spec (ShapesSpec): the dataset.

    Returns:
        str: ``directory``.

    Raises:
        FileExistsError: ``directory`` holds files but no ``spec.json``: it is not replaced.
    """
    if read_marker(directory) == spec.marker():
        return directory
    if is_foreign(directory):
        raise FileExistsError(f"{directory} is not empty and has no spec.json; not replacing it")
    parent, name = os.path.split(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}.tmp.", dir=parent)
    os.chmod(staging, 0o755)  # mkdtemp makes it private; the dataset is not
    try:
        for split in SPLITS:
            write_split(staging, split, spec)
        write_json(os.path.join(staging, "spec.json"), spec.marker())
        swap_in(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if read_marker(directory) != spec.marker():
        raise RuntimeError(f"{directory} could not be replaced, or another process replaced it")
    return directory


def is_foreign(directory):
    """Whether ``directory`` exists, is not empty and has no ``spec.json`` (is not a dataset)."""
    if not os.path.isdir(directory) or os.path.exists(os.path.join(directory, "spec.json")):
        return False
    return bool(os.listdir(directory))


def swap_in(staging, directory):
    """Renames the complete ``staging`` directory to ``directory``, removing an old one.

    If another process installs ``directory`` at the same time, its copy is kept and ``staging`` is
    left for the caller to delete.
    """
    parent, name = os.path.split(os.path.abspath(directory))
    trash = tempfile.mkdtemp(prefix=f".{name}.old.", dir=parent)
    try:
        if os.path.isdir(directory):
            os.replace(directory, trash)
        os.replace(staging, directory)
    except OSError:
        if not os.path.isdir(directory):
            raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)
