"""Hyper-parameters of the losses: their defaults (the one source of them) and valid ranges.

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
    """gamma of Focal-EIoU and Focal-EIoU*: a finite number >= 0 (0 gives the EIoU loss)."""
    if not (_real("gamma", gamma) >= 0 and math.isfinite(gamma)):
        raise ValueError(
            f"gamma must be a finite number >= 0 (default {FOCAL_EIOU_GAMMA}), got {gamma!r}"
        )


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
    """alpha, gamma, beta of BalancedL1: finite and > 0, with gamma / alpha small enough that
    b = e^(gamma / alpha) - 1 is finite in float32."""
    for name, value in (("alpha", alpha), ("gamma", gamma), ("beta", beta)):
        if not (_real(name, value) > 0 and math.isfinite(value)):
            raise ValueError(f"BalancedL1 {name} must be a finite number > 0, got {value!r}")
    if gamma / alpha > MAX_BALANCED_L1_RATIO:
        raise ValueError(
            f"BalancedL1 gamma / alpha must be at most {MAX_BALANCED_L1_RATIO:.1f} (else "
            f"b = e^(gamma / alpha) - 1 overflows float32), got {gamma!r} / {alpha!r}"
        )


def check_flag(name: str, value: bool) -> None:
    """A switch such as detach_weight: True or False."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got a {type(value).__name__}")


def _real(name: str, value) -> float:
    """``value`` if it is a real Python or NumPy number (not a bool, not a tensor)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        # The type only: printing a tensor would read it from the device.
        raise TypeError(f"{name} must be a real number, got a {type(value).__name__}")
    return value
