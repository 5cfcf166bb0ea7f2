"""IoU-family box-regression losses on XYXY boxes: IoU, GIoU, DIoU, CIoU and EIoU.

Equation numbers refer to Zhang et al., "Focal and efficient IOU loss for accurate bounding box
regression", Neurocomputing 2022. The geometry of a pair of boxes (:func:`box_pair_geometry`) is
computed once and shared by every loss of the family.

Each loss has two forms: ``<name>_loss(boxes1, boxes2, reduction, eps)``, the public function,
which checks its arguments and reduces; and ``<name>_per_pair(boxes1, boxes2, eps)``, the per-pair
values without checks, which the detection heads call after the registry validated the
parameters once. Half-precision and integer inputs are computed (and returned) in float32,
float64 stays float64.
"""

import math
from typing import NamedTuple

import torch

from .hyperparams import EPS, check_eps
from .loss_utils import reduce_loss, upcast_float


class BoxPairGeometry(NamedTuple):
    """Geometry of box pairs (boxes1[i], boxes2[i]); every field has shape (...).

    Attributes:
        iou: intersection / (union + eps).
        union: area of the union.
        width1, height1: w, h of boxes1 (the prediction B).
        width2, height2: w_gt, h_gt of boxes2 (the target B_gt).
        enclosing_width, enclosing_height: w_c, h_c of the smallest box enclosing both.
        centre_dx, centre_dy: the centre of boxes1 minus the centre of boxes2, per axis.
    """

    iou: torch.Tensor
    union: torch.Tensor
    width1: torch.Tensor
    height1: torch.Tensor
    width2: torch.Tensor
    height2: torch.Tensor
    enclosing_width: torch.Tensor
    enclosing_height: torch.Tensor
    centre_dx: torch.Tensor
    centre_dy: torch.Tensor

    @property
    def centre_distance_sq(self) -> torch.Tensor:
        """rho^2, the squared distance between the two box centres."""
        return self.centre_dx**2 + self.centre_dy**2


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
        eps (float): added to the union before dividing (not checked here).

    Returns:
        BoxPairGeometry: fields of the broadcast shape (...), in float32 for half-precision
        and integer inputs, else in the input dtype.
    """
    if boxes1.shape[-1] != 4 or boxes2.shape[-1] != 4:
        raise ValueError(
            f"boxes must have shape (..., 4), got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}"
        )
    x1, y1, x2, y2 = upcast_float(boxes1).unbind(dim=-1)
    x1g, y1g, x2g, y2g = upcast_float(boxes2).unbind(dim=-1)

    width1, height1 = _extent(x1, x2), _extent(y1, y2)
    width2, height2 = _extent(x1g, x2g), _extent(y1g, y2g)
    intersection = _extent(torch.maximum(x1, x1g), torch.minimum(x2, x2g)) * _extent(
        torch.maximum(y1, y1g), torch.minimum(y2, y2g)
    )
    union = width1 * height1 + width2 * height2 - intersection
    return BoxPairGeometry(
        iou=intersection / (union + eps),
        union=union,
        width1=width1,
        height1=height1,
        width2=width2,
        height2=height2,
        enclosing_width=_extent(torch.minimum(x1, x1g), torch.maximum(x2, x2g)),
        enclosing_height=_extent(torch.minimum(y1, y1g), torch.maximum(y2, y2g)),
        centre_dx=(x1 + x2 - x1g - x2g) / 2,
        centre_dy=(y1 + y2 - y1g - y2g) / 2,
    )


def iou_per_pair(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Per-pair IoU loss (Eq. 3), 1 - IoU; see :func:`iou_loss`."""
    return 1 - box_pair_geometry(boxes1, boxes2, eps).iou


