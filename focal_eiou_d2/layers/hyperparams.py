"""Hyper-parameters of the losses, the zoo's included: their defaults (the one source of them) and
valid ranges.

The checks take Python numbers, never tensors, so validating a call reads nothing from the device.
Each raises ValueError naming the parameter, the valid range and the value (TypeError for a value
that is not a number at all).
"""

import math
import numbers

EPS = 1e-7
"""Added to every denominator of the IoU-family losses (and CIoU's height clamp)."""

FOCAL_EIOU_GAMMA = 0.5
"""gamma of Focal-EIoU (Eq. 10) and of Focal-EIoU* (Sec. 5.4.4): the paper's value."""

FOCAL_GAMMA = 0.0
"""gamma of the focal weight IoU^gamma (Eq. 10) as an option of the other IoU losses: 0, off."""

WIOU_MOMENTUM_FROM_SCHEDULE = 0.0
"""The value of the config key of Wise-IoU v3's momentum that asks for the paper's rule over the
training's length (``wiou_momentum(SOLVER.MAX_ITER)``)."""

FOCAL_EIOU_DETACH_WEIGHT = True
"""Whether Focal-EIoU's weight IoU^gamma is a constant of the graph (no gradient through it)."""

FOCAL_L1_BETA = 0.8
"""beta of FocalL1 (Eq. 9) and of Focal-EIoU v1: the paper's value."""

SMOOTH_L1_BETA = 0.0
"""beta of smooth L1: 0 is plain L1, Detectron2's default for RetinaNet."""

BALANCED_L1_ALPHA, BALANCED_L1_GAMMA, BALANCED_L1_BETA = 0.5, 1.5, 1.0
"""alpha, gamma and beta of BalancedL1: Libra R-CNN's values."""

MAX_BALANCED_L1_RATIO = math.log(3.4028234663852886e38)
"""Largest gamma / alpha of BalancedL1: b = e^(gamma / alpha) - 1 must be finite in float32."""


