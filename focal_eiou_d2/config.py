"""The configuration keys of focal_eiou_d2 (their values are checked when the model is built)."""

from detectron2.config import CfgNode as CN

from focal_eiou_d2.layers import hyperparams


def add_focal_eiou_config(cfg):
    """Add the focal_eiou_d2 keys to a Detectron2 config, in place.

    Loss types are chosen with Detectron2's own keys ``MODEL.RETINANET.BBOX_REG_LOSS_TYPE``,
    ``MODEL.RPN.BBOX_REG_LOSS_TYPE`` and ``MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE``; with the
    components of this package they accept every name of ``focal_eiou_d2.layers.BOX_LOSSES``.
    """
    cfg.MODEL.FOCAL_EIOU = CN()
    # gamma of Focal-EIoU, Eq. 10: the EIoU loss of a pair is weighted by IoU^gamma (paper: 0.5).
    # Also the gamma of the Focal-EIoU* ablation variant, -(1 - IoU)^gamma * log(IoU) * L_EIoU.
    cfg.MODEL.FOCAL_EIOU.GAMMA = hyperparams.FOCAL_EIOU_GAMMA
    # Treat the IoU^gamma weight as a constant (no gradient through it). With False, the IoU in the
    # power is clamped away from 0 so that non-overlapping pairs keep finite gradients.
    cfg.MODEL.FOCAL_EIOU.DETACH_WEIGHT = hyperparams.FOCAL_EIOU_DETACH_WEIGHT
    # Eq. 11: divide the weighted Focal-EIoU sum by the sum of the weights IoU^gamma over the batch
    # (all processes together in distributed training) instead of by the number of positives.
    cfg.MODEL.FOCAL_EIOU.NORMALIZE_BY_WEIGHTS = True
    # beta of FocalL1, Eqs. 8-9, in [1/e, 1] (paper: 0.8); used by focal_l1 and focal_eiou_v1.
    cfg.MODEL.FOCAL_EIOU.FOCAL_L1_BETA = hyperparams.FOCAL_L1_BETA
    # alpha, gamma and beta of BalancedL1 (Libra R-CNN, the paper's Table 2 baseline; its defaults
    # 0.5, 1.5, 1.0): alpha scales the inlier gradient, gamma bounds the outlier gradient, beta is
    # the inlier/outlier boundary on the delta error.
    cfg.MODEL.FOCAL_EIOU.BALANCED_L1_ALPHA = hyperparams.BALANCED_L1_ALPHA
    cfg.MODEL.FOCAL_EIOU.BALANCED_L1_GAMMA = hyperparams.BALANCED_L1_GAMMA
    cfg.MODEL.FOCAL_EIOU.BALANCED_L1_BETA = hyperparams.BALANCED_L1_BETA
    # Weight of RetinaNet's box-regression loss (Detectron2 has no such key; the paper uses 1.0
    # for l_n-norm losses and 2.5 for IoU-based losses).
    cfg.MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT = 1.0
