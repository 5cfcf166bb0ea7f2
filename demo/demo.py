"""Draws the detections of one model, or of two models side by side (Figs. 10-11 of the paper).

One model::

    python demo/demo.py --config-file CONFIG --input images/ --output vis/ \
        --opts MODEL.WEIGHTS model_final.pth

Two models, A on the left and B on the right, with the ground truth of a registered dataset::

    python demo/demo.py --config-file CONFIG_A --opts MODEL.WEIGHTS A.pth \
        --compare-config CONFIG_B --compare-weights B.pth \
        --input datasets/.../val/00000[1-8].png --output vis/ --dataset shapes_val --show-gt

Images that cannot be read are reported and skipped; the exit status is 1 if any image failed.
"""

import argparse
import glob
import logging
import os
import sys
from dataclasses import dataclass, field

import cv2
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import DefaultPredictor
from detectron2.utils.logger import setup_logger
from tqdm import tqdm

import focal_eiou_d2.data  # noqa: F401  (registers shapes_train and shapes_val)
from focal_eiou_d2.visualization import (
    draw_detections,
    draw_ground_truth,
    load_config,
    model_name,
    model_names,
    side_by_side,
)

logger = logging.getLogger("focal_eiou_d2.demo")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class DemoResult:
    """What a run did.

    Attributes:
        written (list[str]): the images written.
        failed (list[tuple[str, str]]): ``(input, reason)`` of every input that was skipped.
    """

    written: list = field(default_factory=list)
    failed: list = field(default_factory=list)


class ImageError(Exception):
    """An input image that cannot be read; the message is the reason."""


def parse_args(argv=None):
    """Parses the command line; see ``--help``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", required=True, metavar="FILE", help="model (A) config")
    parser.add_argument(
        "--input", nargs="+", required=True, help="image files, folders or glob patterns"
    )
    parser.add_argument(
        "--output", required=True, help="output folder, or output file when there is one input"
    )
    parser.add_argument(
        "--confidence-threshold",
        type=float,
        default=0.5,
        help="detections with a lower score are not drawn (default: %(default)s)",
    )
    parser.add_argument("--opts", nargs="*", default=[], help="KEY VALUE overrides of model (A)")
    parser.add_argument("--compare-config", metavar="FILE", help="config of model B (comparison)")
    parser.add_argument("--compare-weights", metavar="FILE", help="checkpoint of model B")
    parser.add_argument(
        "--compare-opts", nargs="*", default=[], help="KEY VALUE overrides of B (not --opts)"
    )
    parser.add_argument("--names", nargs=2, metavar=("A", "B"), help="titles of the two halves")
    parser.add_argument(
        "--dataset", help="registered dataset giving class names (default: DATASETS.TEST[0])"
    )
    parser.add_argument(
        "--show-gt", action="store_true", help="draw the --dataset boxes of images found in it"
    )
    args = parser.parse_args(argv)
    if args.show_gt and not args.dataset:
        parser.error("--show-gt needs --dataset")
    return args


def is_comparison(args):
    """Whether a second model is given."""
    return bool(args.compare_config or args.compare_weights)


def build_models(args):
    """Builds the predictors (A, and B in comparison mode).

    Returns:
        tuple: the list of ``DefaultPredictor``, the titles of A and B (None with one model) and
        the metadata naming the classes (``--dataset``, else the first test dataset of A).
    """
    threshold_opts = [
        "MODEL.RETINANET.SCORE_THRESH_TEST",
        args.confidence_threshold,
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
        args.confidence_threshold,
    ]
    cfg_a = load_config(args.config_file, [*args.opts, *threshold_opts])
    dataset = args.dataset or (cfg_a.DATASETS.TEST[0] if cfg_a.DATASETS.TEST else "__unnamed")
    metadata = MetadataCatalog.get(dataset)
    if not is_comparison(args):
        return [DefaultPredictor(cfg_a)], None, metadata
    cfg_b = load_config(
        args.compare_config or args.config_file,
        [*args.compare_opts, *threshold_opts],
        weights=args.compare_weights,
    )
    names = tuple(args.names or model_names(model_name(cfg_a), model_name(cfg_b)))
    return [DefaultPredictor(cfg_a), DefaultPredictor(cfg_b)], names, metadata


def expand_inputs(patterns):
    """Expands files, folders (their images, sorted) and glob patterns into image paths.

    Returns:
        tuple[list[str], list[str]]: the paths without duplicates, and the patterns that match no
        file.
    """
    paths, unmatched = [], []
    for pattern in patterns:
        if os.path.isdir(pattern):
            names = sorted(os.listdir(pattern))
            matches = [
                os.path.join(pattern, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS)
            ]
        else:
            matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        matches = [path for path in matches if os.path.isfile(path)]
        if not matches:
            unmatched.append(pattern)
        paths.extend(path for path in matches if path not in paths)
    return paths, unmatched


def read_bgr(path):
    """Reads an image as (H, W, 3) uint8 BGR, or raises ImageError saying why it cannot."""
    if os.path.getsize(path) == 0:
        raise ImageError("empty file")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError("not a readable image (corrupt, or a format OpenCV cannot decode)")
    return image


def ground_truth_index(dataset_name):
    """Maps file paths (real paths, and base names that occur once) to the dataset's annotations."""
    by_path, by_name = {}, {}
    for record in DatasetCatalog.get(dataset_name):
        by_path[os.path.realpath(record["file_name"])] = record["annotations"]
        by_name.setdefault(os.path.basename(record["file_name"]), []).append(record["annotations"])
    unique = {name: found[0] for name, found in by_name.items() if len(found) == 1}
    return by_path, unique


