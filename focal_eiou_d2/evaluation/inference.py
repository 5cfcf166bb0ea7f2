"""Running a detector over a registered dataset and keeping its detections as COCO results."""

import detectron2.data.transforms as T
import torch
from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator, inference_on_dataset
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


def run_inference(config, dataset_name):
    """Runs the model of ``config`` with its trained weights on a registered dataset.

    Args:
        config (YamlRunConfig or LazyRunConfig): the model's config; its weights must fit.
        dataset_name (str): the dataset.

    Returns:
        list[dict]: its detections as COCO results.
    """
    config = _run_config(config)
    model = config.build_model()
    load_trained_weights(model, config.weights)
    collector = DetectionCollector(dataset_name)
    inference_on_dataset(model, config.build_test_loader(dataset_name), collector)
    return collector.detections


class Predictor:
    """The detections of a trained model on one image, for either kind of config (what
    Detectron2's ``DefaultPredictor`` does for YAML configs)."""

    def __init__(self, config, weights):
        """
        Args:
            config (YamlRunConfig or LazyRunConfig): the model's config.
            weights (str): its trained weights, which must fit.

        Raises:
            WeightsMismatchError: the weights do not fit the model.
        """
        config = _run_config(config)
        self.model = config.build_model()
        self.model.eval()
        load_trained_weights(self.model, weights)
        self.augmentation = config.test_augmentation()
        self.input_format = config.input_format

    def __call__(self, image_bgr):
        """Detections on ``image_bgr`` (H, W, 3) uint8: ``{"instances": Instances}`` in the
        image's own pixel coordinates."""
        with torch.no_grad():
            image = image_bgr[:, :, ::-1] if self.input_format == "RGB" else image_bgr
            height, width = image.shape[:2]
            resized = T.AugInput(image)
            self.augmentation(resized)
            tensor = torch.as_tensor(resized.image.astype("float32").transpose(2, 0, 1))
            return self.model([{"image": tensor, "height": height, "width": width}])[0]


def build_predictor(config, weights):
    """A :class:`Predictor` of ``config`` with trained ``weights`` that must fit."""
    return Predictor(config, weights)


def _run_config(config):
    """``config`` as a run config (a YAML ``CfgNode`` is wrapped)."""
    from focal_eiou_d2.engine import YamlRunConfig

    return YamlRunConfig(config, None) if isinstance(config, CfgNode) else config
