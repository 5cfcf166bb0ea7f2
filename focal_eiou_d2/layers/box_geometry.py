"""Geometry of pairs of XYXY boxes, computed once and shared by the IoU-family losses."""

from typing import NamedTuple

import torch

from .hyperparams import EPS, check_eps
from .loss_utils import upcast_float


class BoxPairGeometry(NamedTuple):
    """Geometry of box pairs (boxes1[i], boxes2[i]); every field has shape (...).

    Attributes:
        iou: intersection / (union + eps).
        union: area of the union.
        width1, height1: w, h of boxes1 (the prediction B).
        width2, height2: w_gt, h_gt of boxes2 (the target B_gt).
        enclosing_width, enclosing_height: w_c, h_c of the smallest box enclosing both.
        centre_distance_sq: rho^2, the squared distance between the two box centres.
    """

    iou: torch.Tensor
    union: torch.Tensor
    width1: torch.Tensor
    height1: torch.Tensor
    width2: torch.Tensor
    height2: torch.Tensor
    enclosing_width: torch.Tensor
    enclosing_height: torch.Tensor
    centre_distance_sq: torch.Tensor


def box_pair_geometry(
    boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = EPS
) -> BoxPairGeometry:
    """Compute the geometry of pairs of boxes.

    An inverted box (x2 < x1 or y2 < y1) has its width or height set to 0 for its area, the
    intersection and the width/height terms; its centre and the enclosing box use its raw
    coordinates. A zero-area box therefore has IoU 0 with every box, itself included.

    Args:
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY absolute coordinates.
        boxes2 (Tensor[..., 4]): target boxes, XYXY, broadcastable with ``boxes1``.
        eps (float): added to the union before dividing; finite and > 0.

    Returns:
        BoxPairGeometry: fields of the broadcast shape (...), in float32 for half-precision
        and integer inputs, else in the input dtype.
    """
    if boxes1.shape[-1] != 4 or boxes2.shape[-1] != 4:
        raise ValueError(
            f"boxes must have shape (..., 4), got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}"
        )
    check_eps(eps)
    x1, y1, x2, y2 = upcast_float(boxes1).unbind(dim=-1)
    x1g, y1g, x2g, y2g = upcast_float(boxes2).unbind(dim=-1)

    width1, height1 = _extent(x1, x2), _extent(y1, y2)
    width2, height2 = _extent(x1g, x2g), _extent(y1g, y2g)
    intersection = _extent(torch.maximum(x1, x1g), torch.minimum(x2, x2g)) * _extent(
        torch.maximum(y1, y1g), torch.minimum(y2, y2g)
    )
    union = width1 * height1 + width2 * height2 - intersection
    centre_dx = (x1 + x2 - x1g - x2g) / 2
    centre_dy = (y1 + y2 - y1g - y2g) / 2
    return BoxPairGeometry(
        iou=intersection / (union + eps),
        union=union,
        width1=width1,
        height1=height1,
        width2=width2,
        height2=height2,
        enclosing_width=_extent(torch.minimum(x1, x1g), torch.maximum(x2, x2g)),
        enclosing_height=_extent(torch.minimum(y1, y1g), torch.maximum(y2, y2g)),
        centre_distance_sq=centre_dx**2 + centre_dy**2,
    )


def _extent(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Return ``high - low`` with negative values set to 0.

    Unlike ``clamp(min=0)``, the gradient still passes at exactly 0, so a zero-width predicted
    box keeps the gradient that lets it grow.
    """
    extent = high - low
    return torch.where(extent < 0, 0.0, extent)
