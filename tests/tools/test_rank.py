"""``python -m focal_eiou_d2.tools.rank``: the report's intervals are the paired ones, the budget
picks the most seeds that fit, and a tiny ranking on a user's COCO dataset resumes after an
interruption without training its finished runs again."""

import json
import math
import subprocess

import pytest
import torch
from coco_tiny import write_coco_tiny
from tiny_models import SMOKE_OPTS

from focal_eiou_d2.engine import WeightsError, load_run_config
from focal_eiou_d2.evaluation.statistics import student_t_quantile
from focal_eiou_d2.tools import rank
from focal_eiou_d2.tools.cli import CommandError
from focal_eiou_d2.tools.rank_report import build_report, format_report, switch_lines
from focal_eiou_d2.tools.run_store import Row, plan, quickstart
from focal_eiou_d2.tools.run_timing import Timing, largest_seed_count

CONFIG = "configs/quickstart/retinanet_R_18_FPN_shapes.yaml"
LAZY = "configs/lazy/quickstart/fcos_R_18_FPN_shapes_focal_eiou.py"
META = {
    "command": "python -m focal_eiou_d2.tools.rank",
    "model": "FocalEIoURetinaNet",
    "train_datasets": ["mine_train"],
    "test_datasets": ["mine_val"],
    "schedule": "2 iterations of 2 images per run",
    "seeds_text": "0-2",
    "fingerprint": {},
}
# SMOKE_OPTS without its datasets: the command line names the user's.
SMALL = [item for pair in zip(SMOKE_OPTS[::2], SMOKE_OPTS[1::2], strict=True)
         if not pair[0].startswith("DATASETS") for item in pair]  # fmt: skip


def records(ap_by_loss):
    """Result records whose every AP is the seed's value (APs: none, as without small objects)."""
    found = {}
    for loss, values in ap_by_loss.items():
        for seed, ap in enumerate(values):
            bbox = {**dict.fromkeys(("AP", "AP50", "AP75", "APm", "APl"), ap), "APs": math.nan}
            metrics = dict.fromkeys(("AP", "AP50", "AP75", "AP85", "AP95"), ap)
            found[f"{loss}__seed{seed}"] = {
                "bbox": bbox,
                "metrics": metrics,
                "ap_per_iou": [ap] * 10,
            }
    return found


def test_the_report_pairs_by_seed(tmp_path):
    # EIoU is 2, 2.5, 3 AP above smooth L1 seed by seed, while the seeds move both by up to 5 AP
    values = {
        "smooth_l1": [30.0, 31.0, 35.0],
        "eiou": [32.0, 33.5, 38.0],
        "giou": [30.5, 31.0, 35.2],
    }
    runs = plan([Row(loss) for loss in values], [], [0, 1, 2])
    report = build_report(runs, records(values), "smooth_l1", load_run_config(CONFIG), META)
    eiou = next(entry for entry in report["losses"] if entry["loss"] == "eiou")
    paired = student_t_quantile(0.975, 2) * 0.5 / math.sqrt(3)  # differences' std: 0.5
    assert eiou["vs_baseline"]["AP"]["difference"] == 2.5
    assert eiou["vs_baseline"]["AP"]["half_width"] == pytest.approx(paired, rel=1e-6)
    # unpaired (Welch's standard error, at least its t of 4 degrees of freedom), the same
    # numbers would not resolve it: 2.5 < its half width
    unpaired = student_t_quantile(0.975, 4) * math.sqrt((7.0 + 9.75) / 3)
    assert unpaired > 2.5 and eiou["vs_baseline"]["AP"]["resolved"]
    assert [item["loss"] for item in report["ranking"]] == ["eiou", "giou", "smooth_l1"]

    # GIoU - smooth L1: 0.5, 0, 0.2, not resolved; n = (1.96 s / |d|)^2 seeds would resolve it
    giou = report["ranking"][1]["vs_baseline"]
    std = math.sqrt(((0.5 - 0.7 / 3) ** 2 + (0.7 / 3) ** 2 + (0.2 - 0.7 / 3) ** 2) / 2)
    assert not giou["resolved"] and giou["std"] == pytest.approx(std)
    assert giou["seeds_to_resolve"] == math.ceil((1.959964 * std / (0.7 / 3)) ** 2) == 5
    closest = report["closest_unresolved"]
    assert (closest["loss"], closest["other"], closest["seeds_to_resolve"]) == (
        "giou",
        "smooth_l1",
        5,
    )

    markdown = format_report(report)
    assert f"| 1 | EIoU | 34.50 ± 3.12 | **+2.50 ± {paired:.2f}** | resolved |" in markdown
    giou_line = next(line for line in markdown.splitlines() if line.startswith("| GIoU | 3 |"))
    assert giou_line.split(" | ")[5] == "-"  # APs: the evaluation gives none
    assert "not resolved (about 5 seeds)" in markdown
    assert 'BBOX_REG_LOSS_TYPE: "eiou"\n    BBOX_REG_LOSS_WEIGHT: 2.5' in markdown


def test_switch_lines_of_a_lazy_config():
    language, lines = switch_lines(load_run_config(LAZY), "focal_eiou")
    assert language == "python" and lines.endswith('use_box_loss(model, "focal_eiou")')


