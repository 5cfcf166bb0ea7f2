"""Configuration keys of focal_eiou_d2, their validation, and the loss parameters they give."""

import math

from detectron2.config import CfgNode as CN

from focal_eiou_d2.layers import BOX_LOSSES

# Config nodes whose BBOX_REG_LOSS_TYPE selects a loss of focal_eiou_d2.layers.
LOSS_TYPE_NODES = ("RETINANET", "RPN", "ROI_BOX_HEAD")

# Keyword argument of each loss -> the MODEL.FOCAL_EIOU key that sets it. smooth_l1's beta comes
# from the head's own Detectron2 key (SMOOTH_L1_BETA / SMOOTH_L1_LOSS_BETA).
LOSS_PARAMETER_KEYS = {
    "focal_eiou": {"gamma": "GAMMA", "detach_weight": "DETACH_WEIGHT"},
    "focal_eiou_star": {"gamma": "GAMMA"},
    "focal_l1": {"beta": "FOCAL_L1_BETA"},
    "focal_eiou_v1": {"beta": "FOCAL_L1_BETA"},
    "balanced_l1": {
        "alpha": "BALANCED_L1_ALPHA",
        "gamma": "BALANCED_L1_GAMMA",
        "beta": "BALANCED_L1_BETA",
    },
}


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
    # alpha, gamma and beta of BalancedL1 (Libra R-CNN, the paper's Table 2 baseline; its defaults
    # 0.5, 1.5, 1.0): alpha scales the inlier gradient, gamma bounds the outlier gradient, beta is
    # the inlier/outlier boundary on the delta error.
    cfg.MODEL.FOCAL_EIOU.BALANCED_L1_ALPHA = 0.5
    cfg.MODEL.FOCAL_EIOU.BALANCED_L1_GAMMA = 1.5
    cfg.MODEL.FOCAL_EIOU.BALANCED_L1_BETA = 1.0
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
    for key in ("BALANCED_L1_ALPHA", "BALANCED_L1_GAMMA", "BALANCED_L1_BETA"):
        if not (math.isfinite(params[key]) and params[key] > 0):
            raise ValueError(
                f"MODEL.FOCAL_EIOU.{key} must be a finite number > 0, got {params[key]}"
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


def loss_params_from_config(cfg, node, smooth_l1_beta):
    """The loss of ``MODEL.<node>.BBOX_REG_LOSS_TYPE`` and its parameters, validated.

    Args:
        cfg (CfgNode): a config with this project's keys.
        node (str): "RETINANET", "RPN" or "ROI_BOX_HEAD".
        smooth_l1_beta (float): the head's smooth L1 beta, from its Detectron2 key.

    Returns:
        tuple[str, dict, bool]: the loss type, its keyword arguments, and whether Focal-EIoU is
        normalized as in Eq. 11.

    Raises:
        ValueError: an unknown loss type or an out-of-range value, naming the key.
    """
    check_focal_eiou_config(cfg)
    check_loss_type(cfg, node)
    loss_type = cfg.MODEL[node].BBOX_REG_LOSS_TYPE
    keys = LOSS_PARAMETER_KEYS.get(loss_type, {})
    params = {name: cfg.MODEL.FOCAL_EIOU[key] for name, key in keys.items()}
    if loss_type == "smooth_l1":
        params["beta"] = smooth_l1_beta
    return loss_type, params, cfg.MODEL.FOCAL_EIOU.NORMALIZE_BY_WEIGHTS


def box_loss_node(cfg):
    """The MODEL node whose BBOX_REG_LOSS_TYPE is a model's box-regression loss: RETINANET for
    RetinaNet meta-architectures, ROI_BOX_HEAD (the R-CNN box head) otherwise."""
    return "RETINANET" if "RetinaNet" in cfg.MODEL.META_ARCHITECTURE else "ROI_BOX_HEAD"


def box_loss_type(cfg):
    """The box-regression loss of a model (see :func:`box_loss_node`), e.g. "focal_eiou"."""
    return cfg.MODEL[box_loss_node(cfg)].BBOX_REG_LOSS_TYPE


def paper_loss_weight(loss_type):
    """The paper's box-loss weight (Sec. 5.2): 1.0 for l_n-norm losses, 2.5 for IoU losses."""
    return 2.5 if BOX_LOSSES[loss_type].on_boxes else 1.0
