"""Box-regression losses by name: the one place where a loss name and its parameters are checked.

:func:`box_regression_loss` computes a loss by name, checking its arguments at every call, as the
named functions do. A detection head instead validates once, when it is built
(:func:`check_box_loss`), and then calls the loss's unchecked per-pair form
(:attr:`BoxLossSpec.per_pair`) at every step, adding the inputs only a head can supply
(:attr:`BoxLossSpec.head_inputs`: each box's image size, a running mean kept as training state).

Every IoU-family loss but NWD and the Wise-IoU versions also takes Eq. 10's focal weight IoU^gamma
(:mod:`.focal`): ``gamma`` (default 0, off) and ``detach_weight``, and the reduction "weighted"
(Eq. 11), so that Focal-SIoU is ``box_regression_loss("siou", pred, target, gamma=0.5,
reduction="weighted")``.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from types import MappingProxyType

import torch

from . import hyperparams
from .alpha_iou import alpha_iou_loss, alpha_iou_per_pair
from .balanced_l1 import balanced_l1_elementwise, balanced_l1_loss
from .focal import FOCAL_REDUCTIONS, focal_parts, focal_reduce, focal_terms
from .focal_eiou import (
    focal_eiou_loss,
    focal_eiou_per_pair,
    focal_eiou_star_loss,
    focal_eiou_star_per_pair,
    focal_eiou_v1_loss,
    focal_eiou_v1_per_pair,
)
from .focal_l1 import focal_l1_elementwise, focal_l1_loss
from .inner_iou import inner_iou_loss, inner_iou_per_pair
from .iou_losses import (
    ciou_loss,
    ciou_per_pair,
    diou_loss,
    diou_per_pair,
    eiou_and_iou,
    eiou_loss,
    eiou_per_pair,
    giou_loss,
    giou_per_pair,
    iou_loss,
    iou_per_pair,
)
from .loss_utils import REDUCTIONS, reduce_loss
from .mpdiou import mpdiou_loss, mpdiou_per_pair
from .nwd import nwd_loss, nwd_per_pair
from .shape_iou import shape_iou_loss, shape_iou_per_pair
from .siou import siou_loss, siou_per_pair
from .smooth_l1 import smooth_l1_elementwise, smooth_l1_loss
from .wise_iou import wiou_v1_loss, wiou_v1_per_pair, wiou_v3_loss, wiou_v3_per_pair

PAPER_WEIGHT_IOU, PAPER_WEIGHT_COORDINATE = 2.5, 1.0
"""The paper's box-loss weights (Sec. 5.2): 2.5 for IoU-based losses, 1.0 for l_n-norm losses."""


class BoxLossParameterError(ValueError):
    """A value that a loss does not accept for one of its parameters.

    Attributes:
        loss (str): the loss's name.
        param (str): the parameter's name (what a config layer maps back to its key).
        reason (str): what is wrong with the value; the message is ``"<loss>: <reason>"``.
    """

    def __init__(self, loss: str, param: str, reason: str):
        super().__init__(f"{loss}: {reason}")
        self.loss, self.param, self.reason = loss, param, reason


@dataclass(frozen=True)
class BoxLossSpec:
    """How to call one box-regression loss.

    Attributes:
        fn: the public loss, called as ``fn(pred, target, reduction=..., **params)``; it checks
            its arguments at every call.
        per_pair: the same loss unchecked, ``per_pair(pred, target, **params)``: per pair for
            box losses (shape (...)), per coordinate for the others (shape (..., 4)); with the
            focal weight ``W * L`` for a loss that takes it as an option.
        on_boxes: True if the loss takes XYXY boxes; False if it takes any (..., 4) coordinate
            encoding (deltas, XYWH) elementwise, in which case :func:`box_regression_loss` sums
            it over the last dim.
        defaults: each hyper-parameter with its default: those ``fn`` accepts as keywords, and
            for a loss with the focal option (``focal_optional``) ``gamma`` and
            ``detach_weight``, which :func:`box_regression_loss`, ``per_pair`` and ``terms``
            accept and ``fn`` (the paper's loss) does not.
        checks: for each hyper-parameter, the check of its value (raises naming it).
        reductions: the reductions :func:`box_regression_loss` supports for the loss ("weighted",
            Eq. 11, for a loss with the focal weight).
        head_inputs: the keyword inputs that are not hyper-parameters but come with every call,
            from the detection head (no default, not checked by :func:`check_box_loss`):
            "image_size", each box's image size (height, width) as a tensor [..., 2] (MPDIoU);
            "iou_loss_mean", the running mean of 1 - IoU, training state the head keeps
            (Wise-IoU v3).
        terms: for a loss with Eq. 10's focal weight, its two factors per pair, unchecked:
            ``terms(pred, target, **params)`` gives (L, W = IoU^gamma), what Eq. 11 normalizes
            over a batch; None for the other losses.
        focal_optional: True when the focal weight is an option of the loss (``gamma`` 0 turns
            it off); False for focal_eiou, whose weight is part of the loss.
    """

    fn: Callable[..., torch.Tensor]
    per_pair: Callable[..., torch.Tensor]
    on_boxes: bool
    defaults: Mapping[str, object]
    checks: Mapping[str, Callable[[dict], None]]
    reductions: tuple[str, ...] = REDUCTIONS
    head_inputs: tuple[str, ...] = ()
    terms: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None
    focal_optional: bool = False

    def is_focal(self, params: Mapping[str, object]) -> bool:
        """Whether the loss with the checked ``params`` weights each pair by IoU^gamma, and a head
        normalizes it by Eq. 11: focal_eiou always, the other IoU losses when gamma > 0."""
        return self.terms is not None and (not self.focal_optional or params["gamma"] > 0)

    @property
    def params(self) -> tuple[str, ...]:
        """The hyper-parameters ``fn`` accepts as keywords."""
        return tuple(self.defaults)

    @property
    def paper_weight(self) -> float:
        """The paper's box-loss weight for this loss (Sec. 5.2)."""
        return PAPER_WEIGHT_IOU if self.on_boxes else PAPER_WEIGHT_COORDINATE


