"""Train and evaluate one detector on the embedded shapes dataset: the project's main job.

    python -m focal_eiou_d2.tools.quickstart          # Focal-EIoU RetinaNet on the CPU
    python -m focal_eiou_d2.tools.quickstart --config-file CONFIG [KEY VALUE ...]

Generates the dataset if needed, trains the model of ``--config-file``, evaluates it on its test
dataset with ``COCOEvaluator``, prints the AP table, draws a few test images (ground truth beside
the detections) and saves everything under the config's OUTPUT_DIR.

The output folder belongs to this config: an interrupted run resumes exactly where it stopped; a
finished run is not repeated (its results are printed again, if its final weights are intact);
another config's run there is never overwritten (``--force`` deletes it first).
"""

import argparse
import hashlib
import json
import logging
import os
import sys

import cv2
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.utils.env import seed_all_rng
from detectron2.utils.logger import setup_logger

from focal_eiou_d2.engine import (
    FocalEIoUTrainer,
    OutputDirError,
    build_config,
    claim_output_dir,
    config_digest,
)
from focal_eiou_d2.evaluation import (
    IOU_THRESHOLDS,
    best_f1_threshold,
    build_predictor,
    evaluate_boxes,
    load_ground_truth,
)
from focal_eiou_d2.config import box_loss_type
from focal_eiou_d2.visualization.draw import draw_detections, draw_ground_truth, side_by_side

DEFAULT_CONFIG = "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"
RESULTS_FILE = "quickstart_results.json"
FINAL_WEIGHTS = "model_final.pth"
AP_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
logger = logging.getLogger("focal_eiou_d2.quickstart")


