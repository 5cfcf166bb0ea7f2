"""Draws the detections of one model, or of two models side by side (Figs. 10-11 of the paper).

One model::

    python demo/demo.py --config-file CONFIG --input images/ --output vis/ \
        --opts MODEL.WEIGHTS model_final.pth

Two models, A on the left and B on the right, with the ground truth of a registered dataset::

    python demo/demo.py --config-file CONFIG_A --opts MODEL.WEIGHTS A.pth \
        --compare-config CONFIG_B --compare-weights B.pth \
        --input datasets/.../val/images/00000[1-8].png --output vis/ --dataset shapes_val --show-gt

``--opts KEY VALUE ...`` overrides the config of every model, as in Detectron2's demo; its
``MODEL.WEIGHTS`` is model A's, B's are ``--compare-weights``. LazyConfig ``.py`` files are
accepted too, with ``--opts key=value ...`` (model A's weights: ``train.init_checkpoint=FILE``).
Each model takes its class count and class names from the run that trained its weights (the
``run.json`` beside them).

Bad arguments, inputs that match no image, an output that cannot be written and weights that do
not fit the model stop the demo before any image is drawn. Images that cannot be read are
reported and skipped; the exit status is 1 if any image failed.
"""

import argparse
import glob
import logging
import os
import sys
from dataclasses import dataclass, field

import cv2
from detectron2.data import DatasetCatalog
from detectron2.utils.logger import setup_logger
from tqdm import tqdm

from focal_eiou_d2.data import add_coco_dataset_argument, dataset_classes
from focal_eiou_d2.engine import load_run_config
from focal_eiou_d2.evaluation import build_predictor
from focal_eiou_d2.visualization import (
    add_opts_argument,
    check_opts,
    class_metadata,
    draw_detections,
    draw_ground_truth,
    ensure_writable_folder,
    model_name,
    model_names,
    side_by_side,
)

logger = logging.getLogger("focal_eiou_d2.demo")

IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
# Errors of the inputs, the output, the configs (KeyError: an unknown key), the datasets and the
# weights (DatasetError and WeightsMismatchError are ValueErrors): reported in one line.
USAGE_ERRORS = (FileNotFoundError, KeyError, ValueError)
# How many paths a message lists before "...".
LISTED_PATHS = 3


@dataclass
class DemoResult:
    """What a run did.

    Attributes:
        written (list[str]): the images written.
        failed (list[tuple[str, str]]): ``(input, reason)`` of every input that was skipped.
    """

    written: list = field(default_factory=list)
    failed: list = field(default_factory=list)


@dataclass
class DemoModel:
    """A model to draw.

    Attributes:
        config (YamlRunConfig or LazyRunConfig): its config.
        predictor (Predictor): the model with its trained weights (see ``build_predictor``).
        metadata (Metadata): names its classes (see ``class_metadata``).
    """

    config: object
    predictor: object
    metadata: object


@dataclass
class DemoJob:
    """What to draw.

    Attributes:
        items (list[tuple]): ``(input, output, annotations)`` per image; annotations are the
            ground truth to draw, or None.
        models (list[DemoModel]): A, and B in comparison mode.
        titles (tuple[str, str] or None): the titles of A and B (None with one model).
    """

    items: list
    models: list
    titles: tuple = None


class ImageError(Exception):
    """An input image that cannot be read or written; the message is the reason."""


