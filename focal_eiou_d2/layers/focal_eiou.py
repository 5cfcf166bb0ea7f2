"""Focal-EIoU loss (Eq. 10, 11) and the two ablation variants of Sec. 5.4.4."""

import torch

from .fast_path import fused_loss
from .focal_l1 import focal_l1
from .hyperparams import (
    EPS,
    FOCAL_EIOU_DETACH_WEIGHT,
    FOCAL_EIOU_GAMMA,
    FOCAL_L1_BETA,
    check_eps,
    check_flag,
    check_focal_l1_beta,
    check_gamma,
)
from .iou_losses import eiou_and_iou
from .loss_utils import REDUCTIONS, check_reduction, reduce_loss

FOCAL_EIOU_REDUCTIONS = REDUCTIONS + ("weighted",)
"""Reductions of :func:`focal_eiou_loss`: "weighted" is Eq. 11."""


def focal_eiou_loss(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    gamma: float = FOCAL_EIOU_GAMMA,
    reduction: str = "none",
    eps: float = EPS,
    detach_weight: bool = FOCAL_EIOU_DETACH_WEIGHT,
) -> torch.Tensor:
    """Focal-EIoU loss (Eq. 10): IoU^gamma * L_EIoU.

    Args:
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY.
        boxes2 (Tensor[..., 4]): target boxes, XYXY.
        gamma (float): focusing exponent, finite and >= 0; gamma = 0 gives the EIoU loss.
        reduction (str): "none" | "sum" | "mean" | "weighted". "weighted" is Eq. 11,
            sum_i W_i * L_EIoU_i / sum_i W_i with W_i = IoU_i^gamma; it is 0 (graph kept) when
            every weight is 0.
        eps (float): added to every denominator of EIoU; finite and > 0.
        detach_weight (bool): if True, the weight IoU^gamma is a constant of the graph, so a
            non-overlapping pair (weight 0) gets no gradient. If False, the weight is
            differentiated through, with IoU clamped to >= eps (the derivative of IoU^gamma is
            infinite at IoU = 0 for gamma < 1).

    Returns:
        Tensor: shape (...) for "none", else a scalar.
    """
    check_reduction(reduction, FOCAL_EIOU_REDUCTIONS)
    check_gamma(gamma)
    check_eps(eps)
    check_flag("detach_weight", detach_weight)
    fused = fused_loss(
        "focal_eiou", boxes1, boxes2, reduction, gamma=gamma, eps=eps, detach_weight=detach_weight
    )
    if fused is not None:
        return fused
    eiou, iou = eiou_and_iou(boxes1, boxes2, eps)
    weight = iou.detach() ** gamma if detach_weight else iou.clamp(min=eps) ** gamma
    if reduction == "weighted":
        return _weighted_mean(eiou, weight)
    return reduce_loss(weight * eiou, reduction)  # Eq. 10


def focal_eiou_v1_loss(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    beta: float = FOCAL_L1_BETA,
    reduction: str = "none",
    eps: float = EPS,
) -> torch.Tensor:
    """Focal-EIoU v1 (Sec. 5.4.4): FocalL1 (Eq. 9) applied with x = L_EIoU.

    Args:
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY.
        boxes2 (Tensor[..., 4]): target boxes, XYXY.
        beta (float): FocalL1's beta, in [1/e, 1].
        reduction (str): "none" | "sum" | "mean".
        eps (float): added to every denominator of EIoU; finite and > 0.

    Returns:
        Tensor: shape (...) for "none", else a scalar.
    """
    check_reduction(reduction)
    check_focal_l1_beta(beta)
    check_eps(eps)
    eiou, _ = eiou_and_iou(boxes1, boxes2, eps)
    return reduce_loss(focal_l1(eiou, beta), reduction)


def focal_eiou_star_loss(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    gamma: float = FOCAL_EIOU_GAMMA,
    reduction: str = "none",
    eps: float = EPS,
) -> torch.Tensor:
    """Focal-EIoU* (Sec. 5.4.4): -(1 - IoU)^gamma * log(IoU) * L_EIoU.

    IoU is clamped to >= eps inside the log (finite at IoU = 0) and 1 - IoU to >= eps inside the
    power (finite gradient at IoU = 1); identical boxes give 0.

    Args:
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY.
        boxes2 (Tensor[..., 4]): target boxes, XYXY.
        gamma (float): focusing exponent, finite and >= 0.
        reduction (str): "none" | "sum" | "mean".
        eps (float): added to every denominator of EIoU and used as the clamp bound; finite
            and > 0.

    Returns:
        Tensor: shape (...) for "none", else a scalar.
    """
    check_reduction(reduction)
    check_gamma(gamma)
    check_eps(eps)
    eiou, iou = eiou_and_iou(boxes1, boxes2, eps)
    focusing = (1 - iou).clamp(min=eps) ** gamma
    loss = -focusing * torch.log(iou.clamp(min=eps)) * eiou
    return reduce_loss(loss, reduction)


def _weighted_mean(loss: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Eq. 11: sum_i W_i * L_i / sum_i W_i; 0, graph kept, when every weight is 0.

    Clamping the denominator to the smallest positive float keeps this free of branches on
    tensor values: with all weights 0 the numerator is 0 as well.
    """
    total_weight = weight.sum()
    smallest = torch.finfo(total_weight.dtype).tiny
    return (weight * loss).sum() / total_weight.clamp(min=smallest)
