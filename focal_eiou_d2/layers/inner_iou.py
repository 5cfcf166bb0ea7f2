"""Inner-IoU: an IoU-family loss with its IoU term taken on auxiliary boxes scaled about their
centres.

Zhang, Xu, Zhang, "Inner-IoU: More Effective Intersection over Union Loss with Auxiliary Bounding
Box", arXiv 2311.02877, and the authors' code (malagoutou/Inner-IoU), which scales both
boxes by the same ratio and clamps the inner intersection at 0.
"""

import torch

from .hyperparams import EPS, INNER_IOU_RATIO, check_eps, check_inner_iou_base, check_positive
from .iou_losses import (
    box_pair_geometry,
    ciou_per_pair,
    diou_per_pair,
    eiou_per_pair,
    giou_per_pair,
    iou_per_pair,
)
from .loss_utils import check_reduction, reduce_loss, upcast_float
from .siou import siou_per_pair

_BASES = {
    "iou": iou_per_pair,
    "giou": giou_per_pair,
    "diou": diou_per_pair,
    "ciou": ciou_per_pair,
    "eiou": eiou_per_pair,
    "siou": siou_per_pair,
}


def inner_iou_loss(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    ratio: float = INNER_IOU_RATIO,
    base: str = "iou",
    reduction: str = "none",
    eps: float = EPS,
) -> torch.Tensor:
    """Inner-IoU loss: L_Inner-X = L_X + IoU - IoU_inner, X the ``base`` loss.

    The inner boxes have the centres of the boxes and sides scaled by ``ratio``
    (cx -/+ w * ratio / 2, cy -/+ h * ratio / 2); IoU_inner is their IoU, the intersection
    clamped at 0. ratio < 1 (smaller auxiliary boxes) speeds up high-IoU pairs, ratio > 1 widens
    the range of pairs with an overlap; ratio = 1 gives the base loss. The base's own
    hyper-parameters take their defaults.

    Args:
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY.
        boxes2 (Tensor[..., 4]): target boxes, XYXY.
        ratio (float): scale of the auxiliary boxes, finite and > 0 (the paper suggests
            [0.5, 1.5]).
        base (str): the loss X: "iou" | "giou" | "diou" | "ciou" | "eiou" | "siou".
        reduction (str): "none" | "sum" | "mean".
        eps (float): as in the base loss, and added to the inner union; finite and > 0.

    Returns:
        Tensor: shape (...) for "none", else a scalar; float32 for half-precision and integer
        inputs.
    """
    check_reduction(reduction)
    check_positive("ratio", ratio)
    check_inner_iou_base(base)
    check_eps(eps)
    return reduce_loss(inner_iou_per_pair(boxes1, boxes2, ratio, base, eps), reduction)


def inner_iou_per_pair(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    ratio: float = INNER_IOU_RATIO,
    base: str = "iou",
    eps: float = EPS,
) -> torch.Tensor:
    """Per-pair Inner-IoU loss, without argument checks; see :func:`inner_iou_loss`."""
    base_loss = _BASES[base](boxes1, boxes2, eps=eps)
    iou = box_pair_geometry(boxes1, boxes2, eps).iou
    inner_iou = box_pair_geometry(scale_boxes(boxes1, ratio), scale_boxes(boxes2, ratio), eps).iou
    return base_loss + iou - inner_iou


def scale_boxes(boxes: torch.Tensor, ratio: float) -> torch.Tensor:
    """Boxes with the same centres and sides scaled by ``ratio``; an inverted box stays inverted.

    Args:
        boxes (Tensor[..., 4]): XYXY.
        ratio (float): the scale of the sides.

    Returns:
        Tensor[..., 4]: XYXY, in the dtype :func:`upcast_float` gives.
    """
    x1, y1, x2, y2 = upcast_float(boxes).unbind(dim=-1)
    centre_x, centre_y = (x1 + x2) / 2, (y1 + y2) / 2
    half_width, half_height = (x2 - x1) * ratio / 2, (y2 - y1) * ratio / 2
    return torch.stack(
        [
            centre_x - half_width,
            centre_y - half_height,
            centre_x + half_width,
            centre_y + half_height,
        ],
        dim=-1,
    )
