"""The configuration keys of focal_eiou_d2 (their values are checked when the model is built)."""

from detectron2.config import CfgNode as CN

from focal_eiou_d2.layers import hyperparams

DIGEST_NEUTRAL_KEYS = (
    "FOCAL_GAMMA",
    "SIOU_THETA",
    "SHAPE_IOU_SCALE",
    "WIOU_ALPHA",
    "WIOU_DELTA",
    "WIOU_MOMENTUM",
    "ALPHA_IOU_ALPHA",
    "INNER_IOU_RATIO",
    "INNER_IOU_BASE",
    "NWD_CONSTANT",
)
"""The MODEL.FOCAL_EIOU keys of the box-loss zoo, added after the first protocol results: a config
that leaves one at its default has the digest it had before the key existed, so that results
folders trained before keep their protocol (``RunConfig.digest``)."""


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
    # Eq. 11: divide the weighted sum of Focal-EIoU (or of another IoU loss with FOCAL_GAMMA > 0)
    # by the sum of the weights IoU^gamma over the batch (all processes together in distributed
    # training) instead of by the number of positives.
    cfg.MODEL.FOCAL_EIOU.NORMALIZE_BY_WEIGHTS = True
    # beta of FocalL1, Eqs. 8-9, in [1/e, 1] (paper: 0.8); used by focal_l1 and focal_eiou_v1.
    cfg.MODEL.FOCAL_EIOU.FOCAL_L1_BETA = hyperparams.FOCAL_L1_BETA
    # alpha, gamma and beta of BalancedL1 (Libra R-CNN, the paper's Table 2 baseline; its defaults
    # 0.5, 1.5, 1.0): alpha scales the inlier gradient, gamma bounds the outlier gradient, beta is
    # the inlier/outlier boundary on the delta error.
    cfg.MODEL.FOCAL_EIOU.BALANCED_L1_ALPHA = hyperparams.BALANCED_L1_ALPHA
    cfg.MODEL.FOCAL_EIOU.BALANCED_L1_GAMMA = hyperparams.BALANCED_L1_GAMMA
    cfg.MODEL.FOCAL_EIOU.BALANCED_L1_BETA = hyperparams.BALANCED_L1_BETA
    # gamma of the focal weight IoU^gamma (Eq. 10, normalized by Eq. 11 as NORMALIZE_BY_WEIGHTS
    # says) of the other IoU losses: iou, giou, diou, ciou, eiou, siou, shape_iou, alpha_iou,
    # mpdiou, inner_iou (e.g. siou with 0.5 is Focal-SIoU; focal_eiou's gamma is GAMMA). 0 turns
    # it off; DETACH_WEIGHT applies.
    cfg.MODEL.FOCAL_EIOU.FOCAL_GAMMA = hyperparams.FOCAL_GAMMA
    # theta of the SIoU shape cost, of siou and shape_iou (SIoU paper: 4, suggests 2 to 6).
    cfg.MODEL.FOCAL_EIOU.SIOU_THETA = hyperparams.SIOU_THETA
    # scale of shape_iou: how much the target's shape weights the two axes (0: equally).
    cfg.MODEL.FOCAL_EIOU.SHAPE_IOU_SCALE = hyperparams.SHAPE_IOU_SCALE
    # alpha and delta of Wise-IoU v3's focusing coefficient (paper: 1.9 and 3).
    cfg.MODEL.FOCAL_EIOU.WIOU_ALPHA = hyperparams.WIOU_ALPHA
    cfg.MODEL.FOCAL_EIOU.WIOU_DELTA = hyperparams.WIOU_DELTA
    # Momentum of Wise-IoU v3's running mean of 1 - IoU, in (0, 1]; 0: the paper's rule over the
    # training, wiou_momentum(SOLVER.MAX_ITER).
    cfg.MODEL.FOCAL_EIOU.WIOU_MOMENTUM = hyperparams.WIOU_MOMENTUM_FROM_SCHEDULE
    # alpha of alpha_iou, 1 - IoU^alpha (paper: 3).
    cfg.MODEL.FOCAL_EIOU.ALPHA_IOU_ALPHA = hyperparams.ALPHA_IOU_ALPHA
    # ratio of inner_iou's auxiliary boxes to the real ones, and the loss it extends (one of iou,
    # giou, diou, ciou, eiou, siou).
    cfg.MODEL.FOCAL_EIOU.INNER_IOU_RATIO = hyperparams.INNER_IOU_RATIO
    cfg.MODEL.FOCAL_EIOU.INNER_IOU_BASE = hyperparams.INNER_IOU_BASE
    # C of nwd, the normalized Wasserstein distance, in pixels (paper: 12.8, for AI-TOD).
    cfg.MODEL.FOCAL_EIOU.NWD_CONSTANT = hyperparams.NWD_CONSTANT
    # Weight of RetinaNet's box-regression loss (Detectron2 has no such key; the paper uses 1.0
    # for l_n-norm losses and 2.5 for IoU-based losses).
    cfg.MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT = 1.0
