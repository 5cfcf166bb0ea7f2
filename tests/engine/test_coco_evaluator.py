"""COCOEvaluator, as the trainer builds it, gives AP 100 for perfect predictions."""

import json

import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.data.datasets import register_coco_instances
from detectron2.structures import Boxes, Instances

from focal_eiou_d2.compiled_ops import detectron2_has_compiled_ops
from focal_eiou_d2.engine.coco_evaluator import build_coco_evaluator

# Two images, two categories with non-contiguous COCO ids (3 and 7), boxes in COCO XYWH.
ANNOTATIONS = {
    1: [(3, [10.0, 20.0, 30.0, 40.0]), (7, [60.0, 10.0, 25.0, 25.0])],
    2: [(7, [5.0, 5.0, 80.0, 50.0])],
}


def write_coco_json(path):
    images = [{"id": i, "file_name": f"{i}.png", "width": 128, "height": 128} for i in ANNOTATIONS]
    annotations = [
        {
            "id": 10 * i + k,
            "image_id": i,
            "category_id": c,
            "bbox": b,
            "area": b[2] * b[3],
            "iscrowd": 0,
        }
        for i, objects in ANNOTATIONS.items()
        for k, (c, b) in enumerate(objects)
    ]
    categories = [{"id": 3, "name": "square"}, {"id": 7, "name": "ring"}]
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )


def perfect_outputs(image_id, contiguous_id):
    objects = ANNOTATIONS[image_id]
    instances = Instances((128, 128))
    instances.pred_boxes = Boxes(
        torch.tensor([[x, y, x + w, y + h] for _, (x, y, w, h) in objects])
    )
    instances.scores = torch.ones(len(objects))
    instances.pred_classes = torch.tensor([contiguous_id[c] for c, _ in objects])
    return {"instances": instances}


@pytest.mark.parametrize("shift", [0.0, 6.0])
def test_perfect_predictions_score_ap_100(tmp_path, shift):
    name = f"two_image_coco_{int(shift)}"
    json_file = tmp_path / "instances.json"
    write_coco_json(json_file)
    register_coco_instances(name, {}, str(json_file), str(tmp_path))
    try:
        DatasetCatalog.get(name)  # maps COCO ids to contiguous ids in the metadata
        evaluator = build_coco_evaluator(str(tmp_path), name)
        assert evaluator._use_fast_impl == detectron2_has_compiled_ops()
        contiguous = evaluator._metadata.thing_dataset_id_to_contiguous_id
        evaluator.reset()
        for image_id in ANNOTATIONS:
            outputs = perfect_outputs(image_id, contiguous)
            outputs["instances"].pred_boxes.tensor[:, [0, 2]] += shift
            evaluator.process([{"image_id": image_id}], [outputs])
        results = evaluator.evaluate()["bbox"]
    finally:
        DatasetCatalog.remove(name)
    if shift == 0:
        assert results["AP"] == pytest.approx(100.0)
    else:  # a 6 px shift keeps IoU >= 0.5 for every box but loses the strict thresholds
        assert results["AP50"] == pytest.approx(100.0) and results["AP"] < 100.0
