"""A tiny COCO-format dataset as a user would bring one: JPEG images, one class, category id 7.

The images are shapes scenes (``focal_eiou_d2.data.render_scene``) with every object in the single
class, so a detector can learn it; the JSON is written as a plain COCO export, independent of the
project's writer::

    json_file, image_root = write_coco_tiny(tmp_path / "train")
"""

import json
import os

import cv2
import numpy as np

from focal_eiou_d2.data import render_scene

CATEGORY_ID = 7
CLASS_NAME = "shape"
NUM_IMAGES = 4
IMAGE_SIZE = 96
JPEG_QUALITY = 95
JSON_NAME = "instances.json"
IMAGES_FOLDER = "images"


def write_coco_tiny(directory, num_images=NUM_IMAGES, image_size=IMAGE_SIZE, seed=0):
    """Writes ``<directory>/instances.json`` and ``<directory>/images/*.jpg``.

    Args:
        directory (str or Path): created if missing.
        num_images (int): number of images.
        image_size (int): side of the square images, in pixels.
        seed (int): seed of the scenes; other seeds give other images.

    Returns:
        tuple[str, str]: ``(json_file, image_root)``.
    """
    image_root = os.path.join(directory, IMAGES_FOLDER)
    os.makedirs(image_root, exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        image, objects = render_scene(np.random.default_rng([seed, index]), image_size)
        image_id = 100 + index  # ids need not start at 1
        file_name = f"img_{index:03d}.jpg"
        cv2.imwrite(
            os.path.join(image_root, file_name), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        )
        images.append(
            {"id": image_id, "file_name": file_name, "height": image_size, "width": image_size}
        )
        for obj in objects:
            x, y, w, h = obj.bbox()
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": CATEGORY_ID,
                    "bbox": [float(x), float(y), float(w), float(h)],
                    "area": float(w * h),
                    "iscrowd": 0,
                }
            )
    coco = {
        "info": {"description": "coco_tiny test dataset"},
        "licenses": [],
        "categories": [{"id": CATEGORY_ID, "name": CLASS_NAME, "supercategory": "object"}],
        "images": images,
        "annotations": annotations,
    }
    json_file = os.path.join(directory, JSON_NAME)
    write_json(json_file, coco)
    return json_file, image_root


def read_json(json_file):
    """Returns the parsed JSON of ``json_file``."""
    with open(json_file) as f:
        return json.load(f)


def write_json(json_file, coco):
    """Writes ``coco`` to ``json_file``."""
    with open(json_file, "w") as f:
        json.dump(coco, f)


def edit_json(json_file, edit):
    """Rewrites ``json_file`` with ``edit(coco)`` applied to its parsed content in place."""
    coco = read_json(json_file)
    edit(coco)
    write_json(json_file, coco)
