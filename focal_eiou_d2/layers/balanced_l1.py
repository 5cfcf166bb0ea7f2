"""Balanced L1 loss of Libra R-CNN (Pang et al., CVPR 2019, Eq. 8, 9 there), on box deltas."""

import math

import torch

from .hyperparams import BALANCED_L1_ALPHA, BALANCED_L1_BETA, BALANCED_L1_GAMMA, check_balanced_l1
from .loss_utils import reduce_loss, upcast_float


def balanced_l1_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    alpha: float = BALANCED_L1_ALPHA,
    gamma: float = BALANCED_L1_GAMMA,
    beta: float = BALANCED_L1_BETA,
    reduction: str = "none",
) -> torch.Tensor:
    """Elementwise Balanced L1 loss of x = |input - target|.

    With b = e^(gamma / alpha) - 1, so that alpha * ln(b + 1) = gamma (Eq. 9 there):

        L(x) = alpha / b * (b x + 1) * ln(b x / beta + 1) - alpha x    for x < beta,
        L(x) = gamma x + gamma / b - alpha beta                        otherwise (Eq. 8 there).

    L is continuous at x = beta. Its derivative, alpha * ln(b x / beta + 1) +
    alpha * (b x + 1) / (b x + beta) - alpha below beta and gamma above, is continuous there only
    for beta = 1 (Libra R-CNN's value, where it is alpha * ln(b x + 1), Eq. 7 there); for other
    betas it jumps at x = beta, as in the implementation Libra R-CNN published (mmdetection).

    Args:
        input (Tensor[...]): predictions, e.g. box deltas.
        target (Tensor[...]): targets, broadcastable with ``input``.
        alpha (float): weight of the inner (x < beta) gradient, finite and > 0.
        gamma (float): the gradient for x >= beta, finite and > 0.
        beta (float): where the loss turns linear, finite and > 0.
        reduction (str): "none" | "sum" | "mean".

    Returns:
        Tensor: the broadcast shape for "none", else a scalar; float32 for half-precision inputs.
    """
    check_balanced_l1(alpha, gamma, beta)
    return reduce_loss(balanced_l1_elementwise(input, target, alpha, gamma, beta), reduction)


def balanced_l1_elementwise(
    input: torch.Tensor,
    target: torch.Tensor,
    alpha: float = BALANCED_L1_ALPHA,
    gamma: float = BALANCED_L1_GAMMA,
    beta: float = BALANCED_L1_BETA,
) -> torch.Tensor:
    """Elementwise Balanced L1 loss, unchecked; see :func:`balanced_l1_loss`."""
    distance = (upcast_float(input) - upcast_float(target)).abs()
    b = math.expm1(gamma / alpha)
    # Clamped so that the unselected inner branch stays finite for large x, and so does its
    # (zero) share of the gradient.
    inner_x = distance.clamp(max=beta)
    inner = alpha / b * (b * inner_x + 1) * torch.log1p(b * inner_x / beta) - alpha * inner_x
    outer = gamma * distance + gamma / b - alpha * beta
    return torch.where(distance < beta, inner, outer)
