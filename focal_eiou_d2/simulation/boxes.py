"""Box encodings of the simulation and the IoU used for its metrics (never differentiated)."""

from typing import Optional

import torch


class _XywhToXyxy(torch.autograd.Function):
    """(x, y, w, h) -> (x - w/2, y - h/2, x + w/2, y + h/2) with its linear backward written out.

    Two strided kernels forward (x1y1 and x2y2) and three backward, writing into preallocated
    outputs: about half the cost of slicing + cat under autograd on CPU, and bit-identical to it
    (the factors 1/2 are exact).
    """

    @staticmethod
    def forward(ctx, boxes: torch.Tensor) -> torch.Tensor:
        corners = torch.empty_like(boxes)
        torch.add(boxes[..., :2], boxes[..., 2:], alpha=-0.5, out=corners[..., :2])
        torch.add(boxes[..., :2], boxes[..., 2:], alpha=0.5, out=corners[..., 2:])
        return corners

    @staticmethod
    def backward(ctx, grad_corners: torch.Tensor) -> torch.Tensor:
        grad = torch.empty_like(grad_corners)
        low, high = grad_corners[..., :2], grad_corners[..., 2:]
        torch.add(low, high, out=grad[..., :2])  # dL/dx = dL/dx1 + dL/dx2
        torch.sub(high, low, out=grad[..., 2:])  # dL/dw = (dL/dx2 - dL/dx1) / 2
        grad[..., 2:].mul_(0.5)
        return grad


def xywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """Convert centre-size boxes to corner boxes (differentiable).

    Args:
        boxes (Tensor[..., 4]): (x, y, w, h), centre and size.

    Returns:
        Tensor[..., 4]: (x1, y1, x2, y2), contiguous.
    """
    return _XywhToXyxy.apply(boxes)


class AlignedIoU:
    """IoU of each box with its own target, targets' corners and areas computed once.

    Args:
        targets (Tensor[N, 4]): target boxes (x, y, w, h) with positive sizes.
    """

    def __init__(self, targets: torch.Tensor) -> None:
        corners = _XywhToXyxy.apply(targets.detach())
        self._low, self._high = corners[:, :2], corners[:, 2:]
        self._area = targets[:, 2] * targets[:, 3]

    @torch.no_grad()
    def __call__(self, boxes: torch.Tensor, corners: Optional[torch.Tensor] = None) -> torch.Tensor:
        """IoU of boxes[i] with targets[i].

        Args:
            boxes (Tensor[N, 4]): (x, y, w, h) with non-negative sizes.
            corners (Tensor[N, 4] | None): the same boxes as XYXY, if already computed.

        Returns:
            Tensor[N]: IoU in [0, 1], in the dtype of ``boxes``.
        """
        if corners is None:
            corners = _XywhToXyxy.apply(boxes)
        low = torch.maximum(corners[:, :2], self._low)
        overlap = torch.minimum(corners[:, 2:], self._high).sub_(low).clamp_(min=0)
        intersection = overlap[:, 0] * overlap[:, 1]
        union = (boxes[:, 2] * boxes[:, 3]).add_(self._area).sub_(intersection)
        return intersection.div_(union)
