"""Pure-PyTorch box-regression losses: the IoU family, EIoU, FocalL1, Focal-EIoU, BalancedL1, and
the box-loss zoo (SIoU, Shape-IoU, Wise-IoU, Alpha-IoU, MPDIoU, Inner-IoU, NWD)."""

from .alpha_iou import alpha_iou_loss
from .balanced_l1 import balanced_l1_loss
from .focal import normalize_by_weights
from .focal_eiou import focal_eiou_loss, focal_eiou_star_loss, focal_eiou_terms, focal_eiou_v1_loss
from .focal_l1 import focal_l1_loss
from .inner_iou import inner_iou_loss
from .iou_losses import (
    BoxPairGeometry,
    box_pair_geometry,
    ciou_loss,
    diou_loss,
    eiou_loss,
    giou_loss,
    iou_loss,
)
from .mpdiou import mpdiou_loss
from .nwd import nwd_loss
from .registry import (
    BOX_LOSSES,
    BoxLossParameterError,
    BoxLossSpec,
    box_regression_loss,
    check_box_loss,
    get_box_loss,
)
from .shape_iou import shape_iou_loss
from .siou import siou_loss
from .smooth_l1 import smooth_l1_loss
from .wise_iou import wiou_momentum, wiou_v1_loss, wiou_v3_loss

__all__ = [
    "BOX_LOSSES",
    "BoxLossParameterError",
    "BoxLossSpec",
    "BoxPairGeometry",
    "alpha_iou_loss",
    "balanced_l1_loss",
    "box_pair_geometry",
    "box_regression_loss",
    "check_box_loss",
    "ciou_loss",
    "diou_loss",
    "eiou_loss",
    "focal_eiou_loss",
    "focal_eiou_star_loss",
    "focal_eiou_terms",
    "focal_eiou_v1_loss",
    "focal_l1_loss",
    "get_box_loss",
    "giou_loss",
    "inner_iou_loss",
    "iou_loss",
    "mpdiou_loss",
    "normalize_by_weights",
    "nwd_loss",
    "shape_iou_loss",
    "siou_loss",
    "smooth_l1_loss",
    "wiou_momentum",
    "wiou_v1_loss",
    "wiou_v3_loss",
]
