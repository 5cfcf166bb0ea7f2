import math
from dataclasses import fields

import pytest
import torch

from focal_eiou_d2.simulation import READINGS, SimulationConfig


def test_each_reading_is_a_complete_preset():
    literal = SimulationConfig(reading="literal", setup="setup1")
    assert (literal.target_area, literal.points, literal.num_points) == (100.0, "square:20", 1000)
    assert literal.update == "descent"
    assert SimulationConfig(reading="literal", setup="setup2").points == "square:2.5"
    scaled = SimulationConfig(reading="scaled", setup="setup2")
    assert (scaled.target_area, scaled.points, scaled.update) == (1.0, "square:0.25", "descent")
    assert SimulationConfig(reading="scaled", setup="setup1").points == "square:2"
    diou = SimulationConfig(reading="diou", setup="setup1")
    assert (diou.target_area, diou.points, diou.num_points, diou.update) == (
        1.0,
        "disc:3",
        5000,
        "diou",
    )
    # the schedule is Algorithm 1's under every reading
    for name in READINGS:
        schedule = SimulationConfig(reading=name).schedule
        rates = [schedule.lr(t) for t in (0, 159, 160, 179, 180, 199)]
        assert schedule.iterations == 200
        assert rates == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_options_given_override_the_reading():
    config = SimulationConfig(reading="diou", points="square:2.5", num_points=7, update="descent")
    assert (config.points, config.num_points, config.update) == ("square:2.5", 7, "descent")
    assert config.target_area == 1.0


def test_every_reading_dependent_option_is_set_by_every_reading():
    unset = [option.name for option in fields(SimulationConfig) if option.default is None]
    for name in READINGS:
        for setup in ("setup1", "setup2"):
            config = SimulationConfig(reading=name, setup=setup)
            assert all(getattr(config, option) is not None for option in unset)


@pytest.mark.parametrize(
    "option, value, flag",
    [
        ("base_lr", -0.1, "--lr"),
        ("base_lr", math.nan, "--lr"),
        ("base_lr", math.inf, "--lr"),
        ("lr_decay", 0.0, "--lr-decay"),
        ("min_size", -1.0, "--min-size"),
        ("min_size", math.nan, "--min-size"),
        ("target_area", 0.0, "--target-area"),
        ("num_points", 0, "--num-points"),
        ("iterations", 0, "--iterations"),
        ("iterations", 2.5, "--iterations"),
        ("quantile_every", 0, "--quantile-every"),
        ("seed", -1, "--seed"),
        ("milestones", (0.9, 0.8), "--milestones"),
        ("milestones", (0.5, math.nan), "--milestones"),
        ("milestones", (1.5,), "--milestones"),
        ("points", "square", "--points"),
        ("points", "disc:-1", "--points"),
        ("reading", "literally", "--reading"),
        ("setup", "setup3", "--setup"),
        ("update", "ascent", "--update"),
        ("dtype", "float16", "--dtype"),
        ("device", "tpu", "--device"),
        ("losses", ("eoiu",), "--losses"),
        ("losses", ("eiou", "eiou"), "--losses"),
        ("losses", (), "--losses"),
    ],
)
def test_invalid_options_name_the_option_and_its_flag(option, value, flag):
    with pytest.raises(ValueError) as error:
        SimulationConfig(**{option: value})
    assert f"{option} ({flag}) must be" in str(error.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the message on a machine without GPU")
def test_cuda_without_a_gpu_is_an_error():
    with pytest.raises(ValueError, match="--device cpu"):
        SimulationConfig(device="cuda")


@pytest.mark.parametrize(
    "params, message",
    [
        ({"focal_eoiu": {"gamma": 2.0}}, "unknown box-regression loss 'focal_eoiu'"),
        ({"focal_eiou": {"gamma_": 2.0}}, "accepts the parameters"),
        ({"giou": {"theta": 1.0}}, "accepts the parameters"),
        ({"focal_eiou": {"gamma": math.nan}}, "focal_eiou.gamma must be a finite number"),
        ({"smooth_l1": {"beta": math.inf}}, "smooth_l1.beta must be a finite number"),
        ({"focal_eiou_v1": {"beta": 0.5}}, "which this run does not include"),
    ],
)
def test_bad_loss_params_are_rejected_before_any_work(params, message):
    with pytest.raises(ValueError, match="loss_params \\(--param\\)") as error:
        SimulationConfig(loss_params=params)
    assert message in str(error.value)


def test_valid_loss_params_are_kept():
    params = {"focal_eiou": {"gamma": 0.25, "detach_weight": False}, "smooth_l1": {"beta": 1.0}}
    assert SimulationConfig(loss_params=params).loss_params == params
