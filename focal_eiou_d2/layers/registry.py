"""Box-regression losses by name, for the detection heads and the simulation."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

from .fast_path import box_loss
from .focal_eiou import focal_eiou_loss, focal_eiou_star_loss, focal_eiou_v1_loss
from .focal_l1 import focal_l1_loss
from .iou_losses import ciou_loss, diou_loss, eiou_loss, giou_loss, iou_loss
from .loss_utils import REDUCTIONS, reduce_loss
from .smooth_l1 import smooth_l1_loss


@dataclass(frozen=True)
class BoxLossSpec:
    """How to call one box-regression loss.

    Attributes:
        fn: the loss, called as ``fn(pred, target, reduction=..., **params)``.
        on_boxes: True if the loss takes XYXY boxes; False if it takes any (..., 4) coordinate
            encoding (deltas, XYWH) elementwise, in which case :func:`box_regression_loss` sums
            it over the last dim.
        params: the hyper-parameters ``fn`` accepts as keywords.
        reductions: the reductions ``fn`` supports.
    """

    fn: Callable[..., torch.Tensor]
    on_boxes: bool
    params: tuple[str, ...]
    reductions: tuple[str, ...] = REDUCTIONS


BOX_LOSSES: Mapping[str, BoxLossSpec] = MappingProxyType(
    {
        "iou": BoxLossSpec(iou_loss, on_boxes=True, params=("eps",)),
        "giou": BoxLossSpec(giou_loss, on_boxes=True, params=("eps",)),
        "diou": BoxLossSpec(diou_loss, on_boxes=True, params=("eps",)),
        "ciou": BoxLossSpec(ciou_loss, on_boxes=True, params=("eps",)),
        "eiou": BoxLossSpec(eiou_loss, on_boxes=True, params=("eps",)),
        "focal_eiou": BoxLossSpec(
            focal_eiou_loss,
            on_boxes=True,
            params=("gamma", "eps", "detach_weight"),
            reductions=REDUCTIONS + ("weighted",),
        ),
        "focal_eiou_v1": BoxLossSpec(focal_eiou_v1_loss, on_boxes=True, params=("beta", "eps")),
        "focal_eiou_star": BoxLossSpec(
            focal_eiou_star_loss, on_boxes=True, params=("gamma", "eps")
        ),
        "smooth_l1": BoxLossSpec(smooth_l1_loss, on_boxes=False, params=("beta",)),
        "focal_l1": BoxLossSpec(focal_l1_loss, on_boxes=False, params=("beta",)),
    }
)
"""Read-only mapping from loss name to its :class:`BoxLossSpec`."""


def box_regression_loss(
    name: str,
    pred: torch.Tensor,
    target: torch.Tensor,
    reduction: str = "none",
    **params,
) -> torch.Tensor:
    """Compute the box-regression loss called ``name``.

    Args:
        name (str): a key of :data:`BOX_LOSSES`.
        pred (Tensor[..., 4]): predictions: XYXY boxes if ``BOX_LOSSES[name].on_boxes``, else
            any coordinate encoding (deltas, XYWH).
        target (Tensor[..., 4]): targets, in the same encoding as ``pred``.
        reduction (str): one of ``BOX_LOSSES[name].reductions``.
        **params: hyper-parameters, among ``BOX_LOSSES[name].params``.

    Returns:
        Tensor: shape (...) for "none" (coordinate losses are summed over the last dim),
        else a scalar.

    The IoU-family losses take the compiled fast path of :mod:`.fast_path` where it applies
    (same values and gradients as ``spec.fn``); ``FOCAL_EIOU_D2_FAST_PATH=0`` or
    ``set_fast_path(False)`` switches it off.
    """
    spec = BOX_LOSSES.get(name)
    if spec is None:
        raise ValueError(f"Unknown box regression loss {name!r}; valid names: {list(BOX_LOSSES)}")
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        raise TypeError(
            f"Box regression loss {name!r} does not accept {unknown}; it accepts {spec.params}"
        )
    if reduction not in spec.reductions:
        raise ValueError(
            f"Box regression loss {name!r} supports reduction in {spec.reductions}, "
            f"got {reduction!r}"
        )
    if pred.shape[-1] != 4 or target.shape[-1] != 4:
        raise ValueError(
            f"pred and target must have shape (..., 4), got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    if spec.on_boxes:
        return box_loss(name, pred, target, reduction, spec.fn, **params)
    per_coordinate = spec.fn(pred, target, reduction="none", **params)
    return reduce_loss(per_coordinate.sum(dim=-1), reduction)
