"""Compares two detectors on a registered dataset: AP per IoU threshold, per object size, and
localization errors.

Each model is given by a config and weights (inference runs on ``--dataset``) or by a COCO results
file it already wrote (e.g. ``OUTPUT_DIR/inference/<dataset>/coco_instances_results.json``)::

    python -m focal_eiou_d2.tools.compare --dataset shapes_val --output report/ \
        --config-file A.yaml --opts MODEL.WEIGHTS A.pth \
        --compare-config B.yaml --compare-weights B.pth

    python -m focal_eiou_d2.tools.compare --dataset shapes_val --output report/ \
        --predictions A/coco_instances_results.json \
        --compare-predictions B/coco_instances_results.json

The models are given as ``demo/demo.py`` takes them: A by ``--config-file`` with its weights as
``--opts MODEL.WEIGHTS FILE``, B by ``--compare-weights`` (and ``--compare-config`` when its config
is not A's). Writes ``report.md``, ``report.json`` and ``ap_vs_iou.png`` to ``--output``, and the
predictions of every model it ran to ``predictions_a.json`` / ``predictions_b.json`` there
(reusable with ``--predictions`` / ``--compare-predictions``). The metrics and their definitions
are those of ``focal_eiou_d2/evaluation/box_metrics.py``.

``--opts KEY VALUE ...`` overrides the config of both models, as in Detectron2's demo (its
``MODEL.WEIGHTS`` is A's). A model takes its class count and class names from the run that
trained its weights (the ``run.json`` beside them); they must be the classes of ``--dataset``.
Bad arguments, an output folder that cannot be written or whose files would replace an input,
unusable predictions files and weights that do not fit their model are errors (exit status 1)
before any inference.
"""

import argparse
import json
import logging
import os

from focal_eiou_d2 import ignore_torch_jit_deprecation

ignore_torch_jit_deprecation()  # raised by Detectron2 0.6's first import under recent PyTorch

import numpy as np  # noqa: E402
from detectron2.utils.logger import setup_logger  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from focal_eiou_d2.data import (  # noqa: E402
    add_coco_dataset_argument,
    dataset_classes,
    register_coco_datasets,
)
from focal_eiou_d2.engine import load_run_config, load_trained_weights  # noqa: E402
from focal_eiou_d2.evaluation import (  # noqa: E402
    AREAS,
    DEFAULT_SCORE_THRESHOLD,
    GOOD_IOU,
    IOU_THRESHOLDS,
    MATCH_IOU,
    evaluate_boxes,
    load_ground_truth,
    localization_counts,
    run_inference,
)
from focal_eiou_d2.tools.cli import (  # noqa: E402
    add_hidden_alias,
    add_model_arguments,
    add_opts_arguments,
    add_threshold_argument,
    check_threshold,
    check_weights,
    parsed_opts,
    refuse_replacing_inputs,
    run_command,
)
from focal_eiou_d2.tools.train_command import check_model_classes  # noqa: E402
from focal_eiou_d2.visualization import (  # noqa: E402
    ensure_writable_folder,
    model_name,
    model_names,
)

logger = logging.getLogger(__name__)

SIDES = ("a", "b")
# Keys of a COCO result (one detection).
RESULT_KEYS = ("image_id", "category_id", "bbox", "score")
# What write_report writes to the output folder.
REPORT_FILES = ("report.md", "report.json", "ap_vs_iou.png")


def delta(a, b):
    """``b - a``, or None when either is None."""
    return None if a is None or b is None else b - a


