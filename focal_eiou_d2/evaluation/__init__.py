"""Evaluation of trained detectors: COCO metrics, inference over a dataset, statistics."""

from .box_metrics import (
    AREAS,
    DEFAULT_SCORE_THRESHOLD,
    GOOD_IOU,
    IOU_THRESHOLDS,
    MATCH_IOU,
    best_f1_threshold,
    evaluate_boxes,
    load_ground_truth,
    localization_counts,
)
from .inference import build_predictor, run_inference

__all__ = [
    "AREAS",
    "DEFAULT_SCORE_THRESHOLD",
    "GOOD_IOU",
    "IOU_THRESHOLDS",
    "MATCH_IOU",
    "best_f1_threshold",
    "build_predictor",
    "evaluate_boxes",
    "load_ground_truth",
    "localization_counts",
    "run_inference",
]
