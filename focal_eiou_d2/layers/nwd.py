"""NWD loss: one minus the normalized Wasserstein distance between boxes seen as 2-D Gaussians.

Wang, Xu, Yang, Yu, "A Normalized Gaussian Wasserstein Distance for Tiny Object Detection",
arXiv 2110.13389 (Gaussian modelling of boxes, the normalized Wasserstein distance and the
NWD-based regression loss).
"""

import torch

from .hyperparams import EPS, NWD_CONSTANT, check_eps, check_positive
from .iou_losses import box_pair_geometry
from .loss_utils import check_reduction, reduce_loss


def nwd_loss(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    constant: float = NWD_CONSTANT,
    reduction: str = "none",
    eps: float = EPS,
) -> torch.Tensor:
    """NWD loss: 1 - exp(-W_2 / C).

    Each box is the Gaussian N((cx, cy), diag(w / 2, h / 2)^2), and the squared 2-Wasserstein
    distance between two such Gaussians is
    W_2^2 = (cx - cx_gt)^2 + (cy - cy_gt)^2 + ((w - w_gt) / 2)^2 + ((h - h_gt) / 2)^2.
    C is a data-set constant in the boxes' units (12.8 px, AI-TOD's average object size, in the
    paper). Unlike the IoU losses, NWD does not saturate for non-overlapping boxes.

    At W_2 = 0 (identical boxes) the loss is 0 with gradient 0 (the square root is taken only
    where W_2^2 > 0, since its derivative is infinite at 0).

    Args:
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY.
        boxes2 (Tensor[..., 4]): target boxes, XYXY.
        constant (float): C, finite and > 0.
        reduction (str): "none" | "sum" | "mean".
        eps (float): passed to the box geometry (NWD itself divides only by C); finite and > 0.

    Returns:
        Tensor: shape (...) for "none", else a scalar; float32 for half-precision and integer
        inputs.
    """
    check_reduction(reduction)
    check_positive("constant", constant)
    check_eps(eps)
    return reduce_loss(nwd_per_pair(boxes1, boxes2, constant, eps), reduction)


def nwd_per_pair(
    boxes1: torch.Tensor, boxes2: torch.Tensor, constant: float = NWD_CONSTANT, eps: float = EPS
) -> torch.Tensor:
    """Per-pair NWD loss, without argument checks; see :func:`nwd_loss`."""
    geometry = box_pair_geometry(boxes1, boxes2, eps)
    distance_sq = (
        geometry.centre_distance_sq
        + (geometry.width1 - geometry.width2) ** 2 / 4
        + (geometry.height1 - geometry.height2) ** 2 / 4
    )  # W_2^2
    positive = distance_sq > 0
    distance = torch.where(positive, torch.where(positive, distance_sq, 1.0).sqrt(), 0.0)
    return -torch.expm1(-distance / constant)  # 1 - NWD
