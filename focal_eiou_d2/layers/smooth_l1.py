"""Smooth L1 loss on box-regression coordinates, with detectron2's convention for beta = 0."""

import torch

from .loss_utils import reduce_loss, upcast_float


def smooth_l1_loss(
    input: torch.Tensor, target: torch.Tensor, beta: float = 0.0, reduction: str = "none"
) -> torch.Tensor:
    """Elementwise smooth L1 loss of x = |input - target|.

    L(x) = 0.5 * x^2 / beta for x < beta, else x - 0.5 * beta. As in detectron2, beta < 1e-5
    means plain L1, L(x) = x.

    Args:
        input (Tensor[...]): predictions, e.g. box deltas.
        target (Tensor[...]): targets, broadcastable with ``input``.
        beta (float): transition point from quadratic to linear, >= 0.
        reduction (str): "none" | "sum" | "mean".

    Returns:
        Tensor: the broadcast shape for "none", else a scalar; float32 for half-precision inputs.
    """
    distance = (upcast_float(input) - upcast_float(target)).abs()
    if beta < 1e-5:
        return reduce_loss(distance, reduction)
    loss = torch.where(distance < beta, 0.5 * distance**2 / beta, distance - 0.5 * beta)
    return reduce_loss(loss, reduction)
