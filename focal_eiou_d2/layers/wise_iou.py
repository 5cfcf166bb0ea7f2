"""Wise-IoU v1 and v3: the IoU loss scaled by a distance attention, and (v3) by a non-monotonic
focusing coefficient of each pair's outlier degree.

Tong, Chen, Xu, Yu, "Wise-IoU: Bounding Box Regression Loss with Dynamic Focusing Mechanism",
arXiv 2301.10051 (its definitions of v1 and v3), and the authors' code (Instinct323/wiou), which
settles what carries gradient: in v1 only the denominator C_w^2 + C_h^2 is detached, in v3 the
outlier degree beta is.

The running mean of 1 - IoU that v3 needs is training state: the caller keeps it (updating it with
:func:`wiou_momentum`'s momentum) and passes it in; these functions never update it. The detection
heads keep it as a buffer and update it before computing the loss, which then uses the updated
mean, as the authors' code does (focal_eiou_d2/modeling/box_loss.py).
"""

import math

import torch

from .hyperparams import (
    EPS,
    WIOU_ALPHA,
    WIOU_DELTA,
    WIOU_MOMENTUM_RESIDUAL,
    check_eps,
    check_positive,
)
from .iou_losses import box_pair_geometry
from .loss_utils import check_reduction, reduce_loss


def wiou_v1_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = EPS
) -> torch.Tensor:
    """Wise-IoU v1: R_WIoU * L_IoU.

    R_WIoU = exp(((cx - cx_gt)^2 + (cy - cy_gt)^2) / (C_w^2 + C_h^2)*), where ``*`` marks the
    detached denominator: the gradient flows through the centre distance and
    through L_IoU = 1 - IoU, not through the enclosing box's diagonal (detaching the whole factor
    R_WIoU, as some copies do, is a different loss). R_WIoU lies in [1, e).

    Args:
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY.
        boxes2 (Tensor[..., 4]): target boxes, XYXY.
        reduction (str): "none" | "sum" | "mean".
        eps (float): added to the union and to C_w^2 + C_h^2; finite and > 0.

    Returns:
        Tensor: shape (...) for "none", else a scalar; float32 for half-precision and integer
        inputs.
    """
    check_reduction(reduction)
    check_eps(eps)
    return reduce_loss(wiou_v1_per_pair(boxes1, boxes2, eps), reduction)


def wiou_v1_per_pair(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Per-pair Wise-IoU v1 loss, without argument checks; see :func:`wiou_v1_loss`."""
    return wiou_v1_and_iou_loss(boxes1, boxes2, eps)[0]


def wiou_v3_loss(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    iou_loss_mean: float | torch.Tensor,
    alpha: float = WIOU_ALPHA,
    delta: float = WIOU_DELTA,
    reduction: str = "none",
    eps: float = EPS,
) -> torch.Tensor:
    """Wise-IoU v3: r * L_WIoUv1, r = beta / (delta * alpha^(beta - delta)).

    beta = L_IoU* / mean(L_IoU) is the pair's outlier degree, detached (``*``), with mean(L_IoU)
    the running mean ``iou_loss_mean`` of 1 - IoU. r = 1 where beta = delta; r is computed as
    (beta / delta) * alpha^(delta - beta), the same value without an infinite intermediate.

    Args:
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY.
        boxes2 (Tensor[..., 4]): target boxes, XYXY.
        iou_loss_mean (float or Tensor[]): the running mean of 1 - IoU, a number > 0 or a 0-dim
            tensor (detached here; clamped to >= eps, since checking it would read it from the
            device). Not updated.
        alpha (float): finite and > 0 (the paper's 1.9).
        delta (float): finite and > 0 (the paper's 3); the outlier degree at which r = 1.
        reduction (str): "none" | "sum" | "mean".
        eps (float): added to the union and to C_w^2 + C_h^2, and the lower bound of a tensor
            ``iou_loss_mean``; finite and > 0.

    Returns:
        Tensor: shape (...) for "none", else a scalar; float32 for half-precision and integer
        inputs.
    """
    check_reduction(reduction)
    check_positive("alpha", alpha)
    check_positive("delta", delta)
    check_eps(eps)
    if isinstance(iou_loss_mean, torch.Tensor):
        if iou_loss_mean.dim() != 0:
            raise ValueError(
                f"iou_loss_mean must be a number or a 0-dim tensor, got shape "
                f"{tuple(iou_loss_mean.shape)}"
            )
    else:
        check_positive("iou_loss_mean", iou_loss_mean)
    return reduce_loss(
        wiou_v3_per_pair(boxes1, boxes2, iou_loss_mean, alpha, delta, eps), reduction
    )


def wiou_v3_per_pair(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    iou_loss_mean: float | torch.Tensor,
    alpha: float = WIOU_ALPHA,
    delta: float = WIOU_DELTA,
    eps: float = EPS,
) -> torch.Tensor:
    """Per-pair Wise-IoU v3 loss, without argument checks; see :func:`wiou_v3_loss`."""
    v1, iou_loss = wiou_v1_and_iou_loss(boxes1, boxes2, eps)
    if isinstance(iou_loss_mean, torch.Tensor):
        iou_loss_mean = iou_loss_mean.detach().to(device=v1.device, dtype=v1.dtype).clamp(min=eps)
    beta = iou_loss.detach() / iou_loss_mean  # outlier degree
    focusing = beta / delta * alpha ** (delta - beta)  # r = beta / (delta * alpha^(beta - delta))
    return focusing * v1


def wiou_v1_and_iou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = EPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair Wise-IoU v1 loss and the L_IoU = 1 - IoU it scales, for v3.

    Args:
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY.
        boxes2 (Tensor[..., 4]): target boxes, XYXY.
        eps (float): added to the union and to C_w^2 + C_h^2.

    Returns:
        tuple[Tensor, Tensor]: L_WIoUv1 and L_IoU, both of shape (...).
    """
    geometry = box_pair_geometry(boxes1, boxes2, eps)
    diagonal_sq = geometry.enclosing_width**2 + geometry.enclosing_height**2
    attention = torch.exp(geometry.centre_distance_sq / (diagonal_sq.detach() + eps))  # R_WIoU
    iou_loss = 1 - geometry.iou
    return attention * iou_loss, iou_loss


def wiou_momentum(num_steps: float, residual: float = WIOU_MOMENTUM_RESIDUAL) -> float:
    """Momentum m of the running mean of 1 - IoU, by the Wise-IoU paper's rule.

    The mean is updated as mean <- (1 - m) * mean + m * batch_mean once per step; m is chosen so
    that the initial value's weight (1 - m)^num_steps falls to ``residual`` (5 %) after
    ``num_steps`` steps: m = 1 - residual^(1 / num_steps). The paper takes num_steps = t * n, n
    batches per epoch and t the epoch at which the AP gains slow down markedly.

    Args:
        num_steps (float): the horizon, in updates; finite and > 0.
        residual (float): the initial value's weight left after ``num_steps``; in (0, 1).

    Returns:
        float: m, in (0, 1).
    """
    check_positive("num_steps", num_steps)
    check_positive("residual", residual)
    if residual >= 1:
        raise ValueError(f"residual must lie in (0, 1), got {residual!r}")
    return -math.expm1(math.log(residual) / num_steps)
