"""Closed-form value and gradient of the IoU-family losses, in one pass per box pair.

Each ``*_with_grad`` function returns the per-pair loss and its gradient with respect to the
predicted box, computed together from the same intermediates. They reproduce the reference
implementations (``iou_losses.py``, ``focal_eiou.py``) exactly: same eps placement, inverted
boxes with zero extent, autograd's conventions at kinks (``torch.where`` passes the gradient at
an extent of exactly 0, ``maximum``/``minimum`` split it in half on ties, the height bound of
CIoU blocks it at h <= eps), CIoU's alpha and Focal-EIoU's weight IoU^gamma as constants.

Every loss here is symmetric in its two boxes, so the gradient with respect to the target is the
same function with the boxes swapped. The functions are plain tensor code: they run eagerly and
compile with ``torch.compile`` into one loop (:mod:`.compiled_kernel`).

Notation (per pair and per axis, x shown): w = x2 - x1 (0 if negative), w_i the overlap,
w_c the enclosing extent, dx the centre offset; I = w_i * h_i, U = w h + w_gt h_gt - I,
IoU = I / (U + eps), rho^2 = dx^2 + dy^2.
"""

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple, Union

import torch

Partial = Union[torch.Tensor, float]

SQRT_GAMMA = 0.5
"""The gamma of Focal-EIoU whose weight IoU^gamma is a square root, compiled as a constant."""


class AxisGeometry(NamedTuple):
    """Extents of a box pair along one axis; every field has shape (N,).

    The ``*_raw`` fields are the differences before negative values are set to 0; their sign
    decides whether the gradient passes, as in ``box_geometry._extent``.
    """

    low: torch.Tensor
    high: torch.Tensor
    low_gt: torch.Tensor
    high_gt: torch.Tensor
    side_raw: torch.Tensor
    side: torch.Tensor
    side_gt: torch.Tensor
    overlap_raw: torch.Tensor
    overlap: torch.Tensor
    enclosing_raw: torch.Tensor
    enclosing: torch.Tensor
    offset: torch.Tensor


class PairGeometry(NamedTuple):
    """Geometry of N box pairs: both axes, and the areas; tensors of shape (N,)."""

    x: AxisGeometry
    y: AxisGeometry
    intersection: torch.Tensor
    union: torch.Tensor
    union_eps: torch.Tensor
    iou: torch.Tensor
    centre_distance_sq: torch.Tensor


class Partials(NamedTuple):
    """Partial derivatives of a loss with respect to the geometry, each of shape (N,) or 0.

    ``iou`` is dL/dIoU with IoU = I / (U + eps) as a whole; ``union`` is dL/dU through every
    other term; ``side``, ``enclosing`` are (x, y) pairs for w, h and w_c, h_c, not through U;
    ``centre`` is dL/d(rho^2).
    """

    iou: Partial
    union: Partial = 0.0
    side: tuple[Partial, Partial] = (0.0, 0.0)
    enclosing: tuple[Partial, Partial] = (0.0, 0.0)
    centre: Partial = 0.0

    def scaled(self, factor: torch.Tensor) -> "Partials":
        """The partials of ``factor * L`` for a constant ``factor`` of shape (N,)."""
        return Partials(
            iou=factor * self.iou,
            union=factor * self.union,
            side=(factor * self.side[0], factor * self.side[1]),
            enclosing=(factor * self.enclosing[0], factor * self.enclosing[1]),
            centre=factor * self.centre,
        )