def giou_per_pair(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Per-pair GIoU loss (Eq. 4); see :func:`giou_loss`."""
    geometry = box_pair_geometry(boxes1, boxes2, eps)
    enclosing_area = geometry.enclosing_width * geometry.enclosing_height
    return 1 - geometry.iou + (enclosing_area - geometry.union) / (enclosing_area + eps)  # Eq. 4


def diou_per_pair(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Per-pair DIoU loss; see :func:`diou_loss`."""
    geometry = box_pair_geometry(boxes1, boxes2, eps)
    return 1 - geometry.iou + centre_distance_penalty(geometry, eps)


def ciou_per_pair(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Per-pair CIoU loss (Eq. 5); see :func:`ciou_loss`."""
    geometry = box_pair_geometry(boxes1, boxes2, eps)
    v = _aspect_ratio_penalty(geometry, eps)
    with torch.no_grad():
        alpha = v / (1 - geometry.iou + v + eps)
    return 1 - geometry.iou + centre_distance_penalty(geometry, eps) + alpha * v  # Eq. 5


def eiou_per_pair(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Per-pair EIoU loss (Eq. 7); see :func:`eiou_loss`."""
    return eiou_and_iou(boxes1, boxes2, eps)[0]


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
    width_penalty = (geometry.width1 - geometry.width2) ** 2 / (geometry.enclosing_width**2 + eps)
    height_penalty = (geometry.height1 - geometry.height2) ** 2 / (
        geometry.enclosing_height**2 + eps
    )
    loss = (
        1 - geometry.iou + centre_distance_penalty(geometry, eps) + width_penalty + height_penalty
    )  # Eq. 7
    return loss, geometry.iou


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
    check_eps(eps)
    return reduce_loss(iou_per_pair(boxes1, boxes2, eps), reduction)


def giou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = EPS
) -> torch.Tensor:
    """Generalized IoU loss (Eq. 4): 1 - IoU + |C - (A u B)| / |C|, C the enclosing box.

    Args and Returns: as :func:`iou_loss`; ``eps`` is also added to |C| before dividing.
    """
    check_eps(eps)
    return reduce_loss(giou_per_pair(boxes1, boxes2, eps), reduction)


def diou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = EPS
) -> torch.Tensor:
    """Distance IoU loss: 1 - IoU + rho^2 / c^2 (Eq. 5 without the aspect-ratio term).

    Args and Returns: as :func:`iou_loss`; ``eps`` is also added to c^2 before dividing.
    """
    check_eps(eps)
    return reduce_loss(diou_per_pair(boxes1, boxes2, eps), reduction)


def ciou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = EPS
) -> torch.Tensor:
    """Complete IoU loss (Eq. 5): 1 - IoU + rho^2 / c^2 + alpha * v.

    As in torchvision and detectron2, the trade-off weight alpha carries no gradient.

    Args and Returns: as :func:`iou_loss`; ``eps`` is also added to c^2 and to the
    denominator of alpha, and heights are clamped to >= eps inside atan(w / h).
    """
    check_eps(eps)
    return reduce_loss(ciou_per_pair(boxes1, boxes2, eps), reduction)


def eiou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = EPS
) -> torch.Tensor:
    """Efficient IoU loss (Eq. 7).

    1 - IoU + rho^2 / (w_c^2 + h_c^2) + (w - w_gt)^2 / w_c^2 + (h - h_gt)^2 / h_c^2, which lies
    in [0, 4).

    Args and Returns: as :func:`iou_loss`; ``eps`` is also added to every denominator.
    """
    check_eps(eps)
    return reduce_loss(eiou_per_pair(boxes1, boxes2, eps), reduction)


def centre_distance_penalty(geometry: BoxPairGeometry, eps: float) -> torch.Tensor:
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
    angle1 = torch.atan(geometry.width1 / at_least(geometry.height1, eps))
    angle2 = torch.atan(geometry.width2 / at_least(geometry.height2, eps))
    return 4 / math.pi**2 * (angle2 - angle1) ** 2


def at_least(value: torch.Tensor, bound: float) -> torch.Tensor:
    """max(value, bound), with zero gradient where value <= bound."""
    return torch.where(value > bound, value, bound)


def _extent(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Return ``high - low`` with negative values set to 0.

    Unlike ``clamp(min=0)``, the gradient still passes at exactly 0, so a zero-width predicted
    box keeps the gradient that lets it grow.
    """
    extent = high - low
    return torch.where(extent < 0, 0.0, extent)
