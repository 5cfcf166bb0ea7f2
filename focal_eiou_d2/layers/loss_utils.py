"""Dtype handling and reductions shared by every loss in this package."""

import torch

REDUCTIONS = ("none", "sum", "mean")
"""Reductions of every loss; those with the focal weight also have "weighted" (Eq. 11)."""


def upcast_float(tensor: torch.Tensor) -> torch.Tensor:
    """Return ``tensor`` in the dtype the losses compute in.

    float32 and float64 are kept. Half precision (float16, bfloat16) and integer inputs are
    computed in float32: in float16, squared enclosing-box sides of pixel boxes wider than about
    256 px overflow, and the EIoU width and height terms silently become 0.
    """
    return tensor.to(compute_dtype(tensor))


def compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    """The dtype :func:`upcast_float` gives ``tensor``: its own if float32 or float64, else
    float32."""
    return tensor.dtype if tensor.dtype in (torch.float32, torch.float64) else torch.float32


def check_reduction(reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    """Raise ValueError unless ``reduction`` is one of ``allowed``."""
    if reduction not in allowed:
        hint = (
            " ('weighted', Eq. 11, needs the focal weight: focal_eiou_loss, or "
            "box_regression_loss(name, ..., gamma=...) for a loss whose BOX_LOSSES entry has "
            "focal_optional)"
        )
        raise ValueError(
            f"reduction must be one of {allowed}, got {reduction!r}"
            + (hint if reduction == "weighted" else "")
        )


def reduce_loss(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply ``reduction`` to a per-element loss.

    Args:
        loss (Tensor[...]): per-element loss.
        reduction (str): "none" | "sum" | "mean". An empty ``loss`` reduces to 0 with its
            autograd graph kept.

    Returns:
        Tensor: ``loss`` itself for "none", else a scalar.
    """
    check_reduction(reduction)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