def test_the_budget_takes_the_most_seeds_that_fit():
    # a pretraining of 10 s and two losses of 10 s per run: 2 runs per seed
    assert largest_seed_count(100, 10, 10, lambda n: 2 * n) == 4
    assert largest_seed_count(40, 10, 10, lambda n: 2 * n) is None
    assert largest_seed_count(40, 10, 10, lambda n: max(0, 2 * n - 4)) == 3  # 2 seeds finished
    assert Timing(30.0, 20, 0.5).estimate(600) == 30.0 + 580 * 0.5


def test_the_candidates():
    assert rank.candidates(["eiou"], "smooth_l1") == ["smooth_l1", "eiou"]
    assert rank.candidates(["zoo"], "smooth_l1") == [*rank.DEFAULT_LOSSES, *rank.ZOO_LOSSES]
    assert rank.candidates(["eiou", "zoo", "eiou"], "eiou") == ["eiou", *rank.ZOO_LOSSES]


@pytest.mark.slow
def test_ranks_on_a_coco_dataset_and_resumes(tmp_path, capsys, monkeypatch):
    # The training processes wait for a core asleep: OpenMP's default busy wait doubles their
    # time on a machine shared with other jobs (docs/performance.md), not their numbers.
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    train_json, train_images = write_coco_tiny(str(tmp_path / "data" / "train"), num_images=4)
    val_json, val_images = write_coco_tiny(str(tmp_path / "data" / "val"), seed=1)
    output = tmp_path / "rank"
    argv = ["--config-file", CONFIG, "--losses", "smooth_l1", "eiou", "--seeds", "2"]
    argv += ["--coco-dataset", "rank_train", train_json, train_images]
    argv += ["--coco-dataset", "rank_val", val_json, val_images]
    argv += ["--output", str(output), "--warmup-iters", "1", *SMALL]
    argv += ["DATASETS.TRAIN", "('rank_train',)", "DATASETS.TEST", "('rank_val',)"]
    rank.main(argv)  # in this process: the trainings are processes of their own anyway
    first = capsys.readouterr().out
    lines = first.splitlines()
    plan_line = next(i for i, line in enumerate(lines) if line.startswith("[rank] plan: "))
    assert "2 losses x 2 seeds = 4 runs, 4 to train" in lines[plan_line]
    assert lines[plan_line + 2].startswith("[rank] estimated time: about ")
    assert "timing a warm-up: 1 iterations" in first
    assert first.count(": training (log: ") == 4
    assert "[#####" in first and "4/4 runs" in first
    report = json.loads((output / "report.json").read_text())
    assert [entry["seeds"] for entry in report["losses"]] == [[0, 1], [0, 1]]
    assert report["ranking"][0]["vs_next"]["pairs"] == 2
    assert "## Ranking by AP" in (output / "report.md").read_text()
    assert (output / "ap_vs_iou.png").read_bytes().startswith(b"\x89PNG")

    # interrupted before eiou seed 1 recorded its result: only that run trains again
    (output / "results" / "eiou__seed1.json").unlink()
    (output / "runs" / "eiou__seed1" / "quickstart_results.json").unlink()
    rank.main(argv)
    second = capsys.readouterr().out
    assert second.count(": training (log: ") == 1 and "eiou__seed1: training" in second
    assert second.count("finished earlier, skipped") == 3 and "timing a warm-up" not in second
    assert json.loads((output / "report.json").read_text())["losses"] == report["losses"]

    # a third loss does not fit a budget of a second: one line, nothing trained
    budget = [*argv[:2], "--losses", "smooth_l1", "eiou", "giou", "--budget", "0.0003", *argv[7:]]
    with pytest.raises(SystemExit) as exit_info:
        rank.main(budget)
    assert str(exit_info.value.code).startswith("rank: error: --budget 0.0003 h does not fit 2 ")
    assert ": training" not in capsys.readouterr().out


def test_a_checkpoint_gives_only_its_resnet(tmp_path):
    weights = tmp_path / "coco_detector.pth"
    model = {"backbone.bottom_up.stem.conv1.weight": torch.ones(2), "head.cls_score": torch.ones(1)}
    torch.save({"model": model}, weights)
    kept = torch.load(rank.backbone_of_weights(str(weights), str(tmp_path / "rank")))["model"]
    assert list(kept) == ["backbone.bottom_up.stem.conv1.weight"]
    torch.save(model, weights)  # a state dict, not a Detectron2 checkpoint
    with pytest.raises(WeightsError, match="cannot read the weights in .*: 'model'"):
        rank.backbone_of_weights(str(weights), str(tmp_path / "rank"))


@pytest.mark.parametrize(
    "options, message",
    [
        (["--seeds", "1"], "--seeds must be >= 2"),
        (["--seeds", "3", "--budget", "1"], "not allowed with argument"),
        (["--budget", "0"], "must be > 0"),
        (["--losses", "eoiu"], "'eoiu' is not zoo or a loss"),
    ],
)
def test_counts_and_losses_are_checked(options, message, capsys):
    with pytest.raises(SystemExit):
        rank.parse_args(["--config-file", CONFIG, *options])
    assert message in capsys.readouterr().err


def test_a_failed_training_points_to_its_log(tmp_path, monkeypatch):
    def run(command, check, stdout, stderr):
        stdout.write("the training's own error\n")
        raise subprocess.CalledProcessError(1, command)

    monkeypatch.setattr(subprocess, "run", run)
    log = tmp_path / "logs" / "eiou__seed0.log"
    with pytest.raises(CommandError, match=f"exit status 1; its output in {log} says why"):
        quickstart(CONFIG, [], str(tmp_path / "run"), [], str(log))
    assert log.read_text() == "the training's own error\n"