def check_eps(eps: float) -> None:
    """eps: a finite number > 0."""
    if not (_real("eps", eps) > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number > 0 (default {EPS}), got {eps!r}")


def check_gamma(gamma: float) -> None:
    """gamma of a focal weight IoU^gamma (Focal-EIoU, the option of the other IoU losses) or of
    Focal-EIoU*: a finite number >= 0 (0: weights of 1)."""
    if not (_real("gamma", gamma) >= 0 and math.isfinite(gamma)):
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")


def check_focal_l1_beta(beta: float) -> None:
    """beta of FocalL1: in [1/e, 1], so that the gradient peaks at exactly 1 (Eq. 8)."""
    if not 1 / math.e <= _real("beta", beta) <= 1:
        raise ValueError(
            f"FocalL1 beta must lie in [1/e, 1] (about [0.368, 1]) so that the gradient peaks "
            f"at exactly 1 (default {FOCAL_L1_BETA}); got {beta!r}"
        )


def check_smooth_l1_beta(beta: float) -> None:
    """beta of smooth L1: a finite number >= 0."""
    if not (_real("beta", beta) >= 0 and math.isfinite(beta)):
        raise ValueError(
            f"smooth L1 beta must be a finite number >= 0 (default {SMOOTH_L1_BETA}), got {beta!r}"
        )


def check_balanced_l1(alpha: float, gamma: float, beta: float) -> None:
    """alpha, gamma, beta of BalancedL1: each :func:`check_balanced_l1_value`, and
    :func:`check_balanced_l1_ratio`."""
    for name, value in (("alpha", alpha), ("gamma", gamma), ("beta", beta)):
        check_balanced_l1_value(name, value)
    check_balanced_l1_ratio(alpha, gamma)


def check_balanced_l1_value(name: str, value: float) -> None:
    """One of BalancedL1's alpha, gamma, beta (``name``): a finite number > 0."""
    if not (_real(name, value) > 0 and math.isfinite(value)):
        raise ValueError(f"BalancedL1 {name} must be a finite number > 0, got {value!r}")


def check_balanced_l1_ratio(alpha: float, gamma: float) -> None:
    """BalancedL1's gamma / alpha: small enough that b = e^(gamma / alpha) - 1 is finite in
    float32."""
    if gamma / alpha > MAX_BALANCED_L1_RATIO:
        raise ValueError(
            f"BalancedL1 gamma / alpha must be at most {MAX_BALANCED_L1_RATIO:.1f} (else "
            f"b = e^(gamma / alpha) - 1 overflows float32), got {gamma!r} / {alpha!r}"
        )


def check_flag(name: str, value: bool) -> None:
    """A switch such as detach_weight: True or False."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got a {type(value).__name__}")


# The box-loss zoo (SIoU, Wise-IoU, Alpha-IoU, MPDIoU, Inner-IoU, Shape-IoU, NWD): the papers'
# values and the ranges.

SIOU_THETA = 4.0
"""theta of SIoU's shape cost, also Shape-IoU's: the SIoU paper's value (it suggests 2 to 6)."""

WIOU_ALPHA, WIOU_DELTA = 1.9, 3.0
"""alpha and delta of Wise-IoU v3's focusing coefficient: the paper's values for YOLOv7."""

WIOU_MOMENTUM_RESIDUAL = 0.05
"""Wise-IoU's running-mean rule: the initial value's weight falls to 5 % over the horizon."""

ALPHA_IOU_ALPHA = 3.0
"""alpha of Alpha-IoU (1 - IoU^alpha): the paper's recommended value."""

INNER_IOU_RATIO = 0.7
"""ratio of Inner-IoU's auxiliary boxes (the paper suggests [0.5, 1.5])."""

INNER_IOU_BASES = ("iou", "giou", "diou", "ciou", "eiou", "siou")
"""The losses Inner-IoU can extend."""

INNER_IOU_BASE = "iou"
"""The loss Inner-IoU extends by default: the IoU loss, as in the paper's Eq. 16-17."""

SHAPE_IOU_SCALE = 0.0
"""scale of Shape-IoU: 0 gives equal weights to the two axes."""

NWD_CONSTANT = 12.8
"""C of the normalized Wasserstein distance: the NWD paper's value for AI-TOD (pixels)."""


def check_positive(name: str, value: float) -> None:
    """``value``: a finite number > 0."""
    if not (_real(name, value) > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_non_negative(name: str, value: float) -> None:
    """``value``: a finite number >= 0."""
    if not (_real(name, value) >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_theta(theta: float) -> None:
    """theta of the SIoU shape cost: finite and >= 1.

    Below 1, (1 - e^-omega)^theta has an infinite slope at omega = 0, so a prediction whose width
    or height is already right would get a NaN gradient.
    """
    if not (_real("theta", theta) >= 1 and math.isfinite(theta)):
        raise ValueError(
            f"theta must be a finite number >= 1 (default {SIOU_THETA}; the SIoU paper suggests 2 "
            f"to 6), got {theta!r}"
        )


def check_inner_iou_base(base: str) -> None:
    """base of Inner-IoU: one of :data:`INNER_IOU_BASES`."""
    if base not in INNER_IOU_BASES:
        raise ValueError(f"base must be one of {INNER_IOU_BASES}, got {base!r}")


def check_image_size_pair(image_size) -> None:
    """image_size given as numbers: a pair (height, width) of finite numbers > 0."""
    if not isinstance(image_size, (tuple, list)) or len(image_size) != 2:
        raise ValueError(f"image_size must be a pair (height, width), got {image_size!r}")
    for name, value in zip(("image_size height", "image_size width"), image_size, strict=True):
        check_positive(name, value)


def _real(name: str, value) -> float:
    """``value`` if it is a real Python or NumPy number (not a bool, not a tensor)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        # The type only: printing a tensor would read it from the device.
        raise TypeError(f"{name} must be a real number, got a {type(value).__name__}")
    return value
