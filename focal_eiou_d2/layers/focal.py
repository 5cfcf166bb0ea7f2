"""The focal weight of Focal-EIoU (Eq. 10) for any IoU-family loss, and its batch normalization
(Eq. 11).

Focal-EIoU multiplies each pair's EIoU loss by W = IoU^gamma and divides the batch's weighted sum
by the sum of the weights. Nothing in that depends on EIoU: the same weight turns SIoU into
Focal-SIoU or CIoU into Focal-CIoU. The registry gives every IoU-family loss whose own weighting
would not compound with it (not NWD, not the Wise-IoU versions) the parameters ``gamma`` (0: off,
the loss exactly as without it) and ``detach_weight``, and the reduction "weighted" (Eq. 11).
"""

from functools import partial

import torch

from .iou_losses import box_pair_geometry
from .loss_utils import REDUCTIONS, reduce_loss

FOCAL_REDUCTIONS = REDUCTIONS + ("weighted",)
"""Reductions of a loss with the focal weight: "weighted" is Eq. 11."""


def iou_weight(iou: torch.Tensor, gamma: float, eps: float, detach_weight: bool) -> torch.Tensor:
    """The focal weight W = IoU^gamma of Eq. 10, unchecked.

    Args:
        iou (Tensor[...]): the IoU of each pair.
        gamma (float): focusing exponent, >= 0 (0 gives weights of 1).
        eps (float): with ``detach_weight`` False, the IoU is clamped to >= eps in the power, whose
            derivative is infinite at IoU = 0 for gamma < 1.
        detach_weight (bool): if True, W is a constant of the graph (no gradient through it).

    Returns:
        Tensor[...]: W.
    """
    return iou.detach() ** gamma if detach_weight else iou.clamp(min=eps) ** gamma


def focal_terms(
    loss_and_iou,
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    gamma: float,
    detach_weight: bool,
    **params
) -> tuple[torch.Tensor, torch.Tensor]:
    """An IoU-family loss and its focal weight, per pair, unchecked.

    Args:
        loss_and_iou (Callable): ``loss_and_iou(boxes1, boxes2, **params)`` gives the loss of each
            pair and its IoU (e.g. ``eiou_and_iou``, or :func:`with_iou` of a per-pair loss).
        boxes1 (Tensor[..., 4]): predicted boxes, XYXY.
        boxes2 (Tensor[..., 4]): target boxes, XYXY.
        gamma, detach_weight: see :func:`iou_weight`.
        **params: the loss's own parameters, ``eps`` among them.

    Returns:
        tuple[Tensor, Tensor]: the loss L and the weight W = IoU^gamma, both of shape (...).
    """
    loss, iou = loss_and_iou(boxes1, boxes2, **params)
    return loss, iou_weight(iou, gamma, params["eps"], detach_weight)


def with_iou(
    per_pair, boxes1: torch.Tensor, boxes2: torch.Tensor, **params
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_pair(boxes1, boxes2, **params)`` and the pairs' IoU, for a loss that does not give
    its IoU (``params`` has ``eps``).

    Returns:
        tuple[Tensor, Tensor]: the loss and the IoU of each pair, both of shape (...).
    """
    return per_pair(boxes1, boxes2, **params), box_pair_geometry(boxes1, boxes2, params["eps"]).iou


def focal_per_pair(
    per_pair,
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    gamma: float,
    detach_weight: bool,
    **params
) -> torch.Tensor:
    """W * L per pair (Eq. 10 over any IoU-family loss), unchecked; for gamma = 0 the loss itself,
    computed exactly as without the weight.

    Args:
        per_pair (Callable): the loss's unchecked per-pair form.
        boxes1, boxes2, gamma, detach_weight, **params: as :func:`focal_terms`.

    Returns:
        Tensor[...]: the weighted loss of each pair.
    """
    if gamma == 0:
        return per_pair(boxes1, boxes2, **params)
    loss_and_iou = partial(with_iou, per_pair)
    loss, weight = focal_terms(loss_and_iou, boxes1, boxes2, gamma, detach_weight, **params)
    return weight * loss


def focal_parts(per_pair):
    """The two forms of an IoU-family loss with the focal weight, from its per-pair function.

    Args:
        per_pair (Callable): ``per_pair(boxes1, boxes2, **params)``, the loss of each pair.

    Returns:
        tuple[Callable, Callable]: :func:`focal_terms` and :func:`focal_per_pair` of that loss,
        each called as ``(boxes1, boxes2, gamma=..., detach_weight=..., **params)``.
    """
    return partial(focal_terms, partial(with_iou, per_pair)), partial(focal_per_pair, per_pair)


def focal_reduce(loss: torch.Tensor, weight: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce a per-pair loss L with its focal weights W.

    Args:
        loss (Tensor[...]): L of each pair.
        weight (Tensor[...]): W of each pair.
        reduction (str): one of :data:`FOCAL_REDUCTIONS`: "weighted" is Eq. 11,
            sum_i W_i * L_i / sum_i W_i; the others reduce W * L (Eq. 10).

    Returns:
        Tensor: shape (...) for "none", else a scalar.
    """
    if reduction == "weighted":
        return normalize_by_weights((weight * loss).sum(), weight.sum())  # Eq. 11
    return reduce_loss(weight * loss, reduction)  # Eq. 10


def normalize_by_weights(weighted_loss_sum: torch.Tensor, weight_sum: torch.Tensor) -> torch.Tensor:
    """Eq. 11: sum_i W_i * L_i / sum_i W_i, from the two sums; 0, graph kept, when every weight
    is 0 (the numerator is then 0 as well).

    The detection heads pass the weight sum of the global batch (all processes); no branch on a
    tensor value, so nothing is read back to the host.

    Args:
        weighted_loss_sum (Tensor[]): sum_i W_i * L_i.
        weight_sum (Tensor[]): sum_i W_i >= 0.

    Returns:
        Tensor[]: the weighted mean, in the dtype of ``weighted_loss_sum``.
    """
    denominator = torch.where(weight_sum > 0, weight_sum, torch.ones_like(weight_sum))
    return weighted_loss_sum / denominator.to(weighted_loss_sum.dtype)