def parse_args(argv=None):
    """Parses the command line and checks its values (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", required=True, metavar="FILE", help="config of model A")
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
        help="detections with a lower score are not drawn, in [0, 1] (default: %(default)s)",
    )
    add_opts_argument(
        parser,
        "MODEL.WEIGHTS A.pth (model A's weights; B's are --compare-weights) MODEL.DEVICE cpu",
    )
    parser.add_argument(
        "--compare-config", metavar="FILE", help="config of model B (default: --config-file)"
    )
    parser.add_argument(
        "--compare-weights", metavar="FILE", help="trained weights of model B: draws A and B"
    )
    parser.add_argument("--names", nargs=2, metavar=("A", "B"), help="titles of the two halves")
    parser.add_argument(
        "--dataset",
        help="registered dataset of the images, e.g. shapes_val or a --coco-dataset NAME "
        "(default: DATASETS.TEST[0] of A)",
    )
    parser.add_argument(
        "--show-gt",
        action="store_true",
        help="draw the ground truth of the images of --dataset (found by their path)",
    )
    add_coco_dataset_argument(parser)
    args = parser.parse_args(argv)
    if not 0 <= args.confidence_threshold <= 1:
        parser.error(f"--confidence-threshold must be in [0, 1], got {args.confidence_threshold}")
    check_opts(parser, args.opts, [args.config_file, args.compare_config])
    if args.show_gt and not args.dataset:
        parser.error("--show-gt needs --dataset, the registered dataset the images belong to")
    if (args.compare_config or args.names) and not args.compare_weights:
        option = "--compare-config" if args.compare_config else "--names"
        parser.error(f"{option} needs --compare-weights, the weights of model B")
    return args


def build_configs(args):
    """The configs of A and, in comparison mode, B (B's config defaults to A's).

    Registers the ``--coco-dataset`` datasets. Each head gets the class count of the run that
    trained its weights; the score threshold of both heads is ``--confidence-threshold``.

    Returns:
        list[YamlRunConfig or LazyRunConfig]: one or two configs.

    Raises:
        ValueError: a model has no weights, or a config cannot be built.
        FileNotFoundError: a config or weights file does not exist.
    """
    sources = [(args.config_file, None, "A")]
    if args.compare_weights:
        sources.append((args.compare_config or args.config_file, args.compare_weights, "B"))
    configs = []
    for config_file, weights, side in sources:
        options = dict(weights=weights, cpu_fallback=True, coco_datasets=args.coco_datasets)
        config = load_run_config(config_file, args.opts, classes_from="run", **options)
        threshold = config.score_threshold_overrides(args.confidence_threshold)
        config = load_run_config(
            config_file, [*args.opts, *threshold], classes_from="run", **options
        )
        check_weights(config.weights, side)
        configs.append(config)
    return configs


def check_weights(weights, side):
    """Raises if model ``side`` has no weights file (URLs are left to Detectron2)."""
    option = (
        "--opts MODEL.WEIGHTS FILE (train.init_checkpoint=FILE for a LazyConfig)"
        if side == "A"
        else "--compare-weights FILE"
    )
    if not weights:
        raise ValueError(f"model {side} has no trained weights: give them with {option}")
    if "://" not in weights and not os.path.isfile(weights):
        raise FileNotFoundError(f"weights of model {side} not found: {weights}")


def dataset_of(args, config):
    """The registered dataset of the pictures: ``--dataset``, else A's first test dataset.

    Raises:
        DatasetError: ``--dataset`` is not registered.
    """
    if args.dataset is None:
        return config.test_datasets[0] if config.test_datasets else None
    dataset_classes(args.dataset)
    return args.dataset


def expand_inputs(patterns):
    """Expands files, folders (their images, sorted) and glob patterns into image paths.

    Returns:
        tuple[list[str], list[str]]: the paths without duplicates, and one message for each
        pattern that gives no file.
    """
    paths, problems = [], []
    for pattern in patterns:
        if os.path.isdir(pattern):
            names = sorted(os.listdir(pattern))
            matches = [
                os.path.join(pattern, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS)
            ]
            problem = f"no images in {pattern} (extensions: {', '.join(IMAGE_EXTENSIONS)})"
        elif glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            problem = f"no file matches {pattern}"
        else:
            matches, problem = [pattern], f"no such file: {pattern}"
        matches = [path for path in matches if os.path.isfile(path)]
        if not matches:
            problems.append(problem)
        paths.extend(path for path in matches if path not in paths)
    return paths, problems


def output_paths(inputs, output):
    """Returns the output file of each input, ``output`` itself or files in the folder ``output``,
    and makes sure they can be written (the folder is created).

    ``output`` is a file when it has an image extension and is not a folder (there must be one
    input then); in a folder, base names that repeat get a suffix ``_1``, ``_2``, ...

    Raises:
        ValueError: ``output`` is a file name and there are several inputs, or its folder cannot
            be created or written.
    """
    if output.lower().endswith(IMAGE_EXTENSIONS) and not os.path.isdir(output):
        if len(inputs) > 1:
            raise ValueError(
                f"--output {output} is an image file name, but {len(inputs)} images are given: "
                "give a folder"
            )
        ensure_writable_folder(os.path.dirname(output) or ".", f"--output {output}")
        return [output]
    ensure_writable_folder(output, f"--output {output}")
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


def ground_truth_index(dataset_name):
    """Maps the real paths of a dataset's images to their annotations."""
    return {
        os.path.realpath(record["file_name"]): record["annotations"]
        for record in DatasetCatalog.get(dataset_name)
    }


