"""The labels of pictures and reports: model titles and the class names drawn on detections."""

import logging

from detectron2.data import MetadataCatalog
from detectron2.data.catalog import Metadata

from focal_eiou_d2.config import box_loss_type
from focal_eiou_d2.engine.run_dir import run_classes
from focal_eiou_d2.engine.setup import class_count_node

logger = logging.getLogger(__name__)

# The box loss of Detectron2's models, and of the paper's baselines (Tables 1-3).
BASELINE_LOSS = "smooth_l1"


def model_name(cfg):
    """Returns the title of a model: its box loss, e.g. "focal_eiou" or "smooth_l1 (baseline)"."""
    loss = box_loss_type(cfg)
    return f"{loss} (baseline)" if loss == BASELINE_LOSS else loss


def model_names(name_a, name_b):
    """Returns the two names, suffixed with " (A)" and " (B)" when they are equal.

    Args:
        name_a (str): name of the first model, e.g. ``model_name(cfg_a)``.
        name_b (str): name of the second model.

    Returns:
        tuple[str, str]: two distinct names.
    """
    if name_a == name_b:
        return f"{name_a} (A)", f"{name_b} (B)"
    return name_a, name_b


def class_metadata(cfg, dataset_name=None):
    """Returns the metadata that names the classes the model of ``cfg`` predicts, for drawing.

    The names are those recorded by the run that trained ``cfg.MODEL.WEIGHTS`` (its ``run.json``),
    as the head's class count is (``build_config(..., classes_from="run")``). Weights from
    elsewhere take the names of the registered dataset ``dataset_name`` if it has as many classes
    as the head; otherwise class ids are drawn, with a warning.

    Args:
        cfg (CfgNode): the model's config, with the trained weights in MODEL.WEIGHTS.
        dataset_name (str or None): a registered dataset, e.g. the one the pictures come from.

    Returns:
        Metadata: with ``thing_classes`` (a list of names, one per class of the head) or without
        them (``Visualizer`` then writes class ids).
    """
    classes = run_classes(cfg.MODEL.WEIGHTS)
    if classes is not None:
        return Metadata(name=f"classes of {cfg.MODEL.WEIGHTS}", thing_classes=list(classes))
    num_classes = cfg.MODEL[class_count_node(cfg)].NUM_CLASSES
    names = MetadataCatalog.get(dataset_name).get("thing_classes", None) if dataset_name else None
    if names is not None and len(names) == num_classes:
        return Metadata(name=f"classes of {dataset_name}", thing_classes=list(names))
    logger.warning(
        "%s records no class names (no run.json beside it) and %s: class ids are drawn",
        cfg.MODEL.WEIGHTS,
        (
            f"dataset {dataset_name!r} has {len(names)} classes, the model {num_classes}"
            if names is not None
            else "no dataset names them"
        ),
    )
    return Metadata(name=f"class ids of {cfg.MODEL.WEIGHTS}")
