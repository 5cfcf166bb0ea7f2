"""Dtype handling and reductions shared by every loss in this package."""

import torch

REDUCTIONS = ("none", "sum", "mean")


def upcast_float(tensor: torch.Tensor) -> torch.Tensor:
    """Return ``tensor`` in the dtype the losses compute in.

    float32 and float64 are kept. Half precision (float16, bfloat16) and integer inputs are
    computed in float32: in float16, squared enclosing-box sides of pixel boxes wider than about
    256 px overflow, and the EIoU width and height terms silently become 0.
    """
    if tensor.dtype in (torch.float32, torch.float64):
        return tensor
    return tensor.float()


def reduce_loss(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply ``reduction`` to a per-element loss.

    Args:
        loss (Tensor[...]): per-element loss.
        reduction (str): "none" | "sum" | "mean". An empty ``loss`` reduces to 0 with its
            autograd graph kept.

    Returns:
        Tensor: ``loss`` itself for "none", else a scalar.
    """
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    hint = (
        " ('weighted', Eq. 11, is only supported by focal_eiou)" if reduction == "weighted" else ""
    )
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}{hint}")