def _value(check: Callable[[object], None]) -> Callable[[str, dict], None]:
    """A check of one parameter's value, as a check of the parameter ``name`` in ``params``."""
    return lambda name, params: check(params[name])


_EPS = ("eps", hyperparams.EPS, _value(hyperparams.check_eps))
_GAMMA = ("gamma", hyperparams.FOCAL_EIOU_GAMMA, _value(hyperparams.check_gamma))
_FOCAL_GAMMA = ("gamma", hyperparams.FOCAL_GAMMA, _value(hyperparams.check_gamma))
_DETACH_WEIGHT = (
    "detach_weight",
    hyperparams.FOCAL_EIOU_DETACH_WEIGHT,
    _value(partial(hyperparams.check_flag, "detach_weight")),
)
_FOCAL_L1_BETA = ("beta", hyperparams.FOCAL_L1_BETA, _value(hyperparams.check_focal_l1_beta))
_THETA = ("theta", hyperparams.SIOU_THETA, _value(hyperparams.check_theta))


def _positive(name: str, default: float):
    return (name, default, _value(partial(hyperparams.check_positive, name)))


def _balanced_l1_param(name: str, default: float):
    def check(param, params):
        hyperparams.check_balanced_l1_value(param, params[param])
        if param == "gamma":  # alpha, checked before, bounds gamma / alpha
            hyperparams.check_balanced_l1_ratio(params["alpha"], params["gamma"])

    return (name, default, check)


def _spec(
    fn, per_pair, *params, on_boxes=True, reductions=REDUCTIONS, head_inputs=(), focal=False
) -> BoxLossSpec:
    """A :class:`BoxLossSpec` from ``(name, default, check)`` triples; ``focal``: the loss takes
    the focal weight as an option (parameters ``gamma``, default 0, and ``detach_weight``)."""
    terms = None
    if focal:
        params += (_FOCAL_GAMMA, _DETACH_WEIGHT)
        terms, per_pair = focal_parts(per_pair)
        reductions = FOCAL_REDUCTIONS
    return BoxLossSpec(
        fn,
        per_pair,
        on_boxes,
        MappingProxyType({name: default for name, default, _ in params}),
        MappingProxyType({name: check for name, _, check in params}),
        reductions,
        head_inputs,
        terms,
        focal,
    )