def compare_detections(
    coco_gt, detections_a, detections_b, names=("A", "B"), score_threshold=DEFAULT_SCORE_THRESHOLD
):
    """The comparison report of two models' detections on one dataset.

    Args:
        coco_gt (COCO): the ground truth.
        detections_a (list[dict]): COCO results of model A (the baseline).
        detections_b (list[dict]): COCO results of model B.
        names (tuple[str, str]): names of A and B.
        score_threshold (float): score threshold of the localization counts.

    Returns:
        dict: ``names``, ``iou_thresholds``, ``ap_per_iou`` / ``ap`` / ``ap_per_size`` each with
        entries ``a``, ``b`` and ``delta`` (B - A, AP points), and ``localization`` with the
        thresholds and the counts of ``localization_counts`` for ``a`` and ``b``.
    """
    a, b = evaluate_boxes(coco_gt, detections_a), evaluate_boxes(coco_gt, detections_b)
    return {
        "names": list(names),
        "num_images": len(coco_gt.getImgIds()),
        "num_ground_truth": len(coco_gt.getAnnIds(iscrowd=False)),
        "iou_thresholds": list(IOU_THRESHOLDS),
        "ap_per_iou": {
            "a": a["ap_per_iou"],
            "b": b["ap_per_iou"],
            "delta": [delta(x, y) for x, y in zip(a["ap_per_iou"], b["ap_per_iou"], strict=True)],
        },
        "ap": {"a": a["ap"], "b": b["ap"], "delta": delta(a["ap"], b["ap"])},
        "ap_per_size": {
            area: {
                "a": a["ap_per_size"][area],
                "b": b["ap_per_size"][area],
                "delta": delta(a["ap_per_size"][area], b["ap_per_size"][area]),
            }
            for area in AREAS
        },
        "localization": {
            "score_threshold": score_threshold,
            "match_iou": MATCH_IOU,
            "good_iou": GOOD_IOU,
            "a": localization_counts(coco_gt, detections_a, score_threshold),
            "b": localization_counts(coco_gt, detections_b, score_threshold),
        },
    }


