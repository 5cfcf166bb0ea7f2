"""Checks a COCO instances dataset (a JSON file and an image folder) before it is used.

The check is cheap: it reads the JSON once and stats the image files, without opening them. Bad
input that would stop or silently spoil training later raises ``DatasetError`` now, naming the file
and the fix. Input that Detectron2 accepts but changes is reported as warnings, one per kind of
problem, with counts and the JSON path:

- boxes of zero width or height: Detectron2 drops them from training as empty boxes
  (``Boxes.nonempty`` in ``detection_utils.filter_empty_instances``);
- boxes of negative width or height: Detectron2's transforms turn each box into the smallest box
  around its transformed corners, so a box ``[x, y, -w, h]`` trains as the box from ``x - w`` to
  ``x`` (the same in Detectron2 0.6 and on git main);
- category ids that are not 1..K: ``load_coco_json`` maps them, in sorted order, to 0..K-1;
- boxes wholly outside their image: Detectron2 clips every box to its image, so these become
  empty and are dropped from training;
- annotations of image ids that ``images`` does not list: ``load_coco_json`` reads the
  annotations of the listed images only, and COCO evaluation too, so these are ignored;
- one file listed as several images: each entry is an image of its own, with its own annotations
  only, so the picture trains as often as it is listed, with objects missing, and evaluation counts
  its objects once per entry;
- file names with ``..`` that leave the image folder: they are read from wherever they point.

COCO evaluation (pycocotools) matches a detection to a ground-truth box only if they overlap, which
a box of non-positive width or height never does: each such box counts as missed.
"""

import json
import math
import os
from collections import Counter
from dataclasses import dataclass

# How many offending entries an error or warning quotes.
MAX_EXAMPLES = 3
REQUIRED_LISTS = ("images", "annotations", "categories")
IMAGE_FIELDS = ("id", "file_name", "height", "width")


class DatasetError(ValueError):
    """A dataset that training or evaluation cannot use; the message names the file and the fix."""


@dataclass(frozen=True)
class CocoSummary:
    """What ``check_coco_dataset`` found in a valid dataset.

    Attributes:
        json_file (str): the annotation file.
        image_root (str): the image folder.
        num_images (int): images listed in the JSON.
        num_annotations (int): annotations in the JSON.
        category_ids (tuple[int]): the JSON's category ids, sorted.
        thing_classes (tuple[str]): category names in ``category_ids`` order, as Detectron2's
            ``load_coco_json`` sets ``thing_classes``.
        warnings (tuple[str]): one message per kind of accepted problem (see the module docstring).
    """

    json_file: str
    image_root: str
    num_images: int
    num_annotations: int
    category_ids: tuple
    thing_classes: tuple
    warnings: tuple

    def describe(self):
        """Returns e.g. ``"4 images, 15 annotations, 1 class (shape)"``."""
        count = len(self.thing_classes)
        return (
            f"{self.num_images} images, {self.num_annotations} annotations, {count} "
            f"{'class' if count == 1 else 'classes'} ({examples(self.thing_classes)})"
        )

    def id_map(self):
        """Returns Detectron2's ``thing_dataset_id_to_contiguous_id``: sorted ids to 0..K-1."""
        return {category_id: index for index, category_id in enumerate(self.category_ids)}


def examples(items):
    """Returns the first ``MAX_EXAMPLES`` of ``items`` joined by commas, with "..." if more."""
    shown = ", ".join(str(item) for item in items[:MAX_EXAMPLES])
    return shown + (", ..." if len(items) > MAX_EXAMPLES else "")


def repeated(values):
    """Returns the values that occur more than once in ``values``, sorted."""
    if len(set(values)) == len(values):
        return []
    return sorted(value for value, count in Counter(values).items() if count > 1)


