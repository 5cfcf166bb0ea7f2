"""FocalL1 loss and gradient curves (Figs. 4 and 5), taken from the library by autograd.

The curves are computed through ``box_regression_loss("focal_l1", ...)`` and its autograd
gradient, and compared with Eqs. 8 and 9 written out here, so the figure is a real check of the
library's implementation.
"""

import math
from typing import Sequence

import torch

from focal_eiou_d2.layers import box_regression_loss

BETAS = (1 / math.e, 0.5, 0.8, 1.0)
X_MAX = 2.0  # largest error plotted


def analytic_gradient(x: torch.Tensor, beta: float) -> torch.Tensor:
    """Eq. 8: g(x) = -alpha * x * ln(beta * x) for 0 < x <= 1, -alpha * ln(beta) for x > 1.

    Args:
        x (Tensor[M]): errors, > 0.
        beta (float): in [1/e, 1]; alpha = e * beta.

    Returns:
        Tensor[M]: dL_f/dx.
    """
    alpha = math.e * beta
    inner = -alpha * x * torch.log(beta * x.clamp(max=1))
    return torch.where(x <= 1, inner, torch.full_like(x, -alpha * math.log(beta)))


def analytic_loss(x: torch.Tensor, beta: float) -> torch.Tensor:
    """Eq. 9: L_f(x) = -alpha x^2 (2 ln(beta x) - 1) / 4 for 0 < x <= 1, linear beyond.

    Args:
        x (Tensor[M]): errors, > 0.
        beta (float): in [1/e, 1]; alpha = e * beta.

    Returns:
        Tensor[M]: L_f(x), continuous at x = 1.
    """
    alpha = math.e * beta
    inner = -alpha * x**2 * (2 * torch.log(beta * x.clamp(max=1)) - 1) / 4
    outer = -alpha * math.log(beta) * x + alpha * (2 * math.log(beta) + 1) / 4
    return torch.where(x <= 1, inner, outer)


def library_curve(x: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """FocalL1 loss and gradient of an error x in one coordinate, from the library.

    The prediction is (x, 0, 0, 0) against a zero target, so the library's sum over the four
    coordinates is L_f(x) + 3 L_f(0) = L_f(x).

    Args:
        x (Tensor[M]): errors, >= 0.
        beta (float): FocalL1's beta.

    Returns:
        tuple[Tensor[M], Tensor[M]]: loss and autograd gradient with respect to x.
    """
    pred = torch.zeros(len(x), 4, dtype=x.dtype)
    pred[:, 0] = x
    pred.requires_grad_(True)
    loss = box_regression_loss("focal_l1", pred, torch.zeros_like(pred), beta=beta)
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    return loss.detach(), grad[:, 0]


def focal_l1_curves(betas: Sequence[float] = BETAS, x_max: float = X_MAX, num: int = 401) -> dict:
    """Loss and gradient curves for several beta, with their deviation from Eqs. 8-9.

    Args:
        betas (Sequence[float]): values of beta in [1/e, 1].
        x_max (float): largest error plotted.
        num (int): number of grid points in (0, x_max].

    Returns:
        dict: {"x": list, "curves": {str(beta): {"beta", "loss", "grad",
        "max_abs_loss_error", "max_abs_grad_error", "argmax_grad", "max_grad"}}}.

    Raises:
        ValueError: if ``x_max`` is not a finite number > 0 (the library checks beta).
    """
    if not (math.isfinite(x_max) and x_max > 0):
        raise ValueError(f"x_max (--x-max) must be a finite number > 0, got {x_max!r}")
    x = torch.linspace(0, x_max, num + 1, dtype=torch.float64)[1:]
    curves = {}
    for beta in betas:
        loss, grad = library_curve(x, beta)
        curves[f"{beta:.4f}"] = {
            "beta": beta,
            "loss": loss.tolist(),
            "grad": grad.tolist(),
            "max_abs_loss_error": float((loss - analytic_loss(x, beta)).abs().max()),
            "max_abs_grad_error": float((grad - analytic_gradient(x, beta)).abs().max()),
            "argmax_grad": float(x[grad.argmax()]),
            "max_grad": float(grad.max()),
        }
    return {"x": x.tolist(), "curves": curves}
