"""Shape-IoU loss: DIoU and SIoU's shape cost, each axis weighted by the target's shape.

Zhang & Zhang, "Shape-IoU: More Accurate Metric considering Bounding Box Shape and Scale",
arXiv 2312.17663, and the authors' code (malagoutou/Shape-IoU).
"""

import torch

from .hyperparams import (
    EPS,
    SHAPE_IOU_SCALE,
    SIOU_THETA,
    check_eps,
    check_non_negative,
    check_theta,
)
from .iou_losses import at_least, box_pair_geometry
from .loss_utils import check_reduction, reduce_loss
from .siou import siou_shape_cost


def shape_iou_loss(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    scale: float = SHAPE_IOU_SCALE,
    theta: float = SIOU_THETA,
    reduction: str = "none",
    eps: float = EPS,
) -> torch.Tensor:
    """Shape-IoU loss: 1 - IoU + distance^shape + 0.5 Omega^shape.

    * ww = 2 w_gt^s / (w_gt^s + h_gt^s), hh = 2 h_gt^s / (w_gt^s + h_gt^s), s = ``scale``;
    * distance^shape = hh (cx - cx_gt)^2 / c^2 + ww (cy - cy_gt)^2 / c^2, c^2 = C_w^2 + C_h^2;
    * Omega^shape = sum_{t=w,h} (1 - exp(-omega_t))^theta with
      omega_w = hh |w - w_gt| / max(w, w_gt) and omega_h = ww |h - h_gt| / max(h, h_gt).

    With scale = 0, ww = hh = 1 and this is DIoU plus half of SIoU's shape cost. The paper fixes
    theta = 4; it is a parameter here as in :func:`.siou.siou_loss`.

    The weights are computed as ww = 2 sigmoid(s (ln w_gt - ln h_gt)) and hh = 2 - ww (the same
    values, free of overflow for large sides or scales), with each side clamped to >= eps inside
    the log (a target side of 0 then counts as eps, and two zero sides give ww = hh = 1).

    Args:
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY.
        boxes2 (Tensor[..., 4]): target boxes, XYXY.
        scale (float): s, finite and >= 0; the paper relates it to the targets' scale in the
            data set.
        theta (float): exponent of the shape cost, finite and >= 1.
        reduction (str): "none" | "sum" | "mean".
        eps (float): added to the union, to c^2 and to the shape cost's denominators, and the
            lower bound of the sides inside the log; finite and > 0.

    Returns:
        Tensor: shape (...) for "none", else a scalar; float32 for half-precision and integer
        inputs.
    """
    check_reduction(reduction)
    check_non_negative("scale", scale)
    check_theta(theta)
    check_eps(eps)
    return reduce_loss(shape_iou_per_pair(boxes1, boxes2, scale, theta, eps), reduction)


def shape_iou_per_pair(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    scale: float = SHAPE_IOU_SCALE,
    theta: float = SIOU_THETA,
    eps: float = EPS,
) -> torch.Tensor:
    """Per-pair Shape-IoU loss, without argument checks; see :func:`shape_iou_loss`."""
    geometry = box_pair_geometry(boxes1, boxes2, eps)
    width_weight, height_weight = shape_weights(geometry.width2, geometry.height2, scale, eps)
    dx, dy = geometry.centre_dx, geometry.centre_dy
    diagonal_sq = geometry.enclosing_width**2 + geometry.enclosing_height**2
    distance = (height_weight * dx**2 + width_weight * dy**2) / (diagonal_sq + eps)
    shape = siou_shape_cost(
        geometry.width1,
        geometry.height1,
        geometry.width2,
        geometry.height2,
        theta,
        eps,
        width_weight=height_weight,  # omega_w is weighted by hh
        height_weight=width_weight,  # omega_h by ww
    )
    return 1 - geometry.iou + distance + 0.5 * shape


def shape_weights(
    width: torch.Tensor, height: torch.Tensor, scale: float, eps: float = EPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape-IoU's weights (ww, hh) of a target of sides (w_gt, h_gt); ww + hh = 2.

    Args:
        width, height (Tensor[...]): w_gt and h_gt.
        scale (float): s, >= 0 (not checked here).
        eps (float): lower bound of the sides inside the log (no gradient where it applies).

    Returns:
        tuple[Tensor, Tensor]: ww = 2 w_gt^s / (w_gt^s + h_gt^s) and hh = 2 h_gt^s / (...).
    """
    log_ratio = torch.log(at_least(width, eps)) - torch.log(at_least(height, eps))
    return 2 * torch.sigmoid(scale * log_ratio), 2 * torch.sigmoid(-scale * log_ratio)