def read_json(json_file):
    """Returns the parsed content of ``json_file``; raises DatasetError if that fails."""
    if not os.path.exists(json_file):
        raise DatasetError(
            f"annotation file {json_file} does not exist: give the path of the dataset's COCO "
            "instances JSON file"
        )
    if os.path.isdir(json_file):
        raise DatasetError(
            f"annotation file {json_file} is a folder: give the path of the dataset's COCO "
            "instances JSON file inside it"
        )
    try:
        with open(json_file, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise DatasetError(
            f"cannot read annotation file {json_file} ({e.strerror}): make it readable by this "
            "user"
        ) from e
    except UnicodeDecodeError as e:
        raise DatasetError(
            f"annotation file {json_file} is not a text file: give the COCO instances JSON file "
            "of the dataset"
        ) from e
    except json.JSONDecodeError as e:
        raise DatasetError(
            f"annotation file {json_file} is not valid JSON ({e.msg} at line {e.lineno}, column "
            f"{e.colno}): repair it or export the dataset again in COCO format"
        ) from e


def check_layout(coco, json_file):
    """Raises DatasetError unless ``coco`` has the lists of a COCO instances file."""
    if not isinstance(coco, dict):
        raise DatasetError(
            f"{json_file} is not a COCO instances file: its top level is a {type(coco).__name__}, "
            f"not an object with {', '.join(REQUIRED_LISTS)}"
        )
    missing = [key for key in REQUIRED_LISTS if not isinstance(coco.get(key), list)]
    if missing:
        raise DatasetError(
            f"{json_file} is not a COCO instances file: it has no list {', '.join(missing)} "
            f"(it needs {', '.join(REQUIRED_LISTS)}); export the dataset in COCO instances format"
        )


def check_categories(categories, json_file):
    """Returns ``(ids, names)`` sorted by id; raises DatasetError for missing or bad categories."""
    if not categories:
        raise DatasetError(
            f"{json_file} defines no categories: add one entry per class to 'categories', e.g. "
            '{"id": 1, "name": "object"}'
        )
    bad = [
        c
        for c in categories
        if not isinstance(c, dict)
        or not isinstance(c.get("id"), int)
        or not isinstance(c.get("name"), str)
    ]
    if bad:
        raise DatasetError(
            f"{len(bad)} categories in {json_file} lack an integer 'id' or a string 'name', e.g. "
            f"{examples(bad)}: give every category both"
        )
    twice = repeated([c["id"] for c in categories])
    if twice:
        raise DatasetError(
            f"category ids {examples(twice)} occur more than once in 'categories' of {json_file}: "
            "give every category its own id"
        )
    ordered = sorted(categories, key=lambda c: c["id"])
    return tuple(c["id"] for c in ordered), tuple(c["name"] for c in ordered)


def check_images(images, json_file):
    """Raises DatasetError for no images, images lacking fields Detectron2 reads, repeated ids."""
    if not images:
        raise DatasetError(f"{json_file} lists no images: add the dataset's images to 'images'")
    bad = [i for i in images if not isinstance(i, dict) or any(k not in i for k in IMAGE_FIELDS)]
    if bad:
        raise DatasetError(
            f"{len(bad)} images in {json_file} lack one of the fields {', '.join(IMAGE_FIELDS)}, "
            f"e.g. {examples(bad)}: Detectron2 needs all of them"
        )
    twice = repeated([i["id"] for i in images])
    if twice:
        raise DatasetError(
            f"image ids {examples(twice)} occur more than once in 'images' of {json_file}: give "
            "every image its own id"
        )


def is_box(value):
    """Whether ``value`` is a list of 4 finite numbers."""
    if not isinstance(value, list) or len(value) != 4:
        return False
    try:
        # sum() rejects what is not a number, and is not finite if a term is NaN or infinite.
        return math.isfinite(sum(value))
    except TypeError:
        return False


def check_annotations(annotations, category_ids, json_file):
    """Raises DatasetError for annotations that would stop loading; returns the box warnings.

    Returns:
        list[str]: a warning for boxes of zero, and one for boxes of negative, width or height
        (non-crowd annotations only: crowd regions are neither trained on nor matched).
    """
    bad = [a for a in annotations if not isinstance(a, dict) or not is_box(a.get("bbox"))]
    if bad:
        shown = [f"id {a.get('id')}: {a.get('bbox')!r}" if isinstance(a, dict) else a for a in bad]
        raise DatasetError(
            f"{len(bad)} annotations in {json_file} have no 'bbox' of 4 finite numbers [x, y, "
            f"width, height], e.g. {examples(shown)}: fix or remove them"
        )
    twice = repeated([a.get("id") for a in annotations])
    if twice:
        raise DatasetError(
            f"annotation ids {examples(twice)} occur more than once in {json_file}: give every "
            "annotation its own id"
        )
    known = set(category_ids)
    unknown = sorted({a.get("category_id") for a in annotations} - known, key=str)
    if unknown:
        raise DatasetError(
            f"annotations in {json_file} use category ids {examples(unknown)}, which are not in "
            f"its 'categories' (ids {examples(sorted(known))}): add those categories or fix the "
            "annotations"
        )
    total, empty, negative = 0, [], []
    for annotation in annotations:
        if annotation.get("iscrowd", 0):
            continue
        box = annotation["bbox"]
        total += 1
        if box[2] == 0 or box[3] == 0:
            empty.append(box)
        elif box[2] < 0 or box[3] < 0:
            negative.append(box)
    warnings = []
    if empty:
        warnings.append(
            f"{json_file}: {len(empty)} of {total} boxes have zero width or height, e.g. "
            f"{examples(empty)}. Detectron2 drops them from training as empty boxes, and COCO "
            "evaluation counts each as a missed object. Fix or remove them."
        )
    if negative:
        warnings.append(
            f"{json_file}: {len(negative)} of {total} boxes have a negative width or height, e.g. "
            f"{examples(negative)}. Detectron2's transforms flip them: [x, y, w, h] trains as the "
            "box between x and x + w, y and y + h; COCO evaluation counts each as a missed "
            "object. Write them as [min(x, x + w), min(y, y + h), |w|, |h|]."
        )
    return warnings


def is_size(value):
    """Whether ``value`` is a pair of numbers (an image's width and height)."""
    return isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value)