def file_digest(path):
    """sha256 of a file, hexadecimal."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_results(cfg):
    """The saved results of the finished run of ``cfg`` in OUTPUT_DIR, or None.

    They count only if the final weights they were computed from are still intact: a damaged
    ``model_final.pth`` is renamed to ``model_final.pth.corrupt`` (with a warning), so that the
    run resumes from its last intact checkpoint and writes it again.
    """
    path = os.path.join(cfg.OUTPUT_DIR, RESULTS_FILE)
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    if saved.get("config_digest") != config_digest(cfg):
        return None
    final = os.path.join(cfg.OUTPUT_DIR, FINAL_WEIGHTS)
    if os.path.isfile(final) and file_digest(final) == saved.get("model_final_sha256"):
        return saved
    logger.warning(
        "%s is missing or not the file the saved results were computed from (damaged?): "
        "resuming the run from its last intact checkpoint",
        final,
    )
    if os.path.isfile(final):
        os.replace(final, f"{final}.corrupt")
    os.remove(path)
    return None


def train_and_evaluate(cfg, resume):
    """Train (resuming OUTPUT_DIR's checkpoints if ``resume``) and evaluate on DATASETS.TEST.

    Returns:
        dict: the ``bbox`` metrics of ``COCOEvaluator`` (AP, AP50, ..., AP-<class>).
    """
    for name in (*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST):
        DatasetCatalog.get(name)  # generates the embedded dataset on first use, with progress
    trainer = build_trainer(cfg)
    trainer.resume_or_load(resume=resume)
    results = trainer.train()
    return results["bbox"]


def build_trainer(cfg):
    """The trainer of ``cfg``, built after seeding the random generators with ``cfg.SEED``.

    Seeding first makes the initial weights depend on SEED only, as ``train_net.py`` does through
    Detectron2's ``default_setup`` (a negative SEED draws a random one); the data order and the
    augmentation depend on SEED only anyway (see ``focal_eiou_d2.data.train_loader``).
    """
    seed_all_rng(None if cfg.SEED < 0 else cfg.SEED)
    return FocalEIoUTrainer(cfg)


def detections_file(cfg):
    """Where the evaluation wrote the detections on the first test dataset."""
    dataset = cfg.DATASETS.TEST[0]
    return os.path.join(cfg.OUTPUT_DIR, "inference", dataset, "coco_instances_results.json")


def evaluation_summary(cfg):
    """AP per IoU threshold and the drawing threshold, from the detections the evaluation saved.

    Returns:
        dict: ``ap_per_iou`` (AP in percent at IoU 0.50, 0.55, ..., 0.95), ``iou_thresholds``,
        ``draw_threshold`` (the score threshold of highest F1 at IoU 0.5) and ``draw_f1``.
    """
    with open(detections_file(cfg)) as f:
        detections = json.load(f)
    coco_gt = load_ground_truth(cfg.DATASETS.TEST[0])
    threshold, f1 = best_f1_threshold(coco_gt, detections)
    return {
        "ap_per_iou": evaluate_boxes(coco_gt, detections)["ap_per_iou"],
        "iou_thresholds": list(IOU_THRESHOLDS),
        "draw_threshold": threshold,
        "draw_f1": f1,
    }


def visualize(cfg, count, threshold):
    """Draw the first ``count`` test images: ground truth beside the detections.

    Returns:
        list[str]: the written files, in OUTPUT_DIR/visualizations.
    """
    dataset = cfg.DATASETS.TEST[0]
    metadata = MetadataCatalog.get(dataset)
    predictor = build_predictor(cfg, os.path.join(cfg.OUTPUT_DIR, FINAL_WEIGHTS))
    folder = os.path.join(cfg.OUTPUT_DIR, "visualizations")
    os.makedirs(folder, exist_ok=True)
    written = []
    for record in DatasetCatalog.get(dataset)[:count]:
        image = cv2.imread(record["file_name"])
        rgb = image[:, :, ::-1]
        truth = draw_ground_truth(rgb, record["annotations"])
        found = draw_detections(rgb, predictor(image)["instances"], metadata, threshold)
        titles = ("ground truth", f"detections, score >= {threshold:.2f}")
        path = os.path.join(folder, os.path.basename(record["file_name"]))
        cv2.imwrite(path, side_by_side(truth, found, titles)[:, :, ::-1])
        written.append(path)
    return written


def format_table(name, metrics):
    """A markdown table of the COCO box metrics, per-class APs included."""
    classes = sorted(k for k in metrics if k.startswith("AP-"))
    header = "| model | " + " | ".join(AP_KEYS + tuple(classes)) + " |"
    rule = "|---" * (1 + len(AP_KEYS) + len(classes)) + "|"
    values = " | ".join(f"{metrics[k]:.1f}" for k in AP_KEYS + tuple(classes))
    return "\n".join([header, rule, f"| {name} | {values} |"])


def run(cfg, force=False, num_visualizations=4, config_file=None):
    """Claim OUTPUT_DIR, train, evaluate, print and visualize; reuse a finished identical run.

    Args:
        cfg (CfgNode): the frozen config.
        force (bool): delete the run in OUTPUT_DIR first (this config's or another's).
        num_visualizations (int): test images to draw.
        config_file (str or None): recorded with the run.

    Returns:
        dict: what is saved to OUTPUT_DIR/quickstart_results.json.

    Raises:
        OutputDirError: OUTPUT_DIR is in use, or holds another config's run (without ``force``).
    """
    classes = MetadataCatalog.get(cfg.DATASETS.TRAIN[0]).get("thing_classes", None)
    same_config = claim_output_dir(cfg, force=force, config_file=config_file, classes=classes)
    saved = cached_results(cfg) if same_config else None
    if saved is None:
        with open(os.path.join(cfg.OUTPUT_DIR, "config.yaml"), "w") as f:
            f.write(cfg.dump())
        metrics = train_and_evaluate(cfg, resume=same_config)
        saved = {
            "config_digest": config_digest(cfg),
            "bbox": metrics,
            "model_final_sha256": file_digest(os.path.join(cfg.OUTPUT_DIR, FINAL_WEIGHTS)),
            **evaluation_summary(cfg),
        }
        partial = os.path.join(cfg.OUTPUT_DIR, RESULTS_FILE + ".partial")
        with open(partial, "w") as f:
            json.dump(saved, f, indent=2, sort_keys=True)
        os.replace(partial, os.path.join(cfg.OUTPUT_DIR, RESULTS_FILE))
    else:
        logger.info(f"{cfg.OUTPUT_DIR} holds the finished run of this config; --force retrains")
    print(format_table(f"{cfg.MODEL.META_ARCHITECTURE} ({box_loss_type(cfg)})", saved["bbox"]))
    if num_visualizations > 0:
        files = visualize(cfg, num_visualizations, saved["draw_threshold"])
        print(
            f"{len(files)} test images, ground truth beside the detections with score >= "
            f"{saved['draw_threshold']:.2f} (the threshold of highest F1), in "
            f"{os.path.dirname(files[0])}"
        )
    return saved


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", default=DEFAULT_CONFIG, help="a configs/quickstart file")
    parser.add_argument("--output-dir", help="overrides the config's OUTPUT_DIR")
    parser.add_argument(
        "--force", action="store_true", help="delete the run in the output folder and train afresh"
    )
    parser.add_argument(
        "--num-visualizations",
        type=int,
        default=4,
        help="test images to draw (0: none; default: %(default)s)",
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = parser.parse_args(argv)
    if args.num_visualizations < 0:
        parser.error(f"--num-visualizations must be >= 0, got {args.num_visualizations}")
    if len(args.opts) % 2:
        parser.error(f"config overrides must be KEY VALUE pairs, got: {' '.join(args.opts)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = build_config(args.config_file, args.opts, output_dir=args.output_dir)
        setup_logger(cfg.OUTPUT_DIR)
        setup_logger(cfg.OUTPUT_DIR, name="focal_eiou_d2")
        run(cfg, args.force, args.num_visualizations, args.config_file)
    except (OutputDirError, FileNotFoundError, KeyError, ValueError) as error:
        sys.exit(f"quickstart: error: {error}")


if __name__ == "__main__":
    main()
