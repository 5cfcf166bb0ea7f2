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

Bad arguments, inputs that match no image, an output that cannot be written or that would replace
an input, and weights that do not fit the model stop the demo before any image is drawn. Images
that cannot be read as training reads them (empty, corrupt, truncated) are reported and skipped;
the exit status is 1 if any image failed.
"""

import argparse
import glob
import logging
import os
import sys
from dataclasses import dataclass, field

from focal_eiou_d2 import ignore_torch_jit_deprecation

ignore_torch_jit_deprecation()  # raised by Detectron2 0.6's first import under recent PyTorch

import cv2  # noqa: E402
from detectron2.data import DatasetCatalog  # noqa: E402
from detectron2.data.detection_utils import read_image  # noqa: E402
from detectron2.utils.logger import setup_logger  # noqa: E402
from PIL import UnidentifiedImageError  # noqa: E402
from tqdm import tqdm  # noqa: E402

from focal_eiou_d2.data import add_coco_dataset_argument, dataset_classes  # noqa: E402
from focal_eiou_d2.engine import load_run_config  # noqa: E402
from focal_eiou_d2.evaluation import build_predictor  # noqa: E402
from focal_eiou_d2.tools.cli import (  # noqa: E402
    add_model_arguments,
    add_opts_arguments,
    add_threshold_argument,
    check_threshold,
    check_weights,
    parsed_opts,
    refuse_replacing_inputs,
    run_command,
)
from focal_eiou_d2.visualization import (  # noqa: E402
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
    parser.add_argument(
        "--input", nargs="+", required=True, help="image files, folders or glob patterns"
    )
    parser.add_argument(
        "--output", required=True, help="output folder, or output file when there is one input"
    )
    add_threshold_argument(parser, 0.5, "detections with a lower score are not drawn")
    add_model_arguments(parser, config_required=True)
    add_opts_arguments(
        parser,
        "MODEL.WEIGHTS A.pth (model A's weights; B's are --compare-weights) MODEL.DEVICE cpu",
    )
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
    check_threshold(parser, args)
    args.opts = parsed_opts(parser, args, [args.config_file, args.compare_config])
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
    sources = [(args.config_file, args.weights, "A")]
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
    and makes sure they can be written (the folder is created) and replace no input.

    ``output`` is a file when it has an image extension and is not a folder (there must be one
    input then); in a folder, base names that repeat get a suffix ``_1``, ``_2``, ...

    Raises:
        ValueError: ``output`` is a file name and there are several inputs, an output file would
            replace an input (checked before anything is created), or the folder cannot be
            created or written.
    """
    option = f"--output {output}"
    if output.lower().endswith(IMAGE_EXTENSIONS) and not os.path.isdir(output):
        if len(inputs) > 1:
            raise ValueError(
                f"{option} is an image file name, but {len(inputs)} images are given: give a folder"
            )
        paths, folder = [output], os.path.dirname(output) or "."
    else:
        paths, folder, used = [], output, set()
        for path in inputs:
            stem, extension = os.path.splitext(os.path.basename(path))
            name, count = stem + extension, 0
            while name in used:
                count += 1
                name = f"{stem}_{count}{extension}"
            used.add(name)
            paths.append(os.path.join(output, name))
    refuse_replacing_inputs(paths, inputs, option)
    ensure_writable_folder(folder, option)
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
    """Reads an image as (H, W, 3) uint8 BGR as training reads it (Detectron2's ``read_image``:
    Pillow, EXIF orientation applied), or raises ImageError saying why it cannot.

    A truncated file is an error, as in training, even where a decoder could draw its first rows.
    """
    if os.path.getsize(path) == 0:
        raise ImageError("empty file")
    try:
        return read_image(path, format="BGR")
    except UnidentifiedImageError:
        raise ImageError("unreadable image: not an image, or a format Pillow cannot read") from None
    except OSError as error:  # e.g. "image file is truncated (284 bytes not processed)"
        raise ImageError(f"unreadable image: {error}") from None


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
        given = args.names or (None, None)
        titles = model_names(
            *(name or model_name(m.config) for name, m in zip(given, models, strict=True))
        )
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


def demo(argv):
    """The demo without its error boundary: checks everything, builds the models, then draws.

    Returns:
        int: the exit status: 1 if any input failed, 0 otherwise.
    """
    args = parse_args(argv)
    setup_logger(name="fvcore")
    setup_logger()
    setup_logger(name="focal_eiou_d2")
    result = run_demo(args)
    logger.info(summary(result, args.output))
    return 1 if result.failed else 0


def main(argv=None):
    """Runs the demo; returns the exit status: 1 if any input failed, 0 otherwise.

    Raises:
        SystemExit: a usage error (one line that says what is wrong), before any image is drawn.
    """
    return run_command("demo", demo, argv)


if __name__ == "__main__":
    sys.exit(main())
