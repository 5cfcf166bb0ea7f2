"""Compares two detectors on a registered dataset: AP per IoU threshold, per object size, and
localization errors.

Each model is given by a config and weights (inference runs on ``--dataset``) or by a COCO results
file it already wrote (e.g. ``OUTPUT_DIR/inference/coco_instances_results.json``)::

    python -m focal_eiou_d2.tools.compare --dataset shapes_val --output report/ \
        --config-a A.yaml --weights-a A.pth --config-b B.yaml --weights-b B.pth

    python -m focal_eiou_d2.tools.compare --dataset shapes_val --output report/ \
        --predictions-a A/coco_instances_results.json --predictions-b B/coco_instances_results.json

Writes ``report.md``, ``report.json`` and ``ap_vs_iou.png`` to ``--output``, and the predictions
of every model it ran to ``predictions_a.json`` / ``predictions_b.json`` there (reusable with
``--predictions-a`` / ``--predictions-b``).

Definitions (all boxes COCO XYWH, IoU as COCO computes it):

- AP at a threshold t: COCO's AP at IoU t, area "all", 100 detections per image, in percent;
  "AP" is their mean over t = 0.50, 0.55, ..., 0.95. AP small/medium/large: COCO's APs, APm,
  APl (mean over the ten thresholds, ground truth of area < 32^2, 32^2 to 96^2, > 96^2). AP,
  APs, APm and APl equal those Detectron2's COCOEvaluator reports for the same detections.
- Localization: the detections with score >= ``--score-threshold`` (default 0.5, the default
  threshold of ``demo/demo.py``, so the counts describe the boxes the demo draws) are matched to
  the ground truth as COCO matches at IoU 0.5: per image and class, in descending score order,
  each detection takes the still unmatched, non-crowd ground-truth box it overlaps most, if that
  IoU is >= 0.5. A matched detection is *well localized* if its IoU is >= 0.75 and a
  *localization error* if 0.5 <= IoU < 0.75. Unmatched detections (false positives at IoU 0.5)
  and missed ground-truth boxes are counted too, with the mean IoU of the matched pairs.
"""

import argparse
import contextlib
import io
import json
import logging
import os

import numpy as np
import pycocotools.mask as mask_util
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader
from detectron2.evaluation import DatasetEvaluator, inference_on_dataset
from detectron2.modeling import build_model
from detectron2.structures import BoxMode
from detectron2.utils.logger import setup_logger
from matplotlib.figure import Figure
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import focal_eiou_d2.data  # noqa: F401  (registers shapes_train and shapes_val)
from focal_eiou_d2.visualization import load_config, model_name, model_names

logger = logging.getLogger(__name__)

# COCOeval's IoU thresholds (np.linspace(0.5, 0.95, 10)), rounded for the report.
IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
AREAS = ("small", "medium", "large")
DEFAULT_SCORE_THRESHOLD = 0.5
MATCH_IOU = 0.5
GOOD_IOU = 0.75


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
    paths = [os.path.join(output_dir, n) for n in ("report.md", "report.json", "ap_vs_iou.png")]
    with open(paths[0], "w") as f:
        f.write(format_markdown(report) + "\n")
    with open(paths[1], "w") as f:
        json.dump(report, f, indent=2)
    plot_ap_vs_iou(report, paths[2])
    return paths


def model_detections(args, side):
    """The detections and the default name of model ``side`` ("a" or "b").

    Reads ``--predictions-<side>`` if given; else runs ``--config-<side>`` with
    ``--weights-<side>`` on the dataset and saves the detections as ``predictions_<side>.json``.
    """
    config, predictions = getattr(args, f"config_{side}"), getattr(args, f"predictions_{side}")
    cfg = load_config(config, args.opts, getattr(args, f"weights_{side}")) if config else None
    default_name = model_name(cfg) if cfg else f"model {side.upper()}"
    if predictions:
        with open(predictions) as f:
            return json.load(f), default_name
    detections = run_inference(cfg, args.dataset)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, f"predictions_{side}.json"), "w") as f:
        json.dump(detections, f)
    return detections, default_name


def parse_args(argv=None):
    """Parses the command line; see ``--help``."""
    parser = argparse.ArgumentParser(
        description="Compare two detectors: AP per IoU threshold, per size, localization errors."
    )
    parser.add_argument("--dataset", required=True, help="registered dataset, e.g. shapes_val")
    parser.add_argument("--output", required=True, help="folder of the report")
    for side in ("a", "b"):
        parser.add_argument(
            f"--config-{side}", metavar="FILE", help=f"config of model {side.upper()}"
        )
        parser.add_argument(f"--weights-{side}", metavar="FILE", help="its checkpoint")
        parser.add_argument(
            f"--predictions-{side}", metavar="FILE", help="COCO results json instead of a model"
        )
        parser.add_argument(f"--name-{side}", help="its name (default: from the config's loss)")
    parser.add_argument(
        "--score-threshold",
        type=float,
        default=DEFAULT_SCORE_THRESHOLD,
        help="score threshold of the localization counts (default: %(default)s)",
    )
    parser.add_argument("--opts", nargs="*", default=[], help="KEY VALUE overrides of both models")
    args = parser.parse_args(argv)
    for side in ("a", "b"):
        if not (getattr(args, f"config_{side}") or getattr(args, f"predictions_{side}")):
            parser.error(f"model {side}: give --config-{side} or --predictions-{side}")
    return args


def main(argv=None):
    """Writes the comparison report; returns the report dict."""
    args = parse_args(argv)
    setup_logger(name="fvcore")
    setup_logger()
    setup_logger(name="focal_eiou_d2")
    coco_gt = load_ground_truth(args.dataset)
    detections_a, default_a = model_detections(args, "a")
    detections_b, default_b = model_detections(args, "b")
    names = model_names(args.name_a or default_a, args.name_b or default_b)
    report = compare_detections(coco_gt, detections_a, detections_b, names, args.score_threshold)
    for path in write_report(report, args.output):
        logger.info("wrote %s", path)
    print(format_markdown(report))
    return report


if __name__ == "__main__":
    main()