def iou_with_grad(
    pred: torch.Tensor, target: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU loss (Eq. 3), 1 - IoU, and its gradient.

    Args:
        pred (Tensor[N, 4]): predicted boxes, XYXY, float32 or float64.
        target (Tensor[N, 4]): target boxes, XYXY, same dtype.
        eps (float): added to the union.

    Returns:
        tuple[Tensor[N], Tensor[N, 4]]: the loss and dL/dpred.
    """
    pair = pair_geometry(pred, target, eps)
    return 1 - pair.iou, coordinate_gradient(pair, Partials(iou=-1.0))


def giou_with_grad(
    pred: torch.Tensor, target: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """GIoU loss (Eq. 4), 1 - IoU + (C - U) / (C + eps), and its gradient; as :func:`iou_with_grad`.

    dL/dC = 1 / (C + eps) - (C - U) / (C + eps)^2 and dL/dU = -1 / (C + eps), with C = w_c h_c.
    dL/dC keeps the two terms autograd computes: for C = 0 they are of order 1 / eps, and its
    rounding must match where they cancel against dL/dU.
    """
    pair = pair_geometry(pred, target, eps)
    enclosing_area = pair.x.enclosing * pair.y.enclosing
    enclosing_eps = enclosing_area + eps
    penalty = enclosing_area - pair.union
    loss = 1 - pair.iou + penalty / enclosing_eps  # Eq. 4
    d_area = 1 / enclosing_eps - penalty / enclosing_eps**2
    partials = Partials(
        iou=-1.0,
        union=-1 / enclosing_eps,
        enclosing=(d_area * pair.y.enclosing, d_area * pair.x.enclosing),
    )
    return loss, coordinate_gradient(pair, partials)


def diou_with_grad(
    pred: torch.Tensor, target: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """DIoU loss, 1 - IoU + rho^2 / c^2 (Eq. 5 without alpha v), and its gradient.

    Args and Returns: as :func:`iou_with_grad`.
    """
    pair = pair_geometry(pred, target, eps)
    penalty, partials = _centre_distance_penalty(pair, eps)
    return 1 - pair.iou + penalty, coordinate_gradient(pair, partials)


def ciou_with_grad(
    pred: torch.Tensor, target: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIoU loss (Eq. 5), 1 - IoU + rho^2 / c^2 + alpha v, alpha constant, and its gradient.

    With a = atan(w / max(h, eps)): dv/da = -8 / pi^2 (a_gt - a), da/dw = h / (h^2 + w^2) and
    da/dh = -w / (h^2 + w^2), the latter 0 where the clamp is active (h <= eps).

    Args and Returns: as :func:`iou_with_grad`.
    """
    pair = pair_geometry(pred, target, eps)
    penalty, partials = _centre_distance_penalty(pair, eps)
    height = pair.y.side.clamp(min=eps)
    angle = torch.atan(pair.x.side / height)
    angle_gt = torch.atan(pair.x.side_gt / pair.y.side_gt.clamp(min=eps))
    v = 4 / math.pi**2 * (angle_gt - angle) ** 2
    alpha = v / (1 - pair.iou + v + eps)
    loss = 1 - pair.iou + penalty + alpha * v  # Eq. 5
    d_angle = alpha * (-8 / math.pi**2) * (angle_gt - angle) / (height**2 + pair.x.side**2)
    d_height = torch.where(pair.y.side > eps, -pair.x.side * d_angle, 0.0)
    partials = partials._replace(side=(height * d_angle, d_height))
    return loss, coordinate_gradient(pair, partials)


def eiou_with_grad(
    pred: torch.Tensor, target: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """EIoU loss (Eq. 7) and its gradient; as :func:`iou_with_grad`."""
    pair = pair_geometry(pred, target, eps)
    loss, partials = _eiou(pair, eps)
    return loss, coordinate_gradient(pair, partials)


def focal_eiou_with_grad(
    pred: torch.Tensor, target: torch.Tensor, eps: float, gamma: Partial
) -> tuple[torch.Tensor, torch.Tensor]:
    """Focal-EIoU loss (Eq. 10), IoU^gamma * L_EIoU with the weight constant, and its gradient.

    Args:
        pred, target, eps: as :func:`iou_with_grad`.
        gamma (float or Tensor[]): focusing exponent, >= 0. A float is a constant of the compiled
            kernel; a tensor is an input, so that a new value does not compile again.

    Returns:
        tuple[Tensor[N], Tensor[N, 4]]: the loss and dL/dpred.
    """
    pair = pair_geometry(pred, target, eps)
    eiou, partials = _eiou(pair, eps)
    weight = pair.iou**gamma
    return weight * eiou, coordinate_gradient(pair, partials.scaled(weight))  # Eq. 10


def focal_eiou_sqrt_with_grad(
    pred: torch.Tensor, target: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`focal_eiou_with_grad` with gamma = :data:`SQRT_GAMMA` as a constant.

    The compiled weight IoU^0.5 is then a square root rather than a power with a tensor exponent.
    """
    return focal_eiou_with_grad(pred, target, eps, SQRT_GAMMA)


def pair_geometry(pred: torch.Tensor, target: torch.Tensor, eps: float) -> PairGeometry:
    """Geometry of N pairs, as ``box_geometry.box_pair_geometry`` computes it.

    Args:
        pred (Tensor[N, 4]): XYXY boxes.
        target (Tensor[N, 4]): XYXY boxes.
        eps (float): added to the union.

    Returns:
        PairGeometry: tensors of shape (N,).
    """
    x1, y1, x2, y2 = pred.unbind(dim=-1)
    x1g, y1g, x2g, y2g = target.unbind(dim=-1)
    x, y = _axis_geometry(x1, x2, x1g, x2g), _axis_geometry(y1, y2, y1g, y2g)
    intersection = x.overlap * y.overlap
    union = x.side * y.side + x.side_gt * y.side_gt - intersection
    union_eps = union + eps
    return PairGeometry(
        x=x,
        y=y,
        intersection=intersection,
        union=union,
        union_eps=union_eps,
        iou=intersection / union_eps,
        centre_distance_sq=x.offset**2 + y.offset**2,
    )


def coordinate_gradient(pair: PairGeometry, partials: Partials) -> torch.Tensor:
    """Chain the partials of a loss down to the predicted corners.

    dIoU/dI = 1 / (U + eps) and dIoU/dU = -I / (U + eps)^2; U depends on I with sign -1, on w
    through w h and on h through w h.

    Args:
        pair (PairGeometry): the geometry the loss was computed from.
        partials (Partials): the loss's partial derivatives.

    Returns:
        Tensor[N, 4]: dL/d(x1, y1, x2, y2) of the predicted box.
    """
    d_union = partials.union - partials.iou * pair.intersection / pair.union_eps**2
    d_intersection = partials.iou / pair.union_eps - d_union
    d_x1, d_x2 = _axis_gradient(
        pair.x,
        d_side=partials.side[0] + d_union * pair.y.side,
        d_overlap=d_intersection * pair.y.overlap,
        d_enclosing=partials.enclosing[0],
        d_centre=partials.centre,
    )
    d_y1, d_y2 = _axis_gradient(
        pair.y,
        d_side=partials.side[1] + d_union * pair.x.side,
        d_overlap=d_intersection * pair.x.overlap,
        d_enclosing=partials.enclosing[1],
        d_centre=partials.centre,
    )
    return torch.stack([d_x1, d_y1, d_x2, d_y2], dim=-1)


def _axis_geometry(
    low: torch.Tensor, high: torch.Tensor, low_gt: torch.Tensor, high_gt: torch.Tensor
) -> AxisGeometry:
    """Extents along one axis of boxes [low, high] and [low_gt, high_gt], each of shape (N,)."""
    side_raw = high - low
    overlap_raw = torch.minimum(high, high_gt) - torch.maximum(low, low_gt)
    enclosing_raw = torch.maximum(high, high_gt) - torch.minimum(low, low_gt)
    return AxisGeometry(
        low=low,
        high=high,
        low_gt=low_gt,
        high_gt=high_gt,
        side_raw=side_raw,
        side=_non_negative(side_raw),
        side_gt=_non_negative(high_gt - low_gt),
        overlap_raw=overlap_raw,
        overlap=_non_negative(overlap_raw),
        enclosing_raw=enclosing_raw,
        enclosing=_non_negative(enclosing_raw),
        offset=(low + high - low_gt - high_gt) / 2,
    )


def _axis_gradient(
    axis: AxisGeometry,
    d_side: Partial,
    d_overlap: Partial,
    d_enclosing: Partial,
    d_centre: Partial,
) -> tuple[torch.Tensor, torch.Tensor]:
    """dL/d(low, high) of the predicted box from dL/d(side, overlap, enclosing, rho^2).

    d(offset^2)/dlow = d(offset^2)/dhigh = offset. The overlap runs from max(low, low_gt) to
    min(high, high_gt), the enclosing extent from min(low, low_gt) to max(high, high_gt).
    """
    d_side = _pass_if_non_negative(axis.side_raw, d_side)
    d_overlap = _pass_if_non_negative(axis.overlap_raw, d_overlap)
    d_enclosing = _pass_if_non_negative(axis.enclosing_raw, d_enclosing)
    d_offset = d_centre * axis.offset
    # d min(a, b) / da = 1 - d max(a, b) / da, exactly (1/2 for both on ties).
    low_share = _share(axis.low, axis.low_gt)
    high_share = _share(axis.high_gt, axis.high)
    d_low = d_offset - d_side - low_share * d_overlap - (1 - low_share) * d_enclosing
    d_high = d_offset + d_side + high_share * d_overlap + (1 - high_share) * d_enclosing
    return d_low, d_high


def _centre_distance_penalty(pair: PairGeometry, eps: float) -> tuple[torch.Tensor, Partials]:
    """rho^2 / (c^2 + eps), c^2 = w_c^2 + h_c^2, and the partials of 1 - IoU + that.

    d/drho^2 = 1 / (c^2 + eps); d/dw_c = -2 w_c rho^2 / (c^2 + eps)^2.
    """
    diagonal_eps = pair.x.enclosing**2 + pair.y.enclosing**2 + eps
    penalty = pair.centre_distance_sq / diagonal_eps
    d_diagonal = -2 * penalty / diagonal_eps
    partials = Partials(
        iou=-1.0,
        enclosing=(d_diagonal * pair.x.enclosing, d_diagonal * pair.y.enclosing),
        centre=1 / diagonal_eps,
    )
    return penalty, partials


def _eiou(pair: PairGeometry, eps: float) -> tuple[torch.Tensor, Partials]:
    """EIoU (Eq. 7) and its partials.

    For the width term (w - w_gt)^2 / (w_c^2 + eps): d/dw = 2 (w - w_gt) / (w_c^2 + eps) and
    d/dw_c = -2 w_c (w - w_gt)^2 / (w_c^2 + eps)^2; likewise for heights.
    """
    penalty, partials = _centre_distance_penalty(pair, eps)
    loss = 1 - pair.iou + penalty
    d_sides, d_enclosings = [], []
    for axis, d_enclosing in ((pair.x, partials.enclosing[0]), (pair.y, partials.enclosing[1])):
        enclosing_eps = axis.enclosing**2 + eps
        side_penalty = (axis.side - axis.side_gt) ** 2 / enclosing_eps
        loss = loss + side_penalty  # Eq. 7
        d_sides.append(2 * (axis.side - axis.side_gt) / enclosing_eps)
        d_enclosings.append(d_enclosing - 2 * axis.enclosing * side_penalty / enclosing_eps)
    return loss, partials._replace(side=tuple(d_sides), enclosing=tuple(d_enclosings))


def _non_negative(extent: torch.Tensor) -> torch.Tensor:
    """``extent`` with negative values set to 0, as ``box_geometry._extent``."""
    return torch.where(extent < 0, 0.0, extent)


def _pass_if_non_negative(extent: torch.Tensor, grad: Partial) -> torch.Tensor:
    """The gradient through :func:`_non_negative`: blocked where ``extent`` < 0."""
    return torch.where(extent < 0, 0.0, grad)


def _share(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """d max(a, b) / da as autograd defines it: 1 if a > b, 1/2 on ties, else 0."""
    return torch.where(a > b, 1.0, torch.where(a == b, 0.5, 0.0))


FUSED_LOSSES: Mapping[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = MappingProxyType(
    {
        "iou": iou_with_grad,
        "giou": giou_with_grad,
        "diou": diou_with_grad,
        "ciou": ciou_with_grad,
        "eiou": eiou_with_grad,
        "focal_eiou": focal_eiou_with_grad,
    }
)
"""Loss names with a fused kernel, and their value-and-gradient functions."""
