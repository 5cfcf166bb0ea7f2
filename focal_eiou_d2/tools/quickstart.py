"""Train and evaluate one detector on the embedded shapes dataset: the project's main job.

    python -m focal_eiou_d2.tools.quickstart          # Focal-EIoU RetinaNet, about 15 min on 2 CPUs

Generates the dataset if needed, trains the model of ``--config-file`` (resuming from the last
checkpoint after an interruption), evaluates it on ``shapes_val`` with ``COCOEvaluator``, prints
the AP table, writes a few validation images with their detections, and saves everything under the
config's OUTPUT_DIR. A finished run with an unchanged config is not repeated: its results are
printed again (``--force`` retrains from scratch).
"""

import argparse
import hashlib
import json
import logging
import os

import cv2
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import DefaultPredictor
from detectron2.utils.env import seed_all_rng
from detectron2.utils.logger import setup_logger

from focal_eiou_d2 import add_focal_eiou_config
from focal_eiou_d2.engine import FocalEIoUTrainer
from focal_eiou_d2.tools.compare import IOU_THRESHOLDS, evaluate_boxes, load_ground_truth
from focal_eiou_d2.visualization import loss_type
from focal_eiou_d2.visualization.draw import draw_detections

DEFAULT_CONFIG = "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"
RESULTS_FILE = "quickstart_results.json"
# Digest of the config the checkpoints in OUTPUT_DIR were trained with.
TRAINING_DIGEST_FILE = "training_config_digest.txt"
AP_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
logger = logging.getLogger("focal_eiou_d2.quickstart")


def build_cfg(config_file, opts=(), output_dir=None):
    """The frozen config of ``config_file`` with ``opts`` (KEY VALUE ...) merged in."""
    import focal_eiou_d2.data  # noqa: F401  registers shapes_train and shapes_val

    cfg = get_cfg()
    add_focal_eiou_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    if output_dir:
        cfg.OUTPUT_DIR = output_dir
    cfg.freeze()
    return cfg


def config_digest(cfg):
    """A short hash of the config: results are reused only for the very same config.

    OUTPUT_DIR is left out: where a run is saved does not change it, so a moved or copied run
    directory stays valid.
    """
    cfg = cfg.clone()
    cfg.defrost()
    cfg.OUTPUT_DIR = ""
    return hashlib.sha256(cfg.dump().encode()).hexdigest()[:16]


