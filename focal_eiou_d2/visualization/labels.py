"""The labels of pictures and reports: model titles and the class names drawn on detections."""

import logging

from detectron2.data import MetadataCatalog
from detectron2.data.catalog import Metadata

from focal_eiou_d2.engine.run_dir import run_classes

logger = logging.getLogger(__name__)

# The box loss of Detectron2's models, and of the paper's baselines (Tables 1-3).
BASELINE_LOSS = "smooth_l1"


def model_name(config):
    """Returns the title of a model: its box loss, e.g. "focal_eiou" or "smooth_l1 (baseline)".

    Args:
        config (YamlRunConfig or LazyRunConfig): the model's config.
    """
    loss = config.loss_type
    return f"{loss} (baseline)" if loss == BASELINE_LOSS else loss


def model_names(name_a, name_b):
    """Returns the two names, suffixed with " (A)" and " (B)" when they are equal.

    Args:
        name_a (str): name of the first model, e.g. ``model_name(config_a)``.
        name_b (str): name of the second model.

    Returns:
        tuple[str, str]: two distinct names.
    """
    if name_a == name_b:
        return f"{name_a} (A)", f"{name_b} (B)"
    return name_a, name_b


def class_metadata(config, dataset_name=None):
    """Returns the metadata that names the classes the model of ``config`` predicts, for drawing.

    The names are those recorded by the run that trained the config's weights (its ``run.json``),
    as the head's class count is (``load_run_config(..., classes_from="run")``). Weights from
    elsewhere take the names of the registered dataset ``dataset_name`` if it has as many classes
    as the head; otherwise class ids are drawn, with a warning.

    Args:
        config (YamlRunConfig or LazyRunConfig): the model's config, with its trained weights.
        dataset_name (str or None): a registered dataset, e.g. the one the pictures come from.

    Returns:
        Metadata: with ``thing_classes`` (a list of names, one per class of the head) or without
        them (``Visualizer`` then writes class ids).
    """
    classes = run_classes(config.weights)
    if classes is not None:
        return Metadata(name=f"classes of {config.weights}", thing_classes=list(classes))
    num_classes = config.num_classes
    names = MetadataCatalog.get(dataset_name).get("thing_classes", None) if dataset_name else None
    if names is not None and len(names) == num_classes:
        return Metadata(name=f"classes of {dataset_name}", thing_classes=list(names))
    logger.warning(
        "%s records no class names (no run.json beside it) and %s: class ids are drawn",
        config.weights,
        (
            f"dataset {dataset_name!r} has {len(names)} classes, the model {num_classes}"
            if names is not None
            else "no dataset names them"
        ),
    )
    return Metadata(name=f"class ids of {config.weights}")
