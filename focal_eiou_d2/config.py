"""Configuration keys of focal_eiou_d2 and their validation."""

import math

from detectron2.config import CfgNode as CN

from focal_eiou_d2.layers import BOX_LOSSES

# Config nodes whose BBOX_REG_LOSS_TYPE selects a loss of focal_eiou_d2.layers.
LOSS_TYPE_NODES = ("RETINANET", "RPN", "ROI_BOX_HEAD")


def add_focal_eiou_config(cfg):
    """Add the focal_eiou_d2 keys to a Detectron2 config, in place.

    Loss types are chosen with Detectron2's own keys ``MODEL.RETINANET.BBOX_REG_LOSS_TYPE``,
    ``MODEL.RPN.BBOX_REG_LOSS_TYPE`` and ``MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE``; with the
    components of this package they accept every name of ``focal_eiou_d2.layers.BOX_LOSSES``.
    """
    cfg.MODEL.FOCAL_EIOU = CN()
    # gamma of Focal-EIoU, Eq. 10: the EIoU loss of a pair is weighted by IoU^gamma (paper: 0.5).
    # Also the gamma of the Focal-EIoU* ablation variant, -(1 - IoU)^gamma * log(IoU) * L_EIoU.
    cfg.MODEL.FOCAL_EIOU.GAMMA = 0.5
    # Treat the IoU^gamma weight as a constant (no gradient through it). With False, the IoU in the
    # power is clamped away from 0 so that non-overlapping pairs keep finite gradients.
    cfg.MODEL.FOCAL_EIOU.DETACH_WEIGHT = True
    # Eq. 11: divide the weighted Focal-EIoU sum by the sum of the weights IoU^gamma over the batch
    # (all processes together in distributed training) instead of by the number of positives.
    cfg.MODEL.FOCAL_EIOU.NORMALIZE_BY_WEIGHTS = True
    # beta of FocalL1, Eqs. 8-9, in [1/e, 1] (paper: 0.8); used by focal_l1 and focal_eiou_v1.
    cfg.MODEL.FOCAL_EIOU.FOCAL_L1_BETA = 0.8
    # Weight of RetinaNet's box-regression loss (Detectron2 has no such key; the paper uses 1.0
    # for l_n-norm losses and 2.5 for IoU-based losses).
    cfg.MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT = 1.0


def check_loss_type(cfg, node):
    """Raise ValueError when ``MODEL.<node>.BBOX_REG_LOSS_TYPE`` names no known loss."""
    loss_type = cfg.MODEL[node].BBOX_REG_LOSS_TYPE
    if loss_type not in BOX_LOSSES:
        raise ValueError(
            f"MODEL.{node}.BBOX_REG_LOSS_TYPE = {loss_type!r} is not a known loss; "
            f"valid choices: {', '.join(sorted(BOX_LOSSES))}"
        )


def check_focal_eiou_config(cfg):
    """Raise ValueError naming the key when a focal_eiou_d2 hyper-parameter is out of range.

    Called when a model is built, so that a bad value fails before training starts.
    """
    if "FOCAL_EIOU" not in cfg.MODEL:
        raise ValueError(
            "the config has no MODEL.FOCAL_EIOU node: call "
            "focal_eiou_d2.add_focal_eiou_config(cfg) before merging the YAML file"
        )
    params = cfg.MODEL.FOCAL_EIOU
    if not (math.isfinite(params.GAMMA) and params.GAMMA >= 0):
        raise ValueError(f"MODEL.FOCAL_EIOU.GAMMA must be a finite number >= 0, got {params.GAMMA}")
    if not 1 / math.e <= params.FOCAL_L1_BETA <= 1:
        raise ValueError(
            f"MODEL.FOCAL_EIOU.FOCAL_L1_BETA must lie in [1/e, 1] = [0.3679, 1], "
            f"got {params.FOCAL_L1_BETA}"
        )
    for key in ("DETACH_WEIGHT", "NORMALIZE_BY_WEIGHTS"):
        if not isinstance(params[key], bool):
            raise ValueError(f"MODEL.FOCAL_EIOU.{key} must be true or false, got {params[key]!r}")


def check_loss_weight(cfg, node):
    """``MODEL.<node>.BBOX_REG_LOSS_WEIGHT``, or ValueError when it is negative or not finite."""
    weight = cfg.MODEL[node].BBOX_REG_LOSS_WEIGHT
    if not 0 <= weight < math.inf:
        raise ValueError(f"MODEL.{node}.BBOX_REG_LOSS_WEIGHT must be finite and >= 0, got {weight}")
    return weight
