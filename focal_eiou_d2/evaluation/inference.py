"""Running a detector over a registered dataset and keeping its detections as COCO results."""

from detectron2.data import MetadataCatalog, build_detection_test_loader
from detectron2.engine import DefaultPredictor
from detectron2.evaluation import DatasetEvaluator, inference_on_dataset
from detectron2.modeling import build_model
from detectron2.structures import BoxMode

from focal_eiou_d2.engine.checkpoint import load_trained_weights


class DetectionCollector(DatasetEvaluator):
    """Keeps a model's box detections as COCO results (dataset category ids, XYWH boxes)."""

    def __init__(self, dataset_name):
        mapping = MetadataCatalog.get(dataset_name).get("thing_dataset_id_to_contiguous_id", None)
        self._category_ids = {c: d for d, c in mapping.items()} if mapping else None
        self.detections = []

    def reset(self):
        self.detections = []

    def process(self, inputs, outputs):
        for item, output in zip(inputs, outputs, strict=True):
            self.detections += self.to_results(output["instances"].to("cpu"), item["image_id"])

    def to_results(self, instances, image_id):
        """COCO results of one image's ``Instances`` (on the CPU)."""
        boxes = BoxMode.convert(
            instances.pred_boxes.tensor.numpy(), BoxMode.XYXY_ABS, BoxMode.XYWH_ABS
        )
        labels = instances.pred_classes.tolist()
        if self._category_ids:
            labels = [self._category_ids[label] for label in labels]
        return [
            {"image_id": image_id, "category_id": label, "bbox": box, "score": score}
            for box, score, label in zip(
                boxes.tolist(), instances.scores.tolist(), labels, strict=True
            )
        ]

    def evaluate(self):
        return {}


def run_inference(cfg, dataset_name):
    """Runs the model of ``cfg`` (with ``cfg.MODEL.WEIGHTS``) on a registered dataset.

    Returns:
        list[dict]: its detections as COCO results.
    """
    model = build_model(cfg)
    load_trained_weights(model, cfg.MODEL.WEIGHTS)
    collector = DetectionCollector(dataset_name)
    inference_on_dataset(model, build_detection_test_loader(cfg, dataset_name), collector)
    return collector.detections


def build_predictor(cfg, weights):
    """Detectron2's ``DefaultPredictor`` of ``cfg`` with trained ``weights`` that must fit.

    Args:
        cfg (CfgNode): the model's config (its MODEL.WEIGHTS is not used).
        weights (str): the trained weights.

    Raises:
        WeightsMismatchError: the weights do not fit the model.
    """
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.WEIGHTS = ""
    predictor = DefaultPredictor(cfg)
    load_trained_weights(predictor.model, weights)
    return predictor
