"""Alpha-IoU loss: 1 - IoU^alpha.

He, Erfani, Ma, Bailey, Chi, Hua, "Alpha-IoU: A Family of Power Intersection over Union Losses for
Bounding Box Regression", NeurIPS 2021, arXiv 2110.13675. The paper's family also raises
the penalty terms of GIoU, DIoU and CIoU to powers; only the plain form 1 - IoU^alpha is here.
"""

import torch

from .hyperparams import ALPHA_IOU_ALPHA, EPS, check_eps, check_positive
from .iou_losses import box_pair_geometry
from .loss_utils import check_reduction, reduce_loss


def alpha_iou_loss(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    alpha: float = ALPHA_IOU_ALPHA,
    reduction: str = "none",
    eps: float = EPS,
) -> torch.Tensor:
    """Alpha-IoU loss: 1 - IoU^alpha; alpha = 1 gives the IoU loss.

    A non-overlapping pair (IoU = 0) has loss 1 and no gradient, for every alpha (for alpha < 1
    the derivative of IoU^alpha is infinite at 0; the power is taken only where IoU > 0).

    Args:
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY.
        boxes2 (Tensor[..., 4]): target boxes, XYXY.
        alpha (float): the power, finite and > 0 (the paper recommends 3).
        reduction (str): "none" | "sum" | "mean".
        eps (float): added to the union before dividing; finite and > 0.

    Returns:
        Tensor: shape (...) for "none", else a scalar; float32 for half-precision and integer
        inputs.
    """
    check_reduction(reduction)
    check_positive("alpha", alpha)
    check_eps(eps)
    return reduce_loss(alpha_iou_per_pair(boxes1, boxes2, alpha, eps), reduction)


def alpha_iou_per_pair(
    boxes1: torch.Tensor, boxes2: torch.Tensor, alpha: float = ALPHA_IOU_ALPHA, eps: float = EPS
) -> torch.Tensor:
    """Per-pair Alpha-IoU loss, without argument checks; see :func:`alpha_iou_loss`."""
    iou = box_pair_geometry(boxes1, boxes2, eps).iou
    overlaps = iou > 0
    return 1 - torch.where(overlaps, torch.where(overlaps, iou, 1.0) ** alpha, 0.0)
