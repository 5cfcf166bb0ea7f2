"""IoU-family box-regression losses on XYXY boxes: IoU, GIoU, DIoU, CIoU and EIoU.

Equation numbers refer to Zhang et al., "Focal and efficient IOU loss for accurate bounding box
regression", Neurocomputing 2022. Every loss takes boxes of shape (..., 4) and, with
reduction="none", returns shape (...). Half-precision inputs are computed (and returned) in
float32, float64 stays float64.

Each function first offers the call to the fast path (:func:`.fast_path.fused_loss`); where it
declines, the function's own autograd code below, the reference, computes the loss.
"""

import math

import torch

from .box_geometry import BoxPairGeometry, box_pair_geometry
from .fast_path import fused_loss
from .hyperparams import EPS, check_eps
from .loss_utils import check_reduction, reduce_loss


def iou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = EPS
) -> torch.Tensor:
    """IoU loss (Eq. 3): 1 - IoU.

    Args:
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY.
        boxes2 (Tensor[..., 4]): target boxes, XYXY.
        reduction (str): "none" | "sum" | "mean".
        eps (float): added to the union before dividing; finite and > 0.

    Returns:
        Tensor: shape (...) for "none", else a scalar.
    """
    check_reduction(reduction)
    check_eps(eps)
    fused = fused_loss("iou", boxes1, boxes2, reduction, eps=eps)
    if fused is not None:
        return fused
    geometry = box_pair_geometry(boxes1, boxes2, eps)
    return reduce_loss(1 - geometry.iou, reduction)  # Eq. 3


def giou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = EPS
) -> torch.Tensor:
    """Generalized IoU loss (Eq. 4): 1 - IoU + |C - (A u B)| / |C|, C the enclosing box.

    Args and Returns: as :func:`iou_loss`; ``eps`` is also added to |C| before dividing.
    """
    check_reduction(reduction)
    check_eps(eps)
    fused = fused_loss("giou", boxes1, boxes2, reduction, eps=eps)
    if fused is not None:
        return fused
    geometry = box_pair_geometry(boxes1, boxes2, eps)
    enclosing_area = geometry.enclosing_width * geometry.enclosing_height
    loss = 1 - geometry.iou + (enclosing_area - geometry.union) / (enclosing_area + eps)  # Eq. 4
    return reduce_loss(loss, reduction)


def diou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = EPS
) -> torch.Tensor:
    """Distance IoU loss: 1 - IoU + rho^2 / c^2 (Eq. 5 without the aspect-ratio term).

    Args and Returns: as :func:`iou_loss`; ``eps`` is also added to c^2 before dividing.
    """
    check_reduction(reduction)
    check_eps(eps)
    fused = fused_loss("diou", boxes1, boxes2, reduction, eps=eps)
    if fused is not None:
        return fused
    geometry = box_pair_geometry(boxes1, boxes2, eps)
    loss = 1 - geometry.iou + _centre_distance_penalty(geometry, eps)
    return reduce_loss(loss, reduction)


def ciou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = EPS
) -> torch.Tensor:
    """Complete IoU loss (Eq. 5): 1 - IoU + rho^2 / c^2 + alpha * v.

    As in torchvision and detectron2, the trade-off weight alpha carries no gradient.

    Args and Returns: as :func:`iou_loss`; ``eps`` is also added to c^2 and to the
    denominator of alpha, and heights are clamped to >= eps inside atan(w / h).
    """
    check_reduction(reduction)
    check_eps(eps)
    fused = fused_loss("ciou", boxes1, boxes2, reduction, eps=eps)
    if fused is not None:
        return fused
    geometry = box_pair_geometry(boxes1, boxes2, eps)
    v = _aspect_ratio_penalty(geometry, eps)
    with torch.no_grad():
        alpha = v / (1 - geometry.iou + v + eps)
    loss = 1 - geometry.iou + _centre_distance_penalty(geometry, eps) + alpha * v  # Eq. 5
    return reduce_loss(loss, reduction)


def eiou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = EPS
) -> torch.Tensor:
    """Efficient IoU loss (Eq. 7).

    1 - IoU + rho^2 / (w_c^2 + h_c^2) + (w - w_gt)^2 / w_c^2 + (h - h_gt)^2 / h_c^2, which lies
    in [0, 4).

    Args and Returns: as :func:`iou_loss`; ``eps`` is also added to every denominator.
    """
    check_reduction(reduction)
    check_eps(eps)
    fused = fused_loss("eiou", boxes1, boxes2, reduction, eps=eps)
    if fused is not None:
        return fused
    loss, _ = eiou_and_iou(boxes1, boxes2, eps)
    return reduce_loss(loss, reduction)


def eiou_and_iou(
    boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = EPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair EIoU loss (Eq. 7) and the IoU it contains, for the focal variants.

    Args:
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY.
        boxes2 (Tensor[..., 4]): target boxes, XYXY.
        eps (float): added to every denominator.

    Returns:
        tuple[Tensor, Tensor]: the EIoU loss and the IoU, both of shape (...).
    """
    geometry = box_pair_geometry(boxes1, boxes2, eps)
    enclosing_width_sq = geometry.enclosing_width**2
    enclosing_height_sq = geometry.enclosing_height**2
    width_penalty = (geometry.width1 - geometry.width2) ** 2 / (enclosing_width_sq + eps)
    height_penalty = (geometry.height1 - geometry.height2) ** 2 / (enclosing_height_sq + eps)
    loss = (
        1 - geometry.iou + _centre_distance_penalty(geometry, eps) + width_penalty + height_penalty
    )  # Eq. 7
    return loss, geometry.iou


def _centre_distance_penalty(geometry: BoxPairGeometry, eps: float) -> torch.Tensor:
    """rho^2 / (w_c^2 + h_c^2), the centre-distance term of DIoU, CIoU and EIoU."""
    diagonal_sq = geometry.enclosing_width**2 + geometry.enclosing_height**2
    return geometry.centre_distance_sq / (diagonal_sq + eps)


def _aspect_ratio_penalty(geometry: BoxPairGeometry, eps: float) -> torch.Tensor:
    """v = 4 / pi^2 * (atan(w_gt / h_gt) - atan(w / h))^2 of CIoU (Eq. 5).

    Clamping the heights to >= eps (rather than adding eps) keeps v bit-identical to the
    unguarded formula for every box taller than eps. The clamp is written out so that a height of
    exactly eps gets no gradient on every torch version (``clamp``'s own gradient at its bound
    changed between releases: 2.11 passes it, 2.14 blocks it).
    """
    angle1 = torch.atan(geometry.width1 / _at_least(geometry.height1, eps))
    angle2 = torch.atan(geometry.width2 / _at_least(geometry.height2, eps))
    return 4 / math.pi**2 * (angle2 - angle1) ** 2


def _at_least(value: torch.Tensor, bound: float) -> torch.Tensor:
    """max(value, bound), with zero gradient where value <= bound."""
    return torch.where(value > bound, value, bound)