def ground_truth_of(inputs, dataset_name):
    """The annotations of each input, found in the dataset by the image's real path.

    Images are never matched by file name (every split of a dataset may name its files
    ``000001.png``, ...). Inputs that are not images of the dataset get None, and one warning
    lists them.

    Returns:
        list[list[dict] or None]: one entry per input.
    """
    index = ground_truth_index(dataset_name)
    found = [index.get(os.path.realpath(path)) for path in inputs]
    absent = [path for path, annotations in zip(inputs, found, strict=True) if annotations is None]
    if absent:
        shown = ", ".join(absent[:LISTED_PATHS]) + (", ..." if len(absent) > LISTED_PATHS else "")
        logger.warning(
            "%d of %d images are not images of dataset %r (they are found by their path): %s; "
            "they are drawn without ground truth",
            len(absent),
            len(inputs),
            dataset_name,
            shown,
        )
    return found


def read_bgr(path):
    """Reads an image as (H, W, 3) uint8 BGR, or raises ImageError saying why it cannot."""
    if os.path.getsize(path) == 0:
        raise ImageError("empty file")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError("not a readable image (corrupt, or a format OpenCV cannot decode)")
    return image


def render(path, models, titles, threshold, annotations):
    """Returns the picture of one input image: one rendering, or two side by side."""
    image_bgr = read_bgr(path)
    panels = []
    for model in models:
        instances = model.predictor(image_bgr)["instances"]
        panel = draw_detections(image_bgr[:, :, ::-1], instances, model.metadata, threshold)
        panels.append(panel if annotations is None else draw_ground_truth(panel, annotations))
    return panels[0] if len(panels) == 1 else side_by_side(panels[0], panels[1], titles)


def prepare(args):
    """Checks the inputs, the output, the configs and the dataset, then builds the models.

    Returns:
        DemoJob: what to draw.

    Raises:
        ValueError: inputs that give no image, an output that cannot be written (both checked
            before any config is built), a config or dataset error, or weights that do not fit
            their model (``WeightsMismatchError``).
        FileNotFoundError: a config or weights file does not exist.
    """
    inputs, problems = expand_inputs(args.input)
    if problems:
        raise ValueError("; ".join(problems))
    outputs = output_paths(inputs, args.output)
    configs = build_configs(args)
    dataset = dataset_of(args, configs[0])
    truths = ground_truth_of(inputs, dataset) if args.show_gt else [None] * len(inputs)
    models = [
        DemoModel(config, build_predictor(config, config.weights), class_metadata(config, dataset))
        for config in configs
    ]
    titles = None
    if len(models) == 2:
        titles = tuple(args.names or model_names(*(model_name(m.config) for m in models)))
    return DemoJob(list(zip(inputs, outputs, truths, strict=True)), models, titles)


def draw(job, threshold):
    """Draws every image of ``job`` and writes it; an image that fails is reported and skipped.

    Returns:
        DemoResult: what was written and what failed.
    """
    result = DemoResult()
    for path, out_path, annotations in tqdm(job.items, unit="img", disable=len(job.items) < 2):
        try:
            picture = render(path, job.models, job.titles, threshold, annotations)
            if not cv2.imwrite(out_path, picture[:, :, ::-1]):
                raise ImageError(f"cannot write {out_path}")
        except (ImageError, cv2.error) as error:
            logger.error("skipped %s: %s", path, error)
            result.failed.append((path, str(error)))
            continue
        result.written.append(out_path)
    return result


def run_demo(args):
    """Runs the demo of parsed ``args``: ``prepare``, then ``draw``."""
    return draw(prepare(args), args.confidence_threshold)


def summary(result, output):
    """The last line of a run: counts, where the images went, and the failed inputs."""
    line = f"{len(result.written)} images written to {output}, {len(result.failed)} failed"
    if result.failed:
        line += ": " + ", ".join(f"{path} ({reason})" for path, reason in result.failed)
    return line


def main(argv=None):
    """Runs the demo; returns the exit status: 1 if any input failed, 0 otherwise.

    Raises:
        SystemExit: a usage error (the message says what is wrong), before any image is drawn.
    """
    args = parse_args(argv)
    setup_logger(name="fvcore")
    setup_logger()
    setup_logger(name="focal_eiou_d2")
    try:
        job = prepare(args)
    except USAGE_ERRORS as error:
        sys.exit(f"demo: error: {error}")
    result = draw(job, args.confidence_threshold)
    logger.info(summary(result, args.output))
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
