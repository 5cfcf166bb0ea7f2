"""COCO box metrics of a detector's results: AP per IoU threshold and per object size, and
localization counts.

Definitions (all boxes COCO XYWH, IoU as COCO computes it):

- AP at a threshold t: COCO's AP at IoU t, area "all", 100 detections per image, in percent;
  "AP" is their mean over t = 0.50, 0.55, ..., 0.95. AP small/medium/large: COCO's APs, APm,
  APl (mean over the ten thresholds, ground truth of area < 32^2, 32^2 to 96^2, > 96^2). AP,
  APs, APm and APl equal those Detectron2's COCOEvaluator reports for the same detections.
- Localization: the detections with score >= a threshold (default 0.5, the default threshold of
  ``demo/demo.py``, so the counts describe the boxes the demo draws) are matched to the ground
  truth as COCO matches at IoU 0.5: per image and class, in descending score order, each
  detection takes the still unmatched, non-crowd ground-truth box it overlaps most, if that IoU is
  >= 0.5. A matched detection is *well localized* if its IoU is >= 0.75 and a *localization
  error* if 0.5 <= IoU < 0.75. Unmatched detections (false positives at IoU 0.5) and missed
  ground-truth boxes are counted too, with the mean IoU of the matched pairs.
"""

import contextlib
import io

import numpy as np
import pycocotools.mask as mask_util
from detectron2.data import DatasetCatalog, MetadataCatalog
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