def fmt(value, signed=False):
    """Formats an AP value for the tables: one decimal, "-" for None."""
    if value is None:
        return "-"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def markdown_table(header, rows):
    """A markdown table from a header row and rows of strings."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def ap_rows(report):
    """Rows of the AP table: one per IoU threshold, then the mean and the three sizes."""
    per_iou = report["ap_per_iou"]
    rows = [
        (f"AP@{t:.2f}", fmt(a), fmt(b), fmt(d, signed=True))
        for t, a, b, d in zip(
            report["iou_thresholds"], per_iou["a"], per_iou["b"], per_iou["delta"], strict=True
        )
    ]
    named = [("AP (0.50:0.95)", report["ap"])]
    named += [(f"AP {area}", report["ap_per_size"][area]) for area in AREAS]
    rows += [(label, fmt(v["a"]), fmt(v["b"]), fmt(v["delta"], signed=True)) for label, v in named]
    return rows


def localization_rows(report):
    """Rows of the localization table: one per count, A, B and B - A."""
    a, b = report["localization"]["a"], report["localization"]["b"]
    rows = []
    for key in ("detections", "matched", "well_localized", "localization_errors", "unmatched"):
        rows.append((key.replace("_", " "), str(a[key]), str(b[key]), f"{b[key] - a[key]:+d}"))
    rows.append(("missed ground truth", str(a["missed"]), str(b["missed"]), ""))
    mean_a, mean_b = a["mean_iou"], b["mean_iou"]
    rows.append(
        (
            "mean IoU of matched",
            "-" if mean_a is None else f"{mean_a:.3f}",
            "-" if mean_b is None else f"{mean_b:.3f}",
            "" if delta(mean_a, mean_b) is None else f"{mean_b - mean_a:+.3f}",
        )
    )
    return rows


def format_markdown(report, title="Detector comparison"):
    """The report as markdown: the AP table and the localization table, with definitions."""
    name_a, name_b = report["names"]
    header = ("", f"A: {name_a}", f"B: {name_b}", "B - A")
    loc = report["localization"]
    return "\n\n".join(
        [
            f"# {title}",
            f"{report['num_images']} images, {report['num_ground_truth']} ground-truth boxes. "
            "COCO box AP in percent (area all, 100 detections per image).",
            markdown_table(header, ap_rows(report)),
            "## Localization",
            f"Detections with score >= {loc['score_threshold']}, matched to the ground truth of "
            f"their class as COCO matches at IoU {loc['match_iou']} (descending score, each "
            f"ground-truth box used once). Localization error: matched with IoU < "
            f"{loc['good_iou']}; well localized: IoU >= {loc['good_iou']}.",
            markdown_table(header, localization_rows(report)),
        ]
    )


def plot_ap_vs_iou(report, path):
    """Writes the AP-vs-IoU-threshold curves of both models to ``path`` (a PNG)."""
    figure = Figure(figsize=(5.5, 4), dpi=120)
    axes = figure.subplots()
    for key, name, marker in (("a", report["names"][0], "o"), ("b", report["names"][1], "s")):
        ap = [np.nan if v is None else v for v in report["ap_per_iou"][key]]
        label = f"{name} (AP {fmt(report['ap'][key])})"
        axes.plot(report["iou_thresholds"], ap, marker=marker, label=label)
    axes.set_xlabel("IoU threshold")
    axes.set_ylabel("AP (%)")
    axes.set_xticks(report["iou_thresholds"][::2])
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path)


def write_report(report, output_dir):
    """Writes ``report.md``, ``report.json`` and ``ap_vs_iou.png`` to ``output_dir``.

    Returns:
        list[str]: the three paths.
    """
    os.makedirs(output_dir, exist_ok=True)
    paths = [os.path.join(output_dir, name) for name in REPORT_FILES]
    with open(paths[0], "w") as f:
        f.write(format_markdown(report) + "\n")
    with open(paths[1], "w") as f:
        json.dump(report, f, indent=2)
    plot_ap_vs_iou(report, paths[2])
    return paths


def read_predictions(path, coco_gt, dataset_name):
    """Reads a COCO results file and checks that it describes images of the dataset.

    Args:
        path (str): a JSON list of detections, each with ``image_id``, ``category_id``, ``bbox``
            (XYWH) and ``score``.
        coco_gt (COCO): the dataset's ground truth.
        dataset_name (str): its name, for the messages.

    Returns:
        list[dict]: the detections.

    Raises:
        ValueError: the file cannot be read, is not such a list, or names images or categories
            that the dataset does not have.
    """
    try:
        with open(path) as f:
            detections = json.load(f)
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise ValueError(f"{path} is not JSON: {error}") from None
    if not isinstance(detections, list) or not all(
        isinstance(d, dict) and all(key in d for key in RESULT_KEYS) for d in detections
    ):
        raise ValueError(
            f"{path} is not a COCO results file: a JSON list of detections, each with "
            f"{', '.join(RESULT_KEYS)} (as Detectron2 writes coco_instances_results.json)"
        )
    for key, known, what in (
        ("image_id", set(coco_gt.getImgIds()), "images"),
        ("category_id", set(coco_gt.getCatIds()), "categories"),
    ):
        unknown = sorted({d[key] for d in detections} - known, key=str)
        if unknown:
            raise ValueError(
                f"{path} has detections of {len(unknown)} {what} that dataset {dataset_name!r} "
                f"does not have ({key} {', '.join(map(str, unknown[:3]))}"
                f"{', ...' if len(unknown) > 3 else ''}): were they made on another dataset?"
            )
    return detections


def model_source(args, side):
    """What gives model ``side`` ("a" or "b"): its config file, weights and predictions file.

    Returns:
        tuple[str or None, str or None, str or None]: the config (B's defaults to A's when B has
        weights), the weights (None for A: those of its config and ``--opts``), the predictions.
    """
    if side == "a":
        return args.config_file, args.weights, args.predictions
    default = args.config_file if args.compare_weights else None
    return args.compare_config or default, args.compare_weights, args.compare_predictions


def model_config(args, side):
    """The config of model ``side`` ("a" or "b"), or None if it is given by predictions only.

    Its head has the class count of the run that trained its weights, whose classes must be
    those of ``--dataset``.

    Raises:
        ValueError: the config cannot be built, the model has no weights, or its classes are not
            the dataset's.
        FileNotFoundError: the config or the weights do not exist.
    """
    config_file, weights, predictions = model_source(args, side)
    if config_file is None:
        return None
    config = load_run_config(
        config_file,
        args.opts,
        weights=weights,
        cpu_fallback=True,
        coco_datasets=args.coco_datasets,
        classes_from="run",
    )
    if predictions is None:
        check_weights(config.weights, side.upper())
        model = f"model {side.upper()} ({config.weights})"
        check_model_classes(config.weights, [args.dataset], config.num_classes, model)
    return config


def run_model(args, side, config):
    """The detections of model ``side`` on the dataset, saved as ``predictions_<side>.json`` in
    ``--output`` (reusable with ``--predictions`` / ``--compare-predictions``)."""
    detections = run_inference(config, args.dataset)
    with open(os.path.join(args.output, f"predictions_{side}.json"), "w") as f:
        json.dump(detections, f)
    return detections


def parse_args(argv=None):
    """Parses the command line and checks its values (see ``--help``)."""
    parser = argparse.ArgumentParser(
        description="Compare two detectors: AP per IoU threshold, per size, localization errors."
    )
    parser.add_argument(
        "--dataset",
        required=True,
        help="registered dataset, e.g. shapes_val or a --coco-dataset NAME",
    )
    parser.add_argument("--output", required=True, help="folder of the report")
    add_model_arguments(parser, config_required=False)
    parser.add_argument(
        "--predictions", metavar="FILE", help="COCO results json of model A instead of running it"
    )
    add_hidden_alias(parser, "--predictions-a", "predictions")
    parser.add_argument(
        "--compare-predictions",
        metavar="FILE",
        help="COCO results json of model B instead of running it",
    )
    add_hidden_alias(parser, "--predictions-b", "compare_predictions")
    add_threshold_argument(
        parser, DEFAULT_SCORE_THRESHOLD, "score threshold of the localization counts"
    )
    add_opts_arguments(
        parser,
        "MODEL.WEIGHTS A.pth (model A's weights; B's are --compare-weights) MODEL.DEVICE cpu",
    )
    add_coco_dataset_argument(parser)
    args = parser.parse_args(argv)
    if args.weights and args.predictions:
        parser.error("give model A's weights or --predictions, not both")
    if not (args.config_file or args.predictions):
        parser.error(
            "model A: give --config-file (weights: --opts MODEL.WEIGHTS FILE) or --predictions"
        )
    if args.compare_weights and args.compare_predictions:
        parser.error("give --compare-weights or --compare-predictions, not both")
    if args.compare_weights and not (args.compare_config or args.config_file):
        parser.error("--compare-weights needs --compare-config (or --config-file), its config")
    if not (args.compare_weights or args.compare_predictions):
        parser.error(
            "model B: give --compare-weights (with --compare-config when its config is not A's) "
            "or --compare-predictions"
        )
    check_threshold(parser, args)
    args.opts = parsed_opts(parser, args, [args.config_file, args.compare_config])
    return args


def compare_models(args):
    """Checks everything, then runs or reads both models and writes the report.

    Returns:
        dict: the report (see ``compare_detections``).

    Raises:
        ValueError, FileNotFoundError, KeyError: see ``focal_eiou_d2.tools.cli.user_errors``;
            all raised before any inference (weights that do not fit their model:
            ``WeightsMismatchError``).
    """
    sources = {side: model_source(args, side) for side in SIDES}
    written = [os.path.join(args.output, name) for name in REPORT_FILES]
    written += [
        os.path.join(args.output, f"predictions_{side}.json")
        for side, (_, _, predictions) in sources.items()
        if predictions is None
    ]
    read = [path for source in sources.values() for path in source]
    refuse_replacing_inputs(written, read, f"--output {args.output}")
    ensure_writable_folder(args.output, f"--output {args.output}")
    register_coco_datasets(args.coco_datasets)
    dataset_classes(args.dataset)  # a DatasetError if it is unknown or has no classes
    coco_gt = load_ground_truth(args.dataset)
    configs, given = {}, {}
    for side, (_, _, predictions) in sources.items():
        configs[side] = model_config(args, side)
        given[side] = read_predictions(predictions, coco_gt, args.dataset) if predictions else None
    to_run = [side for side in SIDES if given[side] is None]
    for side in to_run[1:]:  # the first is checked when it runs, before its inference
        load_trained_weights(configs[side].build_model(), configs[side].weights)
    detections = [
        run_model(args, side, configs[side]) if given[side] is None else given[side]
        for side in SIDES
    ]
    names = model_names(
        *(
            name or (model_name(configs[side]) if configs[side] else f"model {side.upper()}")
            for side, name in zip(SIDES, args.names or (None, None), strict=True)
        )
    )
    report = compare_detections(coco_gt, *detections, names, args.confidence_threshold)
    for path in write_report(report, args.output):
        logger.info("wrote %s", path)
    return report


def compare(argv):
    """The comparison without its error boundary: writes the report and prints it.

    Returns:
        dict: the report.
    """
    args = parse_args(argv)
    setup_logger(name="fvcore")
    setup_logger()
    setup_logger(name="focal_eiou_d2")
    report = compare_models(args)
    print(format_markdown(report))
    return report


def main(argv=None):
    """Writes the comparison report and prints it; returns the report dict.

    Raises:
        SystemExit: a usage error (one line that says what is wrong).
    """
    return run_command("compare", compare, argv)


if __name__ == "__main__":
    main()
