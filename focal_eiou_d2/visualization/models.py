"""Configs of the models that are drawn or compared, and the names that label them."""

import logging

import torch
from detectron2.config import get_cfg

from focal_eiou_d2 import add_focal_eiou_config

logger = logging.getLogger(__name__)

# The box loss of Detectron2's models, and of the paper's baselines (Tables 1-3).
BASELINE_LOSS = "smooth_l1"


def load_config(config_file, opts=(), weights=None):
    """Builds a config from a YAML file and ``KEY VALUE`` overrides, on CPU if CUDA is missing.

    Args:
        config_file (str): a config of this project (or any Detectron2 config).
        opts (list[str]): overrides ``[KEY, VALUE, ...]``, e.g. ``["MODEL.DEVICE", "cpu"]``.
        weights (str or None): checkpoint, written to ``MODEL.WEIGHTS`` after ``opts``.

    Returns:
        CfgNode: the config, not frozen. ``MODEL.DEVICE`` is "cpu" when the file asks for CUDA,
        CUDA is unavailable and ``opts`` do not set the device.

    Raises:
        ValueError: ``opts`` ask for a CUDA device and CUDA is unavailable.
    """
    cfg = get_cfg()
    add_focal_eiou_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    if weights is not None:
        cfg.MODEL.WEIGHTS = weights
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        if "MODEL.DEVICE" in list(opts)[::2]:
            raise ValueError(f"MODEL.DEVICE {cfg.MODEL.DEVICE} was asked for; CUDA is unavailable")
        logger.info("CUDA is unavailable: running %s on the CPU", config_file)
        cfg.MODEL.DEVICE = "cpu"
    if not cfg.MODEL.WEIGHTS:
        logger.warning(
            "%s: MODEL.WEIGHTS is empty, the model keeps its random weights", config_file
        )
    return cfg


def loss_type(cfg):
    """Returns the box-regression loss of a model: RetinaNet's, or the R-CNN box head's.

    Args:
        cfg (CfgNode): a config with this project's keys.

    Returns:
        str: ``MODEL.RETINANET.BBOX_REG_LOSS_TYPE`` for RetinaNet meta-architectures,
        ``MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE`` otherwise.
    """
    if "RetinaNet" in cfg.MODEL.META_ARCHITECTURE:
        return cfg.MODEL.RETINANET.BBOX_REG_LOSS_TYPE
    return cfg.MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE


def model_name(cfg):
    """Returns the title of a model: its loss, e.g. "focal_eiou" or "smooth_l1 (baseline)"."""
    loss = loss_type(cfg)
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