# COCOeval's IoU thresholds (np.linspace(0.5, 0.95, 10)), rounded for reports.
IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
AREAS = ("small", "medium", "large")
DEFAULT_SCORE_THRESHOLD = 0.5
MATCH_IOU = 0.5
GOOD_IOU = 0.75
# Score thresholds tried for drawing a model's detections (best_f1_threshold).
DRAW_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def load_detections(coco_gt, detections):
    """Turns COCO results into a COCO object that ``COCOeval`` accepts, also when there are none.

    Args:
        coco_gt (COCO): the ground truth.
        detections (list[dict]): COCO results: ``image_id``, ``category_id``, ``bbox`` (XYWH) and
            ``score``; not modified.

    Returns:
        COCO: the detections.
    """
    if detections:
        keys = ("image_id", "category_id", "bbox", "score")
        with contextlib.redirect_stdout(io.StringIO()):
            return coco_gt.loadRes([{k: d[k] for k in keys} for d in detections])
    coco_dt = COCO()
    coco_dt.dataset = {
        "images": list(coco_gt.dataset["images"]),
        "categories": list(coco_gt.dataset["categories"]),
        "annotations": [],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt.createIndex()
    return coco_dt


def mean_ap(precision):
    """COCO's mean of a slice of ``COCOeval.eval["precision"]`` in percent; None if it is empty.

    Entries of -1 (categories without ground truth) are left out, as ``COCOeval.summarize`` does.
    """
    valid = precision[precision > -1]
    return float(np.mean(valid)) * 100 if valid.size else None


def evaluate_boxes(coco_gt, detections):
    """COCO box AP of one model per IoU threshold and per object size.

    Args:
        coco_gt (COCO): the ground truth.
        detections (list[dict]): COCO results of the model.

    Returns:
        dict: ``"ap_per_iou"`` (list of AP at ``IOU_THRESHOLDS``), ``"ap"`` (their mean) and
        ``"ap_per_size"`` ({"small", "medium", "large"} -> AP); None where there is no ground truth.
    """
    evaluation = COCOeval(coco_gt, load_detections(coco_gt, detections), "bbox")
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation.evaluate()
        evaluation.accumulate()
    # precision: [IoU threshold, recall, category, area (all, small, medium, large), maxDets]
    precision = evaluation.eval["precision"][..., -1]
    return {
        "ap_per_iou": [mean_ap(precision[t, :, :, 0]) for t in range(len(IOU_THRESHOLDS))],
        "ap": mean_ap(precision[:, :, :, 0]),
        "ap_per_size": {area: mean_ap(precision[:, :, :, i + 1]) for i, area in enumerate(AREAS)},
    }


def match_image_class(boxes, scores, gt_boxes):
    """Matches the detections of one image and class to its ground truth, COCO style.

    Args:
        boxes (np.ndarray): (N, 4) XYWH detections.
        scores (np.ndarray): (N,) their scores.
        gt_boxes (np.ndarray): (G, 4) XYWH non-crowd ground truth.

    Returns:
        list[float]: the IoU of each matched detection (IoU >= ``MATCH_IOU``).
    """
    if len(boxes) == 0 or len(gt_boxes) == 0:
        return []
    ious = mask_util.iou(boxes.tolist(), gt_boxes.tolist(), [0] * len(gt_boxes))
    free = np.ones(len(gt_boxes), dtype=bool)
    matched = []
    for row in np.argsort(-scores, kind="mergesort"):
        candidates = np.where(free, ious[row], -1.0)
        best = int(np.argmax(candidates))
        if candidates[best] >= MATCH_IOU:
            free[best] = False
            matched.append(float(candidates[best]))
    return matched


def localization_counts(coco_gt, detections, score_threshold=DEFAULT_SCORE_THRESHOLD):
    """Counts well-localized detections and localization errors (see the module docstring).

    Args:
        coco_gt (COCO): the ground truth.
        detections (list[dict]): COCO results of one model.
        score_threshold (float): detections with a lower score are ignored.

    Returns:
        dict: ``detections`` (kept), ``matched`` (IoU >= 0.5), ``well_localized`` (IoU >= 0.75),
        ``localization_errors`` (0.5 <= IoU < 0.75), ``unmatched`` (detections), ``missed``
        (ground truth) and ``mean_iou`` of the matched pairs (None if there are none).
    """
    kept = [d for d in detections if d["score"] >= score_threshold]
    groups = {}
    for d in kept:
        groups.setdefault((d["image_id"], d["category_id"]), []).append(d)
    ious = []
    for (image_id, category_id), group in groups.items():
        gt_ids = coco_gt.getAnnIds(imgIds=[image_id], catIds=[category_id], iscrowd=False)
        gt_boxes = np.array([a["bbox"] for a in coco_gt.loadAnns(gt_ids)]).reshape(-1, 4)
        boxes = np.array([d["bbox"] for d in group], dtype=np.float64).reshape(-1, 4)
        scores = np.array([d["score"] for d in group])
        ious += match_image_class(boxes, scores, gt_boxes)
    ious = np.array(ious)
    num_gt = len(coco_gt.getAnnIds(iscrowd=False))
    return {
        "detections": len(kept),
        "matched": len(ious),
        "well_localized": int(np.sum(ious >= GOOD_IOU)),
        "localization_errors": int(np.sum(ious < GOOD_IOU)),
        "unmatched": len(kept) - len(ious),
        "missed": num_gt - len(ious),
        "mean_iou": float(ious.mean()) if len(ious) else None,
    }


def load_ground_truth(dataset_name):
    """The COCO ground truth of a registered dataset (generated first if it is generated on use).

    Raises:
        ValueError: the dataset's metadata has no ``json_file``.
    """
    DatasetCatalog.get(dataset_name)
    json_file = MetadataCatalog.get(dataset_name).get("json_file", None)
    if json_file is None:
        raise ValueError(f"dataset {dataset_name!r} has no json_file in its metadata")
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(json_file)


def best_f1_threshold(coco_gt, detections, candidates=DRAW_THRESHOLDS):
    """The score threshold whose detections best match the ground truth (highest F1 at IoU 0.5).

    F1 = 2 * matched / (detections kept + ground-truth boxes), matched as in
    :func:`localization_counts`. A threshold for drawing a model's detections: a model trained
    briefly scores its correct detections far below Detectron2's default 0.5.

    Args:
        coco_gt (COCO): the ground truth.
        detections (list[dict]): COCO results of one model.
        candidates (tuple[float]): the thresholds tried.

    Returns:
        tuple[float, float]: the threshold and its F1 (ties go to the higher threshold).
    """
    best = (candidates[0], -1.0)
    for threshold in candidates:
        counts = localization_counts(coco_gt, detections, threshold)
        total = counts["detections"] + counts["matched"] + counts["missed"]
        f1 = 2 * counts["matched"] / total if total else 0.0
        if f1 >= best[1]:
            best = (threshold, f1)
    return best
