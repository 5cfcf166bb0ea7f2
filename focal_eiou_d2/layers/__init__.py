"""Pure-PyTorch box-regression losses: the IoU family, EIoU, FocalL1, Focal-EIoU, BalancedL1."""

from .balanced_l1 import balanced_l1_loss
from .box_geometry import BoxPairGeometry, box_pair_geometry
from .fast_path import FUSED_LOSSES, compile_error, path_counts, select_path, set_fast_path
from .focal_eiou import focal_eiou_loss, focal_eiou_star_loss, focal_eiou_v1_loss
from .focal_l1 import focal_l1_loss
from .iou_losses import ciou_loss, diou_loss, eiou_loss, giou_loss, iou_loss
from .registry import BOX_LOSSES, BoxLossSpec, box_regression_loss
from .smooth_l1 import smooth_l1_loss

__all__ = [
    "BOX_LOSSES",
    "BoxLossSpec",
    "BoxPairGeometry",
    "FUSED_LOSSES",
    "balanced_l1_loss",
    "box_pair_geometry",
    "box_regression_loss",
    "ciou_loss",
    "compile_error",
    "diou_loss",
    "eiou_loss",
    "focal_eiou_loss",
    "focal_eiou_star_loss",
    "focal_eiou_v1_loss",
    "focal_l1_loss",
    "giou_loss",
    "iou_loss",
    "path_counts",
    "select_path",
    "set_fast_path",
    "smooth_l1_loss",
]
