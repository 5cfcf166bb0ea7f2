import json
import re
from dataclasses import fields

import pytest

from focal_eiou_d2.simulation import SimulationConfig, cli
from focal_eiou_d2.simulation.cli import main, parse_loss_params

TINY_RUN = ["--setup", "setup2", "--num-points", "2", "--iterations", "12", "--quantile-every", "4"]
FIGURES = ("error_curves.png", "iou_boxplots.png", "trajectory.png", "focal_l1.png")
LOSS_KEYS = {"params", "error", "mean_iou", "quantile_iterations", "iou_quantiles", "final"}
FINAL_KEYS = {"error", "mean_iou", "median_iou", "share_iou_gt_0.5", "share_iou_gt_0.9"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    output = tmp_path_factory.mktemp("run")
    argv = ["run", *TINY_RUN, "--output", str(output), "--no-progress"]
    argv += ["--param", "focal_eiou.gamma=0.25", "--param", "smooth_l1.beta=0.5"]
    assert main(argv) == 0
    return output


def test_run_writes_results_summary_and_figures(run_dir):
    for name in ("results.json", "summary.md", "trajectory.json", "focal_l1.json") + FIGURES:
        path = run_dir / name
        assert path.is_file() and path.stat().st_size > 0, name
    assert (run_dir / "error_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_results_json_schema(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    assert {"config", "setup", "environment", "quantile_levels", "losses"} <= set(results)
    config = results["config"]
    assert config == SimulationConfig(**{**config, "losses": tuple(config["losses"])}).to_dict()
    assert (config["reading"], config["points"], config["target_area"]) == (
        "scaled",
        "square:0.25",
        1,
    )
    assert config["loss_params"] == {"focal_eiou": {"gamma": 0.25}, "smooth_l1": {"beta": 0.5}}
    assert set(results["setup"]) == {"description", "num_pairs", "share_no_overlap_initial"}
    assert results["setup"]["num_pairs"] == 54
    assert len(results["losses"]) == 8
    for name, run in results["losses"].items():
        assert LOSS_KEYS | {"wall_time_s"} <= set(run), name
        assert FINAL_KEYS <= set(run["final"])
        assert len(run["error"]) == len(run["mean_iou"]) == 13
        assert run["quantile_iterations"] == [0, 4, 8, 12]
    assert results["losses"]["focal_eiou"]["params"]["gamma"] == 0.25


def test_plot_redraws_from_results(run_dir, tmp_path):
    assert main(["plot", str(run_dir / "results.json"), "--output", str(tmp_path)]) == 0
    assert (tmp_path / "error_curves.png").is_file() and (tmp_path / "iou_boxplots.png").is_file()


def test_trajectory_and_focal_l1_commands(tmp_path):
    assert main(["trajectory", "--iterations", "20", "--output", str(tmp_path)]) == 0
    trajectory = json.loads((tmp_path / "trajectory.json").read_text())
    assert set(trajectory["losses"]) == {"giou", "ciou", "eiou"}
    assert len(trajectory["losses"]["eiou"]["boxes"]) == 21
    assert main(["focal-l1", "--betas", "0.5", "1.0", "--output", str(tmp_path)]) == 0
    assert (tmp_path / "focal_l1.png").is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--param", "focal_eoiu.gamma=2"], "unknown box-regression loss 'focal_eoiu'"),
        (["--param", "focal_eiou.gama=2"], "accepts the parameters"),
        (["--param", "giou.theta=2"], "accepts the parameters"),
        (["--param", "focal_eiou.gamma=nan"], "focal_eiou.gamma must be a finite number"),
        (["--param", "focal_eiou.gamma=abc"], "--param expects LOSS.NAME=VALUE"),
        (["--lr", "-0.1"], "base_lr (--lr) must be a finite number > 0"),
        (["--lr", "nan"], "base_lr (--lr) must be a finite number > 0"),
        (["--min-size", "-1"], "min_size (--min-size) must be a finite number > 0"),
        (["--num-points", "0"], "num_points (--num-points) must be an integer >= 1"),
        (["--device", "tpu"], "device (--device) must be cpu, cuda or cuda:N"),
        (["--points", "square"], "points (--points) must be square:SIDE or disc:RADIUS"),
        (["--threads", "0"], "--threads must be >= 1"),
    ],
)
def test_bad_options_fail_before_any_work(extra, message, tmp_path, monkeypatch, capsys):
    def no_work(*args, **kwargs):
        raise AssertionError("the run started")

    monkeypatch.setattr(cli, "run_experiment", no_work)
    output = tmp_path / "out"
    assert main(["run", *TINY_RUN, "--output", str(output), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not output.exists()


def test_output_that_is_a_file_fails_before_the_run(tmp_path, monkeypatch, capsys):
    def no_work(*args, **kwargs):
        raise AssertionError("the run started")

    monkeypatch.setattr(cli, "run_experiment", no_work)
    existing = tmp_path / "results"
    existing.write_text("not a folder")
    for output in (existing, existing / "sub"):
        assert main(["run", *TINY_RUN, "--output", str(output)]) == 2
        assert f"--output {output}" in capsys.readouterr().err
    assert existing.read_text() == "not a folder"


def test_help_shows_the_configs_defaults_and_the_readings(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    text = re.sub(r"\s+", " ", capsys.readouterr().out)
    for option in fields(SimulationConfig):
        if "help" not in option.metadata:
            continue
        default = option.default
        if default is None:
            shown = "set by --reading"
        elif isinstance(default, tuple):
            shown = " ".join(map(str, default))
        else:
            shown = str(default)
        assert f"{option.metadata['flag']} " in text
        assert f"(default: {shown})" in text, option.name
    for phrase in ("--points square:20", "--points square:2.5", "--points disc:3", "(2 - IoU)"):
        assert phrase in text


def test_parse_loss_params():
    parsed = parse_loss_params(["focal_eiou.detach_weight=false", "smooth_l1.beta=1"])
    assert parsed == {"focal_eiou": {"detach_weight": False}, "smooth_l1": {"beta": 1.0}}
    for bad in ("gamma=1", "focal_eiou.gamma", ".gamma=1", "focal_eiou.=1"):
        with pytest.raises(ValueError, match="LOSS.NAME=VALUE"):
            parse_loss_params([bad])
