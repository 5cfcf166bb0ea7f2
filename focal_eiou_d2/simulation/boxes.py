"""Box encodings of the simulation and the IoU used for its metrics (never differentiated)."""

import torch


# Columns give x1 = x - w/2, y1 = y - h/2, x2 = x + w/2, y2 = y + h/2. Every product is exact
# (factors 0, +-1/2, 1) and each column has two non-zero entries, so the matmul equals the
# elementwise formula bit for bit; its forward and backward are one GEMM each, about half the
# cost of slicing + cat on CPU.
_XYWH_TO_XYXY = (
    (1.0, 0.0, 1.0, 0.0),
    (0.0, 1.0, 0.0, 1.0),
    (-0.5, 0.0, 0.5, 0.0),
    (0.0, -0.5, 0.0, 0.5),
)


def xywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """Convert centre-size boxes to corner boxes (differentiable).

    Args:
        boxes (Tensor[..., 4]): (x, y, w, h), centre and size; finite.

    Returns:
        Tensor[..., 4]: (x1, y1, x2, y2).
    """
    return boxes @ torch.tensor(_XYWH_TO_XYXY, dtype=boxes.dtype, device=boxes.device)


class AlignedIoU:
    """IoU of each box with its own target, targets' corners and areas computed once.

    Args:
        targets (Tensor[N, 4]): target boxes (x, y, w, h) with positive sizes.
    """

    def __init__(self, targets: torch.Tensor) -> None:
        self._low = targets[:, :2] - targets[:, 2:] / 2
        self._high = targets[:, :2] + targets[:, 2:] / 2
        self._area = targets[:, 2] * targets[:, 3]

    @torch.no_grad()
    def __call__(self, boxes: torch.Tensor) -> torch.Tensor:
        """IoU of boxes[i] with targets[i].

        Args:
            boxes (Tensor[N, 4]): (x, y, w, h) with non-negative sizes.

        Returns:
            Tensor[N]: IoU in [0, 1], in the dtype of ``boxes``.
        """
        half = boxes[:, 2:] / 2
        low = torch.maximum(boxes[:, :2] - half, self._low)
        high = torch.minimum(boxes[:, :2] + half, self._high)
        overlap = (high - low).clamp_(min=0)
        intersection = overlap[:, 0] * overlap[:, 1]
        union = boxes[:, 2] * boxes[:, 3] + self._area - intersection
        return intersection / union
