"""Box-regression losses by name, for the detection heads and the simulation."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

from . import hyperparams
from .balanced_l1 import balanced_l1_loss
from .focal_eiou import (
    FOCAL_EIOU_REDUCTIONS,
    focal_eiou_loss,
    focal_eiou_star_loss,
    focal_eiou_v1_loss,
)
from .focal_l1 import focal_l1_loss
from .iou_losses import ciou_loss, diou_loss, eiou_loss, giou_loss, iou_loss
from .loss_utils import REDUCTIONS, reduce_loss
from .smooth_l1 import smooth_l1_loss


@dataclass(frozen=True)
class BoxLossSpec:
    """How to call one box-regression loss.

    Attributes:
        fn: the loss, called as ``fn(pred, target, reduction=..., **params)``; it takes the fast
            path by itself where one applies.
        on_boxes: True if the loss takes XYXY boxes; False if it takes any (..., 4) coordinate
            encoding (deltas, XYWH) elementwise, in which case :func:`box_regression_loss` sums
            it over the last dim.
        defaults: each hyper-parameter ``fn`` accepts as a keyword, with its default.
        reductions: the reductions ``fn`` supports.
    """

    fn: Callable[..., torch.Tensor]
    on_boxes: bool
    defaults: Mapping[str, object]
    reductions: tuple[str, ...] = REDUCTIONS

    @property
    def params(self) -> tuple[str, ...]:
        """The hyper-parameters ``fn`` accepts as keywords."""
        return tuple(self.defaults)


def _spec(fn, *, on_boxes: bool, reductions=REDUCTIONS, **defaults) -> BoxLossSpec:
    """A :class:`BoxLossSpec` whose hyper-parameters and defaults are the keywords ``defaults``."""
    return BoxLossSpec(fn, on_boxes, MappingProxyType(defaults), reductions)


_EPS = hyperparams.EPS
_GAMMA = hyperparams.FOCAL_EIOU_GAMMA

BOX_LOSSES: Mapping[str, BoxLossSpec] = MappingProxyType(
    {
        "iou": _spec(iou_loss, on_boxes=True, eps=_EPS),
        "giou": _spec(giou_loss, on_boxes=True, eps=_EPS),
        "diou": _spec(diou_loss, on_boxes=True, eps=_EPS),
        "ciou": _spec(ciou_loss, on_boxes=True, eps=_EPS),
        "eiou": _spec(eiou_loss, on_boxes=True, eps=_EPS),
        "focal_eiou": _spec(
            focal_eiou_loss,
            on_boxes=True,
            reductions=FOCAL_EIOU_REDUCTIONS,
            gamma=_GAMMA,
            eps=_EPS,
            detach_weight=hyperparams.FOCAL_EIOU_DETACH_WEIGHT,
        ),
        "focal_eiou_v1": _spec(
            focal_eiou_v1_loss, on_boxes=True, beta=hyperparams.FOCAL_L1_BETA, eps=_EPS
        ),
        "focal_eiou_star": _spec(focal_eiou_star_loss, on_boxes=True, gamma=_GAMMA, eps=_EPS),
        "smooth_l1": _spec(smooth_l1_loss, on_boxes=False, beta=hyperparams.SMOOTH_L1_BETA),
        "focal_l1": _spec(focal_l1_loss, on_boxes=False, beta=hyperparams.FOCAL_L1_BETA),
        "balanced_l1": _spec(
            balanced_l1_loss,
            on_boxes=False,
            alpha=hyperparams.BALANCED_L1_ALPHA,
            gamma=hyperparams.BALANCED_L1_GAMMA,
            beta=hyperparams.BALANCED_L1_BETA,
        ),
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

    Calls ``BOX_LOSSES[name].fn``, so it takes the fast path exactly where that function does.
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
    if pred.shape[-1:] != (4,) or target.shape[-1:] != (4,):
        raise ValueError(
            f"pred and target must have shape (..., 4), got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    if spec.on_boxes:
        return spec.fn(pred, target, reduction=reduction, **params)
    per_coordinate = spec.fn(pred, target, reduction="none", **params)
    return reduce_loss(per_coordinate.sum(dim=-1), reduction)