def image_warnings(images, annotations, json_file):
    """Returns a warning each for annotations of unlisted images and boxes wholly outside their
    image (non-crowd ones of positive size: the others have warnings of their own)."""
    sizes = {image["id"]: (image["width"], image["height"]) for image in images}
    unlisted = [a for a in annotations if a.get("image_id") not in sizes]
    total, outside = 0, []
    for annotation in annotations:
        size = sizes.get(annotation.get("image_id"))
        x, y, w, h = annotation["bbox"]
        if not is_size(size) or annotation.get("iscrowd", 0) or w == 0 or h == 0:
            continue
        total += 1
        (x0, x1), (y0, y1) = sorted((x, x + w)), sorted((y, y + h))
        width, height = size
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            outside.append(
                f"{annotation['bbox']} in image {annotation['image_id']} ({width}x{height})"
            )
    warnings = []
    if unlisted:
        ids = sorted({a.get("image_id") for a in unlisted}, key=str)
        warnings.append(
            f"{json_file}: {len(unlisted)} of {len(annotations)} annotations belong to "
            f"{len(ids)} image ids that 'images' does not list, e.g. {examples(ids)}. Detectron2 "
            "and COCO evaluation read only the annotations of listed images and ignore these. "
            "Add their images or remove them."
        )
    if outside:
        warnings.append(
            f"{json_file}: {len(outside)} of {total} boxes lie wholly outside their image, e.g. "
            f"{examples(outside)}. Detectron2 clips boxes to the image, so it drops these from "
            "training as empty boxes, and COCO evaluation counts each as a missed object. Fix "
            "the boxes or the images' width and height."
        )
    return warnings


