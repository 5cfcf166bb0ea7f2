import math

import pytest

from focal_eiou_d2.simulation.focal_l1_curves import focal_l1_curves


def test_library_focal_l1_matches_equations_8_and_9():
    curves = focal_l1_curves(num=800)
    for curve in curves["curves"].values():
        assert curve["max_abs_grad_error"] < 1e-9
        assert curve["max_abs_loss_error"] < 1e-9


@pytest.mark.parametrize("beta", [0.5, 0.8, 1.0])
def test_gradient_peaks_at_one_for_an_error_of_one_over_e_beta(beta):
    curve = focal_l1_curves([beta], x_max=1.0, num=2000)["curves"][f"{beta:.4f}"]
    assert curve["max_grad"] == pytest.approx(1.0, abs=1e-5)
    assert curve["argmax_grad"] == pytest.approx(1 / (math.e * beta), abs=1e-3)
