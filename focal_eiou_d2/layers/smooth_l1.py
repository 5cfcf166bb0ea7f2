"""Smooth L1 loss on box-regression coordinates, with detectron2's convention for beta = 0."""

import torch

from .hyperparams import SMOOTH_L1_BETA, check_smooth_l1_beta
from .loss_utils import reduce_loss, upcast_float

PLAIN_L1_BELOW = 1e-5
"""A beta below this means plain L1, as in Detectron2 (whose smooth L1 has the same rule)."""


def smooth_l1_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    beta: float = SMOOTH_L1_BETA,
    reduction: str = "none",
) -> torch.Tensor:
    """Elementwise smooth L1 loss of x = |input - target|.

    L(x) = 0.5 * x^2 / beta for x < beta, else x - 0.5 * beta. As in detectron2, beta below
    :data:`PLAIN_L1_BELOW` means plain L1, L(x) = x.

    Args:
        input (Tensor[...]): predictions, e.g. box deltas.
        target (Tensor[...]): targets, broadcastable with ``input``.
        beta (float): transition point from quadratic to linear, finite and >= 0.
        reduction (str): "none" | "sum" | "mean".

    Returns:
        Tensor: the broadcast shape for "none", else a scalar; float32 for half-precision inputs.
    """
    check_smooth_l1_beta(beta)
    return reduce_loss(smooth_l1_elementwise(input, target, beta), reduction)


def smooth_l1_elementwise(
    input: torch.Tensor, target: torch.Tensor, beta: float = SMOOTH_L1_BETA
) -> torch.Tensor:
    """Elementwise smooth L1 loss, unchecked; see :func:`smooth_l1_loss`."""
    distance = (upcast_float(input) - upcast_float(target)).abs()
    if beta < PLAIN_L1_BELOW:
        return distance
    return torch.where(distance < beta, 0.5 * distance**2 / beta, distance - 0.5 * beta)
