"""MPDIoU loss: the IoU loss plus the squared distances between matching corners, relative to the
input image's diagonal.

Ma & Xu, "MPDIoU: A Loss for Efficient and Accurate Bounding Box Regression", arXiv 2307.07662
(its definition of MPDIoU and the loss L_MPDIoU = 1 - MPDIoU).
"""

import torch

from .hyperparams import EPS, check_eps, check_image_size_pair
from .iou_losses import box_pair_geometry
from .loss_utils import check_reduction, reduce_loss, upcast_float


def mpdiou_loss(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    image_size: tuple[float, float] | torch.Tensor,
    reduction: str = "none",
    eps: float = EPS,
) -> torch.Tensor:
    """MPDIoU loss: 1 - MPDIoU, MPDIoU = IoU - d1^2 / (W^2 + H^2) - d2^2 / (W^2 + H^2).

    d1^2 = (x1 - x1_gt)^2 + (y1 - y1_gt)^2 is the squared distance between the top-left corners,
    d2^2 = (x2 - x2_gt)^2 + (y2 - y2_gt)^2 between the bottom-right ones; W and H are the width and
    height of the input image the boxes lie in (the image itself, not a padded batch, nor the
    enclosing box).

    Args:
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY.
        boxes2 (Tensor[..., 4]): target boxes, XYXY.
        image_size (tuple[float, float] or Tensor[..., 2]): (height, width) of the input image,
            one pair for all boxes (numbers > 0) or a tensor whose shape (..., 2) broadcasts with
            the boxes' (...), e.g. one row per box (not checked for values, which would read it
            from the device).
        reduction (str): "none" | "sum" | "mean".
        eps (float): added to the union and to W^2 + H^2; finite and > 0.

    Returns:
        Tensor: shape (...) for "none", else a scalar; float32 for half-precision and integer
        inputs.
    """
    check_reduction(reduction)
    check_eps(eps)
    if isinstance(image_size, torch.Tensor):
        if image_size.dim() == 0 or image_size.shape[-1] != 2:
            raise ValueError(
                f"image_size must be a pair (height, width) or a tensor of shape (..., 2), got "
                f"shape {tuple(image_size.shape)}"
            )
    else:
        check_image_size_pair(image_size)
    return reduce_loss(mpdiou_per_pair(boxes1, boxes2, image_size, eps), reduction)


def mpdiou_per_pair(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    image_size: tuple[float, float] | torch.Tensor,
    eps: float = EPS,
) -> torch.Tensor:
    """Per-pair MPDIoU loss, without argument checks; see :func:`mpdiou_loss`."""
    geometry = box_pair_geometry(boxes1, boxes2, eps)
    if isinstance(image_size, torch.Tensor):
        sides = image_size.to(device=geometry.iou.device, dtype=geometry.iou.dtype)
        diagonal_sq = sides[..., 0] ** 2 + sides[..., 1] ** 2  # H^2 + W^2
    else:
        height, width = image_size
        diagonal_sq = float(height) ** 2 + float(width) ** 2
    corner_offsets_sq = (upcast_float(boxes1) - upcast_float(boxes2)) ** 2
    top_left_sq = corner_offsets_sq[..., 0] + corner_offsets_sq[..., 1]  # d1^2
    bottom_right_sq = corner_offsets_sq[..., 2] + corner_offsets_sq[..., 3]  # d2^2
    return 1 - geometry.iou + (top_left_sq + bottom_right_sq) / (diagonal_sq + eps)
