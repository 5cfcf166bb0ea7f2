"""The comparison report of focal_eiou_d2.tools.compare on hand-made and generated detections."""

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model
from pycocotools.coco import COCO
from tiny_models import tiny_cfg

from focal_eiou_d2.data import CLASS_NAMES, ShapesSpec, register_shapes
from focal_eiou_d2.tools import compare

# Ground truth of two 200x200 images (COCO XYWH): small (< 32^2), medium and large boxes.
GROUND_TRUTH = {
    1: [(1, [10, 10, 20, 20]), (2, [50, 40, 50, 40]), (1, [60, 90, 120, 100])],
    2: [(2, [5, 5, 25, 15]), (1, [100, 20, 60, 60]), (2, [30, 80, 110, 110])],
}


@pytest.fixture
def coco_gt():
    images = [{"id": i, "width": 200, "height": 200, "file_name": f"{i}.png"} for i in (1, 2)]
    annotations = [
        {"id": 10 * i + k, "image_id": i, "category_id": c, "bbox": b, "iscrowd": 0}
        for i, objects in GROUND_TRUTH.items()
        for k, (c, b) in enumerate(objects)
    ]
    for annotation in annotations:
        annotation["area"] = annotation["bbox"][2] * annotation["bbox"][3]
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def detections(shift=0.0, score=0.9):
    """One detection per ground-truth box, moved right by ``shift`` times its width."""
    return [
        {"image_id": i, "category_id": c, "bbox": [x + shift * w, y, w, h], "score": score}
        for i, objects in GROUND_TRUTH.items()
        for c, (x, y, w, h) in objects
    ]


def noisy_detections(seed=0):
    """Jittered boxes with random scores, and false positives of the wrong class."""
    rng = np.random.default_rng(seed)
    found = []
    for d in detections() + detections(shift=0.3):
        box = (np.array(d["bbox"]) + rng.normal(0, 3, 4)).tolist()
        found.append({**d, "bbox": box, "score": float(rng.uniform(0.05, 1))})
        found.append({**d, "category_id": 3 - d["category_id"], "score": float(rng.uniform())})
    return found


def test_identical_predictions_have_zero_deltas(coco_gt):
    found = noisy_detections()
    report = compare.compare_detections(coco_gt, found, [dict(d) for d in found])
    assert report["ap_per_iou"]["a"] == report["ap_per_iou"]["b"]
    assert report["ap_per_iou"]["delta"] == [0.0] * len(compare.IOU_THRESHOLDS)
    assert report["ap"]["delta"] == 0.0
    assert all(report["ap_per_size"][area]["delta"] == 0.0 for area in compare.AREAS)
    assert report["localization"]["a"] == report["localization"]["b"]
    assert 0 < report["ap"]["a"] < 100


def test_exact_boxes_beat_shifted_boxes_at_high_iou(coco_gt):
    # A shift of 0.2 widths gives IoU 0.8 / 1.2 = 2/3 with every ground-truth box.
    report = compare.compare_detections(coco_gt, detections(shift=0.2), detections(), ("A", "B"))
    for t, a, b in zip(
        compare.IOU_THRESHOLDS, *(report["ap_per_iou"][k] for k in "ab"), strict=True
    ):
        assert b == pytest.approx(100)
        assert a == pytest.approx(100 if t < 2 / 3 else 0)
    deltas = dict(zip(compare.IOU_THRESHOLDS, report["ap_per_iou"]["delta"], strict=True))
    assert all(deltas[t] == pytest.approx(100) for t in (0.75, 0.8, 0.85, 0.9, 0.95))
    a, b = report["localization"]["a"], report["localization"]["b"]
    assert (a["localization_errors"], a["well_localized"]) == (6, 0)
    assert (b["localization_errors"], b["well_localized"]) == (0, 6)
    assert a["mean_iou"] == pytest.approx(2 / 3) and b["mean_iou"] == pytest.approx(1)
    assert b["missed"] == 0 and b["unmatched"] == 0


def test_matching_is_one_to_one_by_descending_score_above_the_threshold(coco_gt):
    exact, shifted = detections(score=0.6), detections(shift=0.2, score=0.8)
    wrong_class = [{**d, "category_id": 3 - d["category_id"]} for d in detections(score=0.9)]
    low_score = detections(score=0.1)
    counts = compare.localization_counts(coco_gt, exact + shifted + wrong_class + low_score)
    # The shifted boxes score higher, so they take the ground truth; the exact ones are left over.
    assert counts["detections"] == 18 and counts["matched"] == 6
    assert counts["localization_errors"] == 6 and counts["well_localized"] == 0
    assert counts["unmatched"] == 12 and counts["missed"] == 0


def test_no_detections_give_zero_ap_and_no_size_without_ground_truth(coco_gt):
    coco_gt.dataset["annotations"] = [a for a in coco_gt.dataset["annotations"] if a["area"] < 9000]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
    report = compare.compare_detections(coco_gt, [], detections())
    assert report["ap_per_iou"]["a"] == [0.0] * len(compare.IOU_THRESHOLDS)
    assert report["ap_per_size"]["large"] == {"a": None, "b": None, "delta": None}
    assert report["localization"]["a"]["missed"] == 4
    assert report["localization"]["a"]["mean_iou"] is None
    assert "| AP large | - | - | - |" in compare.format_markdown(report)


@pytest.fixture
def shapes_val(tmp_path):
    """A registered, generated 3-image shapes validation split."""
    names = ("compare_shapes_train", "compare_shapes_val")
    spec = ShapesSpec(train_images=1, val_images=3, image_size=96)
    register_shapes(names, spec, root=str(tmp_path / "datasets"))
    DatasetCatalog.get(names[1])
    yield names[1]
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_cli_runs_a_model_and_reads_predictions(shapes_val, tmp_path):
    cfg = tiny_cfg("retinanet", "focal_eiou")
    cfg.MODEL.RETINANET.NUM_CLASSES = len(CLASS_NAMES)
    torch.manual_seed(0)
    DetectionCheckpointer(build_model(cfg), save_dir=str(tmp_path)).save("model")
    (tmp_path / "a.yaml").write_text(cfg.dump())
    with open(MetadataCatalog.get(shapes_val).json_file) as f:
        ground_truth = json.load(f)["annotations"]
    perfect = [{**a, "score": 1.0} for a in ground_truth]
    (tmp_path / "b.json").write_text(json.dumps(perfect))
    output = tmp_path / "report"
    argv = [
        "--dataset",
        shapes_val,
        "--output",
        str(output),
        "--config-a",
        str(tmp_path / "a.yaml"),
    ]
    argv += [
        "--weights-a",
        str(tmp_path / "model.pth"),
        "--predictions-b",
        str(tmp_path / "b.json"),
    ]
    report = compare.main(argv + ["--name-b", "truth", "--opts", "DATALOADER.NUM_WORKERS", "0"])
    assert report["names"] == ["focal_eiou", "truth"]
    assert report["ap"]["b"] == pytest.approx(100)
    saved = json.loads((output / "predictions_a.json").read_text())
    assert {d["category_id"] for d in saved} <= set(range(1, len(CLASS_NAMES) + 1))
    assert json.loads((output / "report.json").read_text()) == json.loads(json.dumps(report))
    assert "## Localization" in (output / "report.md").read_text()
    assert (output / "ap_vs_iou.png").read_bytes().startswith(b"\x89PNG")
