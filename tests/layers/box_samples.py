"""Box pairs shared by the loss tests (a plain module: tests/conftest.py is imported by name)."""

import torch

from focal_eiou_d2.layers import BOX_LOSSES

# What a detection head would pass to the losses that need more than the boxes.
HEAD_INPUTS = {"image_size": (480.0, 640.0), "iou_loss_mean": 0.5}


def head_inputs(name: str) -> dict:
    """The inputs of :data:`HEAD_INPUTS` that the loss ``name`` needs (none for most losses)."""
    return {key: HEAD_INPUTS[key] for key in BOX_LOSSES[name].head_inputs}


def random_pairs(num_pairs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random valid XYXY pairs in float64: half perturbed copies of the target (overlapping), half
    independent boxes (mostly disjoint). Sides lie in [5, 300] px."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(low, high, *shape):
        return low + (high - low) * torch.rand(*shape, generator=generator, dtype=torch.float64)

    def xyxy(centre, size):
        return torch.cat([centre - size / 2, centre + size / 2], dim=-1)

    target_size = uniform(5, 300, num_pairs, 2)
    target_centre = uniform(0, 500, num_pairs, 2)
    half = num_pairs // 2
    jitter = torch.randn(num_pairs, 2, generator=generator, dtype=torch.float64)
    scale = torch.exp(0.4 * torch.randn(num_pairs, 2, generator=generator, dtype=torch.float64))
    pred_centre = torch.cat(
        [
            target_centre[:half] + 0.3 * target_size[:half] * jitter[:half],
            uniform(0, 500, num_pairs - half, 2),
        ]
    )
    pred_size = torch.cat(
        [target_size[:half] * scale[:half], uniform(5, 300, num_pairs - half, 2)]
    ).clamp(min=5)
    return xyxy(pred_centre, pred_size), xyxy(target_centre, target_size)


def generic_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """A few overlapping, non-degenerate float64 pairs with no coordinate ties, requiring grad."""
    pred = torch.tensor(
        [
            [0.3, 0.2, 2.1, 3.9],
            [1.0, 1.5, 4.2, 3.3],
            [10.0, 12.0, 30.5, 41.0],
            [5.1, 4.7, 7.9, 9.4],
        ],
        dtype=torch.float64,
        requires_grad=True,
    )
    target = torch.tensor(
        [[0.1, 0.4, 4.0, 4.2], [0.7, 0.9, 3.1, 4.4], [14.0, 9.0, 35.0, 37.0], [5.6, 3.9, 8.3, 8.8]],
        dtype=torch.float64,
        requires_grad=True,
    )
    return pred, target
