"""SIoU loss and its three costs (angle, distance, shape); Shape-IoU reuses the shape cost.

Gevorgyan, "SIoU Loss: More Powerful Learning for Bounding Box Regression", arXiv 2205.12740
(its angle, distance, shape and IoU costs): L = 1 - IoU + (Delta + Omega) / 2, with the angle cost
Lambda setting the sharpness of the distance cost Delta, and the shape cost Omega.
"""

import torch

from .hyperparams import EPS, SIOU_THETA, check_eps, check_theta
from .iou_losses import box_pair_geometry
from .loss_utils import check_reduction, reduce_loss


def siou_loss(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    theta: float = SIOU_THETA,
    reduction: str = "none",
    eps: float = EPS,
) -> torch.Tensor:
    """SIoU loss: 1 - IoU + (Delta + Omega) / 2.

    With (dx, dy) the offset between the box centres and sigma its length:

    * angle cost: Lambda = 1 - 2 sin^2(arcsin(|dy| / sigma) - pi / 4). Since
      |dy| / sigma = sin(alpha), alpha the angle of the offset to the x axis, this is
      cos(2 alpha - pi / 2) = sin(2 alpha) = 2 |dx| |dy| / sigma^2, which is computed here: it is
      symmetric in x and y (the paper's switch to beta = pi / 2 - alpha above pi / 4 changes
      nothing) and has no arcsin with its infinite slope at |dy| = sigma;
    * distance cost: Delta = sum_{t=x,y} (1 - exp(-gamma rho_t)), gamma = 2 - Lambda,
      rho_x = (dx / C_w)^2, rho_y = (dy / C_h)^2, C_w and C_h the enclosing box's sides;
    * shape cost: Omega, see :func:`siou_shape_cost`.

    Args:
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY.
        boxes2 (Tensor[..., 4]): target boxes, XYXY.
        theta (float): exponent of the shape cost, finite and >= 1 (the paper uses 4 and
            suggests 2 to 6).
        reduction (str): "none" | "sum" | "mean".
        eps (float): added to the union and to every denominator (sigma^2, C_w^2, C_h^2 and the
            shape cost's max(w, w_gt), max(h, h_gt)); finite and > 0.

    Returns:
        Tensor: shape (...) for "none", else a scalar; float32 for half-precision and integer
        inputs.
    """
    check_reduction(reduction)
    check_theta(theta)
    check_eps(eps)
    return reduce_loss(siou_per_pair(boxes1, boxes2, theta, eps), reduction)


def siou_per_pair(
    boxes1: torch.Tensor, boxes2: torch.Tensor, theta: float = SIOU_THETA, eps: float = EPS
) -> torch.Tensor:
    """Per-pair SIoU loss, without argument checks; see :func:`siou_loss`."""
    geometry = box_pair_geometry(boxes1, boxes2, eps)
    dx, dy = geometry.centre_dx, geometry.centre_dy
    angle = 2 * dx.abs() * dy.abs() / (dx**2 + dy**2 + eps)  # Lambda = sin(2 alpha)
    gamma = 2 - angle
    rho_x = dx**2 / (geometry.enclosing_width**2 + eps)
    rho_y = dy**2 / (geometry.enclosing_height**2 + eps)
    distance = -torch.expm1(-gamma * rho_x) - torch.expm1(-gamma * rho_y)  # Delta
    shape = siou_shape_cost(
        geometry.width1, geometry.height1, geometry.width2, geometry.height2, theta, eps
    )
    return 1 - geometry.iou + (distance + shape) / 2


def siou_shape_cost(
    width1: torch.Tensor,
    height1: torch.Tensor,
    width2: torch.Tensor,
    height2: torch.Tensor,
    theta: float = SIOU_THETA,
    eps: float = EPS,
    width_weight: torch.Tensor | float = 1.0,
    height_weight: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    """SIoU's shape cost Omega = sum_{t=w,h} (1 - exp(-omega_t))^theta.

    omega_w = width_weight * |w - w_gt| / max(w, w_gt), omega_h likewise with the heights. SIoU
    has both weights 1; Shape-IoU weighs omega_w by hh and omega_h by ww.

    Args:
        width1, height1 (Tensor[...]): w, h of the predicted boxes.
        width2, height2 (Tensor[...]): w_gt, h_gt of the target boxes.
        theta (float): the exponent, >= 1 (not checked here).
        eps (float): added to max(w, w_gt) and max(h, h_gt) before dividing.
        width_weight, height_weight (Tensor[...] or float): factors of omega_w and omega_h.

    Returns:
        Tensor: Omega, shape (...); in [0, 2) for finite weights >= 0.
    """
    omega_w = width_weight * (width1 - width2).abs() / (torch.maximum(width1, width2) + eps)
    omega_h = height_weight * (height1 - height2).abs() / (torch.maximum(height1, height2) + eps)
    return (-torch.expm1(-omega_w)) ** theta + (-torch.expm1(-omega_h)) ** theta
