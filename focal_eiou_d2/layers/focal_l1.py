"""FocalL1 loss (Eq. 8, 9): an L1-type loss whose gradient peaks at 1 at errors of 1 / (e beta)."""

import math

import torch

from .hyperparams import FOCAL_L1_BETA, check_focal_l1_beta
from .loss_utils import reduce_loss, upcast_float


def focal_l1_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    beta: float = FOCAL_L1_BETA,
    reduction: str = "none",
) -> torch.Tensor:
    """Elementwise FocalL1 loss of x = |input - target| (Eq. 9).

    With alpha = e * beta, L(x) = -alpha * x^2 * (2 * ln(beta * x) - 1) / 4 for 0 <= x <= 1 and
    L(x) = -alpha * ln(beta) * x + C for x > 1, where C = alpha * (2 * ln(beta) + 1) / 4 makes L
    continuous. Its gradient -alpha * x * ln(beta * x) (Eq. 8) is continuous, equals
    -alpha * ln(beta) for x > 1 and has its maximum, exactly 1, at x = 1 / (e * beta).

    Args:
        input (Tensor[...]): predictions, e.g. box deltas.
        target (Tensor[...]): targets, broadcastable with ``input``.
        beta (float): in [1/e, 1]; the paper's default is 0.8.
        reduction (str): "none" | "sum" | "mean".

    Returns:
        Tensor: the broadcast shape for "none", else a scalar; float32 for half-precision inputs.
    """
    check_focal_l1_beta(beta)
    return reduce_loss(focal_l1_elementwise(input, target, beta), reduction)


def focal_l1_elementwise(
    input: torch.Tensor, target: torch.Tensor, beta: float = FOCAL_L1_BETA
) -> torch.Tensor:
    """Elementwise FocalL1 loss, unchecked; see :func:`focal_l1_loss`."""
    return focal_l1((upcast_float(input) - upcast_float(target)).abs(), beta)


def focal_l1(distance: torch.Tensor, beta: float) -> torch.Tensor:
    """FocalL1 (Eq. 9) of non-negative values.

    Args:
        distance (Tensor[...]): x >= 0.
        beta (float): in [1/e, 1] (checked by the callers).

    Returns:
        Tensor[...]: L(x), finite with a finite gradient everywhere, including x = 0.
    """
    alpha = math.e * beta
    inner_x = distance.clamp(max=1.0)
    # x^2 * ln(beta * x) -> 0 as x -> 0: taking the log of 1 where x = 0 avoids 0 * log(0) = NaN
    # in the value and in the gradient, and leaves the product (and its gradient, 0) unchanged.
    log_argument = torch.where(inner_x > 0, beta * inner_x, 1.0)
    inner = -alpha * inner_x**2 * (2 * torch.log(log_argument) - 1) / 4  # Eq. 9, 0 <= x <= 1
    offset = alpha * (2 * math.log(beta) + 1) / 4
    outer = -alpha * math.log(beta) * distance + offset  # Eq. 9, x > 1
    return torch.where(distance < 1, inner, outer)