def file_name_warnings(images, json_file):
    """Returns a warning for files listed as several images, and one for file names that leave
    the image folder with ``..``."""
    names = [os.path.normpath(image["file_name"]) for image in images]
    listed = Counter(names)
    twice = sorted(name for name, count in listed.items() if count > 1)
    leaving = [name for name in names if name == os.pardir or name.startswith(os.pardir + os.sep)]
    warnings = []
    if twice:
        entries = sum(listed[name] for name in twice)
        warnings.append(
            f"{json_file}: {len(twice)} files are listed as {entries} images, e.g. "
            f"{examples(twice)}. Detectron2 reads each entry as an image of its own, with its own "
            "annotations only: the picture trains once per entry, and evaluation scores it once "
            "per entry. List each file once, with all its annotations."
        )
    if leaving:
        warnings.append(
            f"{json_file}: {len(leaving)} of {len(images)} image file names leave the image "
            f"folder with '..', e.g. {examples(leaving)}. They are read from wherever they point; "
            "keep the dataset's images in its image folder."
        )
    return warnings


def id_mapping_warning(category_ids, thing_classes, json_file):
    """Returns a warning if ``category_ids`` (sorted) are not 1..K, else None."""
    if list(category_ids) == list(range(1, len(category_ids) + 1)):
        return None
    pairs = [
        f"{category_id} ({name!r}) -> {index}"
        for index, (category_id, name) in enumerate(zip(category_ids, thing_classes, strict=True))
    ]
    count = len(category_ids)
    return (
        f"{json_file}: the category ids ({examples(list(category_ids))}) are not 1..{count}. "
        f"Detectron2 maps them in sorted order to the classes 0..{count - 1}: "
        f"{examples(pairs)}; evaluation maps predictions back to the JSON's ids."
    )


def check_image_files(images, image_root, json_file):
    """Raises DatasetError if ``image_root`` is not a folder or lacks images of the JSON."""
    if not os.path.isdir(image_root):
        state = "is not a folder" if os.path.exists(image_root) else "does not exist"
        raise DatasetError(
            f"image folder {image_root} (of {json_file}) {state}: give the folder that the "
            "images' file_name paths are relative to"
        )
    absent = [
        i["file_name"]
        for i in images
        if not os.path.isfile(os.path.join(image_root, i["file_name"]))
    ]
    if absent:
        raise DatasetError(
            f"{len(absent)} of {len(images)} images listed in {json_file} are not in {image_root}, "
            f"e.g. {examples(absent)}: copy them there, or give the folder that the images' "
            "file_name paths are relative to"
        )


def check_coco_dataset(json_file, image_root):
    """Checks a COCO instances dataset; see the module docstring for what is checked.

    Args:
        json_file (str): the COCO instances JSON file.
        image_root (str): the folder that the images' ``file_name`` paths are relative to.

    Returns:
        CocoSummary: counts, classes in Detectron2's order, and the warnings (not yet logged).

    Raises:
        DatasetError: the dataset cannot be used; the message names the file and the fix.
    """
    coco = read_json(json_file)
    check_layout(coco, json_file)
    category_ids, thing_classes = check_categories(coco["categories"], json_file)
    check_images(coco["images"], json_file)
    warnings = check_annotations(coco["annotations"], category_ids, json_file)
    warnings += image_warnings(coco["images"], coco["annotations"], json_file)
    warnings += file_name_warnings(coco["images"], json_file)
    mapping = id_mapping_warning(category_ids, thing_classes, json_file)
    check_image_files(coco["images"], image_root, json_file)
    return CocoSummary(
        json_file=json_file,
        image_root=image_root,
        num_images=len(coco["images"]),
        num_annotations=len(coco["annotations"]),
        category_ids=category_ids,
        thing_classes=thing_classes,
        warnings=tuple(warnings) + ((mapping,) if mapping else ()),
    )