def cached_results(cfg, path):
    """The results saved by an earlier run of exactly this config, or None."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        saved = json.load(f)
    final_model = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
    if saved.get("config_digest") != config_digest(cfg) or not os.path.exists(final_model):
        return None
    return saved


def can_resume(cfg):
    """Whether the checkpoints in OUTPUT_DIR were trained with exactly this config."""
    path = os.path.join(cfg.OUTPUT_DIR, TRAINING_DIGEST_FILE)
    if not os.path.exists(path):
        return False
    with open(path) as f:
        return f.read().strip() == config_digest(cfg)


def train_and_evaluate(cfg, force=False):
    """Train and evaluate on ``cfg.DATASETS.TEST``.

    Resumes from the last checkpoint of an interrupted run of the same config; checkpoints of
    another config (or any, with ``force``) are ignored and training starts from iteration 0.

    Returns:
        dict: the ``bbox`` metrics of ``COCOEvaluator`` (AP, AP50, ..., AP-<class>).
    """
    for name in (*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST):
        DatasetCatalog.get(name)  # generates the embedded dataset on first use, with progress
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    resume = not force and can_resume(cfg)
    if not resume and os.path.exists(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint")):
        logger.warning(
            f"not resuming the checkpoints in {cfg.OUTPUT_DIR}: another config trained them"
        )
    with open(os.path.join(cfg.OUTPUT_DIR, TRAINING_DIGEST_FILE), "w") as f:
        f.write(config_digest(cfg))
    trainer = build_trainer(cfg)
    trainer.resume_or_load(resume=resume)
    results = trainer.train()
    return results["bbox"]


def build_trainer(cfg):
    """The trainer of ``cfg``, built after seeding the random generators with ``cfg.SEED``.

    Seeding first makes the initial weights and the order and augmentation of the training
    batches depend on SEED only, as ``train_net.py`` does through Detectron2's ``default_setup``
    (a negative SEED draws a random one).
    """
    seed_all_rng(None if cfg.SEED < 0 else cfg.SEED)
    return FocalEIoUTrainer(cfg)


def ap_per_iou_threshold(cfg):
    """AP (%) at each IoU threshold 0.50:0.05:0.95 of the detections the evaluation saved."""
    dataset = cfg.DATASETS.TEST[0]
    path = os.path.join(cfg.OUTPUT_DIR, "inference", dataset, "coco_instances_results.json")
    with open(path) as f:
        detections = json.load(f)
    return evaluate_boxes(load_ground_truth(dataset), detections)["ap_per_iou"]


def visualize(cfg, count, threshold=0.5):
    """Write the detections on the first ``count`` test images to OUTPUT_DIR/visualizations.

    Returns:
        list[str]: the written files.
    """
    dataset = cfg.DATASETS.TEST[0]
    metadata = MetadataCatalog.get(dataset)
    predictor_cfg = cfg.clone()
    predictor_cfg.defrost()
    predictor_cfg.MODEL.WEIGHTS = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
    predictor = DefaultPredictor(predictor_cfg)
    folder = os.path.join(cfg.OUTPUT_DIR, "visualizations")
    os.makedirs(folder, exist_ok=True)
    written = []
    for record in DatasetCatalog.get(dataset)[:count]:
        image = cv2.imread(record["file_name"])
        drawn = draw_detections(
            image[:, :, ::-1], predictor(image)["instances"], metadata, threshold
        )
        path = os.path.join(folder, os.path.basename(record["file_name"]))
        cv2.imwrite(path, drawn[:, :, ::-1])
        written.append(path)
    return written


def format_table(name, metrics):
    """A markdown table of the COCO box metrics, per-class APs included."""
    classes = sorted(k for k in metrics if k.startswith("AP-"))
    header = "| model | " + " | ".join(AP_KEYS + tuple(classes)) + " |"
    rule = "|---" * (1 + len(AP_KEYS) + len(classes)) + "|"
    values = " | ".join(f"{metrics[k]:.1f}" for k in AP_KEYS + tuple(classes))
    return "\n".join([header, rule, f"| {name} | {values} |"])


def run(cfg, force=False, num_visualizations=4):
    """Train, evaluate, print and visualize; reuse the saved results of a finished identical run.

    Returns:
        dict: what is saved to OUTPUT_DIR/quickstart_results.json.
    """
    path = os.path.join(cfg.OUTPUT_DIR, RESULTS_FILE)
    saved = None if force else cached_results(cfg, path)
    if saved is None:
        metrics = train_and_evaluate(cfg, force)
        saved = {
            "config_digest": config_digest(cfg),
            "bbox": metrics,
            "ap_per_iou": ap_per_iou_threshold(cfg),
            "iou_thresholds": list(IOU_THRESHOLDS),
        }
        with open(path, "w") as f:
            json.dump(saved, f, indent=2, sort_keys=True)
    else:
        logger.info(f"{path} holds the results of this exact config; --force retrains")
    print(format_table(f"{cfg.MODEL.META_ARCHITECTURE} ({loss_type(cfg)})", saved["bbox"]))
    if num_visualizations > 0:
        files = visualize(cfg, num_visualizations)
        print(f"{len(files)} validation images with detections in {os.path.dirname(files[0])}")
    return saved


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", default=DEFAULT_CONFIG, help="a configs/quickstart file")
    parser.add_argument("--output-dir", help="overrides the config's OUTPUT_DIR")
    parser.add_argument("--force", action="store_true", help="retrain even if results exist")
    parser.add_argument(
        "--num-visualizations", type=int, default=4, help="validation images to draw (0: none)"
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args.config_file, args.opts, args.output_dir)
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    setup_logger(cfg.OUTPUT_DIR)
    setup_logger(cfg.OUTPUT_DIR, name="focal_eiou_d2")
    run(cfg, force=args.force, num_visualizations=args.num_visualizations)


if __name__ == "__main__":
    main()
