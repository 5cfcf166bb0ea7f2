import json

import pytest

from focal_eiou_d2.simulation.cli import main, parse_loss_params

TINY_RUN = ["--setup", "setup2", "--num-points", "2", "--iterations", "12", "--quantile-every", "4"]
FIGURES = ("error_curves.png", "iou_boxplots.png", "trajectory.png", "focal_l1.png")
LOSS_KEYS = {"params", "error", "mean_iou", "quantile_iterations", "iou_quantiles", "final"}
FINAL_KEYS = {"error", "mean_iou", "median_iou", "share_iou_gt_0.5", "share_iou_gt_0.9"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    output = tmp_path_factory.mktemp("run")
    argv = ["run", *TINY_RUN, "--output", str(output), "--no-progress", "--gamma", "0.25"]
    assert main(argv + ["--param", "smooth_l1.beta=0.5"]) == 0
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
    for option in ("scale", "points", "update", "iterations", "base_lr", "seed", "dtype"):
        assert option in config
    assert config["loss_params"] == {"focal_eiou": {"gamma": 0.25}, "smooth_l1": {"beta": 0.5}}
    assert results["setup"] == {
        "description": results["setup"]["description"],
        "points": "square",
        "num_pairs": 54,
    }
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


def test_bad_options_are_reported(tmp_path, capsys):
    assert main(["run", *TINY_RUN, "--param", "eiou.gamma=1", "--output", str(tmp_path)]) == 2
    assert "accepts" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--scale", "huge"])


def test_help_states_the_defaults(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for phrase in ("--scale unit", "--update descent", "square", "disc", "(2 - IoU)"):
        assert phrase in text


def test_parse_loss_params():
    parsed = parse_loss_params(["focal_eiou.detach_weight=false", "smooth_l1.beta=1"], 0.5)
    assert parsed == {
        "focal_eiou": {"detach_weight": False, "gamma": 0.5},
        "smooth_l1": {"beta": 1.0},
    }
    with pytest.raises(ValueError):
        parse_loss_params(["gamma=1"], None)