def find_annotations(index, path):
    """Returns the annotations of the image at ``path``, or None if it is not in the dataset."""
    by_path, by_name = index
    annotations = by_path.get(os.path.realpath(path), by_name.get(os.path.basename(path)))
    if annotations is None:
        logger.warning("%s is not in the dataset: no ground truth drawn", path)
    return annotations


def render(path, predictors, names, metadata, threshold, annotations):
    """Returns the picture of one input image: one rendering, or two side by side."""
    image_bgr = read_bgr(path)
    panels = []
    for predictor in predictors:
        instances = predictor(image_bgr)["instances"]
        panel = draw_detections(image_bgr[:, :, ::-1], instances, metadata, threshold)
        panels.append(panel if annotations is None else draw_ground_truth(panel, annotations))
    return panels[0] if len(panels) == 1 else side_by_side(panels[0], panels[1], names)


def output_paths(inputs, output):
    """Returns the output file of each input: ``output`` itself, or files in the folder ``output``.

    ``output`` is a file when it has an image extension and is not a folder (there must be one
    input then); in a folder, base names that repeat get a suffix ``_1``, ``_2``, ...

    Raises:
        ValueError: ``output`` is a file name and there are several inputs.
    """
    if output.lower().endswith(IMAGE_EXTENSIONS) and not os.path.isdir(output):
        if len(inputs) > 1:
            raise ValueError(f"--output {output} is a file name but {len(inputs)} images are given")
        os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
        return [output]
    os.makedirs(output, exist_ok=True)
    paths, used = [], set()
    for path in inputs:
        stem, extension = os.path.splitext(os.path.basename(path))
        name, count = stem + extension, 0
        while name in used:
            count += 1
            name = f"{stem}_{count}{extension}"
        used.add(name)
        paths.append(os.path.join(output, name))
    return paths


def run_demo(args):
    """Draws every input image and writes it; returns what was written and what failed."""
    result = DemoResult()
    inputs, unmatched = expand_inputs(args.input)
    for pattern in unmatched:
        fail(result, pattern, "no such file")
    predictors, names, metadata = build_models(args)
    index = ground_truth_index(args.dataset) if args.show_gt else None
    outputs = output_paths(inputs, args.output)
    pairs = list(zip(inputs, outputs, strict=True))
    for path, out_path in tqdm(pairs, unit="img", disable=len(pairs) < 2):
        try:
            annotations = None if index is None else find_annotations(index, path)
            picture = render(
                path, predictors, names, metadata, args.confidence_threshold, annotations
            )
            if not cv2.imwrite(out_path, picture[:, :, ::-1]):
                raise ImageError(f"cannot write {out_path}")
        except (ImageError, cv2.error) as error:
            fail(result, path, str(error))
            continue
        result.written.append(out_path)
    return result


def fail(result, path, reason):
    """Logs that ``path`` is skipped and why, and records it in ``result``."""
    logger.error("skipped %s: %s", path, reason)
    result.failed.append((path, reason))


def summary(result, output):
    """The last line of a run: counts, where the images went, and the failed inputs."""
    line = f"{len(result.written)} images written to {output}, {len(result.failed)} failed"
    if result.failed:
        line += ": " + ", ".join(f"{path} ({reason})" for path, reason in result.failed)
    return line


def main(argv=None):
    """Runs the demo; returns the exit status: 1 if any input failed, 0 otherwise."""
    args = parse_args(argv)
    setup_logger(name="fvcore")
    setup_logger()
    setup_logger(name="focal_eiou_d2")
    result = run_demo(args)
    logger.info(summary(result, args.output))
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
