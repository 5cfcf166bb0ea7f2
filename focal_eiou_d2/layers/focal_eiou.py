"""Focal-EIoU loss (Eq. 10, 11) and the two ablation variants of Sec. 5.4.4.

As in :mod:`.iou_losses`, each loss has a public, checked form and an unchecked per-pair form.
"""

import torch

from .focal import FOCAL_REDUCTIONS, focal_reduce, focal_terms
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
from .loss_utils import check_reduction, reduce_loss


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
    check_reduction(reduction, FOCAL_REDUCTIONS)
    check_gamma(gamma)
    check_eps(eps)
    check_flag("detach_weight", detach_weight)
    eiou, weight = focal_eiou_terms(boxes1, boxes2, gamma, eps, detach_weight)
    return focal_reduce(eiou, weight, reduction)


def focal_eiou_terms(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    gamma: float = FOCAL_EIOU_GAMMA,
    eps: float = EPS,
    detach_weight: bool = FOCAL_EIOU_DETACH_WEIGHT,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two factors of Focal-EIoU (Eq. 10), unchecked: L_EIoU and the weight W = IoU^gamma.

    Args:
        boxes1, boxes2, gamma, eps, detach_weight: as :func:`focal_eiou_loss` (not checked).

    Returns:
        tuple[Tensor, Tensor]: L_EIoU and W, both of shape (...).
    """
    return focal_terms(eiou_and_iou, boxes1, boxes2, gamma, detach_weight, eps=eps)


def focal_eiou_per_pair(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    gamma: float = FOCAL_EIOU_GAMMA,
    eps: float = EPS,
    detach_weight: bool = FOCAL_EIOU_DETACH_WEIGHT,
) -> torch.Tensor:
    """Per-pair Focal-EIoU loss W * L_EIoU (Eq. 10), unchecked; see :func:`focal_eiou_loss`."""
    eiou, weight = focal_eiou_terms(boxes1, boxes2, gamma, eps, detach_weight)
    return weight * eiou


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
    check_focal_l1_beta(beta)
    check_eps(eps)
    return reduce_loss(focal_eiou_v1_per_pair(boxes1, boxes2, beta, eps), reduction)


def focal_eiou_v1_per_pair(
    boxes1: torch.Tensor, boxes2: torch.Tensor, beta: float = FOCAL_L1_BETA, eps: float = EPS
) -> torch.Tensor:
    """Per-pair Focal-EIoU v1, unchecked; see :func:`focal_eiou_v1_loss`."""
    return focal_l1(eiou_and_iou(boxes1, boxes2, eps)[0], beta)


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
    check_gamma(gamma)
    check_eps(eps)
    return reduce_loss(focal_eiou_star_per_pair(boxes1, boxes2, gamma, eps), reduction)


def focal_eiou_star_per_pair(
    boxes1: torch.Tensor, boxes2: torch.Tensor, gamma: float = FOCAL_EIOU_GAMMA, eps: float = EPS
) -> torch.Tensor:
    """Per-pair Focal-EIoU*, unchecked; see :func:`focal_eiou_star_loss`."""
    eiou, iou = eiou_and_iou(boxes1, boxes2, eps)
    focusing = (1 - iou).clamp(min=eps) ** gamma
    return -focusing * torch.log(iou.clamp(min=eps)) * eiou