BOX_LOSSES: Mapping[str, BoxLossSpec] = MappingProxyType(
    {
        "iou": _spec(iou_loss, iou_per_pair, _EPS, focal=True),
        "giou": _spec(giou_loss, giou_per_pair, _EPS, focal=True),
        "diou": _spec(diou_loss, diou_per_pair, _EPS, focal=True),
        "ciou": _spec(ciou_loss, ciou_per_pair, _EPS, focal=True),
        "eiou": _spec(eiou_loss, eiou_per_pair, _EPS, focal=True),
        "focal_eiou": replace(
            _spec(
                focal_eiou_loss,
                focal_eiou_per_pair,
                _GAMMA,
                _EPS,
                _DETACH_WEIGHT,
                reductions=FOCAL_REDUCTIONS,
            ),
            terms=partial(focal_terms, eiou_and_iou),
        ),
        "focal_eiou_v1": _spec(focal_eiou_v1_loss, focal_eiou_v1_per_pair, _FOCAL_L1_BETA, _EPS),
        "focal_eiou_star": _spec(focal_eiou_star_loss, focal_eiou_star_per_pair, _GAMMA, _EPS),
        # The box-loss zoo (docs/losses.md).
        "siou": _spec(siou_loss, siou_per_pair, _THETA, _EPS, focal=True),
        "shape_iou": _spec(
            shape_iou_loss,
            shape_iou_per_pair,
            (
                "scale",
                hyperparams.SHAPE_IOU_SCALE,
                _value(partial(hyperparams.check_non_negative, "scale")),
            ),
            _THETA,
            _EPS,
            focal=True,
        ),
        "wiou_v1": _spec(wiou_v1_loss, wiou_v1_per_pair, _EPS),
        "wiou_v3": _spec(
            wiou_v3_loss,
            wiou_v3_per_pair,
            _positive("alpha", hyperparams.WIOU_ALPHA),
            _positive("delta", hyperparams.WIOU_DELTA),
            _EPS,
            head_inputs=("iou_loss_mean",),
        ),
        "alpha_iou": _spec(
            alpha_iou_loss,
            alpha_iou_per_pair,
            _positive("alpha", hyperparams.ALPHA_IOU_ALPHA),
            _EPS,
            focal=True,
        ),
        "mpdiou": _spec(
            mpdiou_loss, mpdiou_per_pair, _EPS, head_inputs=("image_size",), focal=True
        ),
        "inner_iou": _spec(
            inner_iou_loss,
            inner_iou_per_pair,
            _positive("ratio", hyperparams.INNER_IOU_RATIO),
            ("base", hyperparams.INNER_IOU_BASE, _value(hyperparams.check_inner_iou_base)),
            _EPS,
            focal=True,
        ),
        "nwd": _spec(nwd_loss, nwd_per_pair, _positive("constant", hyperparams.NWD_CONSTANT), _EPS),
        "smooth_l1": _spec(
            smooth_l1_loss,
            smooth_l1_elementwise,
            ("beta", hyperparams.SMOOTH_L1_BETA, _value(hyperparams.check_smooth_l1_beta)),
            on_boxes=False,
        ),
        "focal_l1": _spec(focal_l1_loss, focal_l1_elementwise, _FOCAL_L1_BETA, on_boxes=False),
        "balanced_l1": _spec(
            balanced_l1_loss,
            balanced_l1_elementwise,
            _balanced_l1_param("alpha", hyperparams.BALANCED_L1_ALPHA),
            _balanced_l1_param("gamma", hyperparams.BALANCED_L1_GAMMA),
            _balanced_l1_param("beta", hyperparams.BALANCED_L1_BETA),
            on_boxes=False,
        ),
    }
)
"""Read-only mapping from loss name to its :class:`BoxLossSpec`."""


def get_box_loss(name: str) -> BoxLossSpec:
    """The :class:`BoxLossSpec` of the loss ``name``.

    Raises:
        ValueError: no loss has that name (the message lists the valid ones).
    """
    spec = BOX_LOSSES.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(
            f"unknown box-regression loss {name!r}; valid names: {', '.join(BOX_LOSSES)}"
        )
    return spec


def check_box_loss(name: str, params: Mapping[str, object]) -> dict:
    """Check a loss name and its hyper-parameters once; return every parameter's value.

    Args:
        name (str): a key of :data:`BOX_LOSSES`.
        params (Mapping): some of the loss's hyper-parameters; the others take their defaults.

    Returns:
        dict: every hyper-parameter of the loss, ``params`` over the defaults.

    Raises:
        ValueError: an unknown loss name, or a parameter the loss does not take.
        BoxLossParameterError: a value out of range or of the wrong type; its ``param`` names
            the parameter.
    """
    spec = get_box_loss(name)
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        raise ValueError(
            f"box-regression loss {name!r} does not take {unknown}; it takes {list(spec.params)}"
        )
    full = {**spec.defaults, **params}
    for param, check in spec.checks.items():
        try:
            check(param, full)
        except (TypeError, ValueError) as error:
            raise BoxLossParameterError(name, param, str(error)) from None
    return full


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
        **params: hyper-parameters, among ``BOX_LOSSES[name].params``, and the loss's
            ``BOX_LOSSES[name].head_inputs`` (required).

    Returns:
        Tensor: shape (...) for "none" (coordinate losses are summed over the last dim),
        else a scalar.
    """
    spec = get_box_loss(name)
    unknown = sorted(set(params) - set(spec.params) - set(spec.head_inputs))
    if unknown:
        raise TypeError(
            f"Box regression loss {name!r} does not accept {unknown}; it accepts {spec.params}"
        )
    missing = [key for key in spec.head_inputs if key not in params]
    if missing:
        raise TypeError(f"Box regression loss {name!r} needs {missing} at every call")
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
    if spec.focal_optional:
        inputs = {key: params.pop(key) for key in spec.head_inputs}
        hyper = check_box_loss(name, params)
        terms, _ = focal_parts(partial(spec.fn, reduction="none"))  # checks the loss's arguments
        loss, weight = terms(pred, target, **hyper, **inputs)
        return focal_reduce(loss, weight, reduction)
    if spec.on_boxes:
        return spec.fn(pred, target, reduction=reduction, **params)
    per_coordinate = spec.fn(pred, target, reduction="none", **params)
    return reduce_loss(per_coordinate.sum(dim=-1), reduction)
