"""The ablation runner trains each (row, seed), tabulates with paired confidence intervals from
its result files, skips finished runs, and never mixes fingerprints."""

import fcntl
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from tiny_models import REPO, SMOKE_OPTS

from focal_eiou_d2.engine import OutputDirError, load_run_config
from focal_eiou_d2.engine.run_dir import LOCK
from focal_eiou_d2.evaluation.statistics import paired_difference, student_t_quantile
from focal_eiou_d2.layers import BOX_LOSSES, get_box_loss
from focal_eiou_d2.tools import ablate
from focal_eiou_d2.tools.ablate import parse_args
from focal_eiou_d2.tools.protocol_tables import (
    format_markdown,
    plot_ap_vs_iou,
    plot_sweep,
    summarize,
)
from focal_eiou_d2.tools.run_store import (
    Row,
    check_one_fingerprint,
    finished_configs,
    parse_row,
    plan,
    tabulated_fingerprint,
    train_unfinished,
)

CONFIG = "configs/quickstart/retinanet_R_18_FPN_shapes.yaml"


def run_ablation(tmp_path, losses, seeds, *options, check=True):
    command = [sys.executable, "-m", "focal_eiou_d2.tools.ablate", "--config-file", CONFIG]
    command += ["--losses", *losses, "--seeds", *map(str, seeds), *options]
    command += ["--output-dir", str(tmp_path / "ablation"), *SMOKE_OPTS]
    env = {**os.environ, "DETECTRON2_DATASETS": str(tmp_path / "datasets")}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_runs_tabulates_and_resumes(tmp_path):
    first = run_ablation(tmp_path, ["eiou", "focal_eiou"], [0, 1]).stdout
    assert first.count(": training") == 4
    results = tmp_path / "ablation" / "results"
    assert len(list(results.glob("*.json"))) == 4
    table = json.loads((tmp_path / "ablation" / "table.json").read_text())
    focal = next(row for row in table["rows"] if row["row"] == "focal_eiou")
    assert focal["seeds"] == [0, 1] and len(focal["ap_per_iou"]) == 10
    assert focal["delta"]["AP"][2] == 2  # two pairs with the baseline (eiou, the first row)
    markdown = (tmp_path / "ablation" / "table.md").read_text()
    assert "| Focal-EIoU | 2 |" in markdown and "ΔAP vs EIoU" in markdown

    (results / "focal_eiou__seed1.json").unlink()
    partial = run_ablation(tmp_path, ["eiou", "focal_eiou"], [0, 1], "--finished-only").stdout
    assert "focal_eiou__seed1: not finished, left out" in partial and ": training" not in partial
    assert "| Focal-EIoU | 1 |" in (tmp_path / "ablation" / "table.md").read_text()

    kept = (results / "eiou__seed1.json").read_text()
    record = json.loads(kept)
    record["fingerprint"]["code"] = "another"
    (results / "eiou__seed1.json").write_text(json.dumps(record))
    refused = run_ablation(tmp_path, ["eiou", "focal_eiou"], [0, 1], check=False)
    assert refused.returncode == 1 and ": training" not in refused.stdout
    assert "(eiou__seed1: code another (here: " in refused.stderr  # and the file is kept
    assert json.loads((results / "eiou__seed1.json").read_text()) == record
    (results / "eiou__seed1.json").write_text(kept)
    second = run_ablation(tmp_path, ["eiou", "focal_eiou"], [0, 1]).stdout
    assert "eiou__seed0: finished earlier, skipped" in second
    assert second.count(": training") == 1  # focal_eiou seed 1

    # GAMMA=0.5 is the default: the focal_eiou runs' config, not trained again
    grid = ("--set", "MODEL.FOCAL_EIOU.GAMMA=0.5")
    default = run_ablation(tmp_path, ["focal_eiou"], [0, 1], *grid).stdout
    assert "GAMMA=0.5__seed1: the config of focal_eiou__seed1" in default
    assert ": training" not in default
    twice = ["focal_eiou", "focal_eiou[MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT=2.5]"]  # one config
    third = run_ablation(tmp_path, twice, [2]).stdout
    assert (
        third.count(": training") == 1 and "2.5___seed2: the config of focal_eiou__seed2" in third
    )


@pytest.mark.slow
def test_shared_backbone_and_tables_without_it(tmp_path):
    pretrain = tmp_path / "pretrain.yaml"
    settings = {"_BASE_": str(REPO / CONFIG)}
    for key, value in zip(SMOKE_OPTS[::2], SMOKE_OPTS[1::2], strict=True):
        *parents, name = key.split(".")
        node = settings
        for parent in parents:
            node = node.setdefault(parent, {})
        node[name] = value  # yacs reads the text of each value as a Python literal
    pretrain.write_text(yaml.safe_dump(settings))
    options = ["--pretrain", str(pretrain)]
    first = run_ablation(tmp_path, ["eiou"], [0], *options).stdout
    assert "pretraining the backbone" in first and first.count(": training") == 1
    folder = tmp_path / "ablation"
    backbone = folder / "pretrain" / "backbone.pth"
    digest = hashlib.sha256(backbone.read_bytes()).hexdigest()[:16]
    record = json.loads((folder / "results" / "eiou__seed0.json").read_text())
    assert record["fingerprint"]["protocol"].endswith(f"+backbone:{digest}")
    run_config = (folder / "runs" / "eiou__seed0" / "config.yaml").read_text()
    assert f"WEIGHTS: {backbone}" in run_config

    kept = tmp_path / "kept_backbone.pth"  # the exported backbone, kept as git would keep it
    shutil.copyfile(backbone, kept)
    shutil.rmtree(folder / "pretrain")  # a fresh clone: the result files without output/
    table = run_ablation(tmp_path, ["eiou"], [0], *options, "--finished-only").stdout
    assert f"result files of backbone {digest}" in table and ": training" not in table
    assert "| EIoU | 1 |" in (folder / "table.md").read_text()

    # the kept file continues the same protocol: seed 0 is finished, seed 1 trains from it
    from_file = run_ablation(tmp_path, ["eiou"], [0, 1], "--pretrain", str(kept)).stdout
    assert "eiou__seed0: finished earlier, skipped" in from_file
    assert "pretraining" not in from_file and from_file.count(": training") == 1
    assert f"WEIGHTS: {kept}" in (folder / "runs" / "eiou__seed1" / "config.yaml").read_text()
    assert "| EIoU | 2 |" in (folder / "table.md").read_text()
    missing = run_ablation(tmp_path, ["eiou"], [0], "--pretrain", "gone.pth", check=False)
    assert (
        missing.returncode == 1 and "--pretrain gone.pth: no such backbone file" in missing.stderr
    )

    record["fingerprint"]["protocol"] = record["fingerprint"]["protocol"][:-16] + "0" * 16
    (folder / "results" / "eiou__seed2.json").write_text(json.dumps(record))
    mixed = run_ablation(tmp_path, ["eiou"], [0], *options, "--finished-only", check=False)
    assert mixed.returncode == 1 and f"backbones 0000000000000000, {digest}" in mixed.stderr
    other = run_ablation(tmp_path, ["eiou"], [3], "--pretrain", str(kept), check=False)
    assert other.returncode == 1 and ": training" not in other.stdout
    assert (
        "backbone:0000000000000000 (here: " in other.stderr
        and "--pretrain FILE.pth" in other.stderr
    )


@pytest.mark.slow
def test_repeated_seeds_and_unknown_rows_are_refused(tmp_path):
    result = run_ablation(tmp_path, ["eiou"], [0, 0], check=False)
    assert result.returncode == 2 and "--seeds repeats a seed" in result.stderr
    with pytest.raises(SystemExit):
        parse_args(["--config-file", CONFIG, "--losses", "eoiu"])


def test_lazy_config_overrides_are_key_value():
    lazy = "configs/lazy/quickstart/fcos_R_18_FPN_shapes_focal_eiou.py"
    args = parse_args(["--config-file", lazy, "train.max_iter=3"])
    assert args.opts == ["train.max_iter=3"]


def test_rows_with_overrides_and_grids_name_their_runs():
    row = parse_row("smooth_l1[MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT=0.25]")
    assert row.overrides == (("MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT", "0.25"),)
    assert row.label == "Smooth L1 (BBOX_REG_LOSS_WEIGHT=0.25)"
    runs = plan([Row("focal_eiou"), row], [("MODEL.FOCAL_EIOU.GAMMA", ("0.5", "1"))], [3])
    assert [run.name for run in runs] == [
        "focal_eiou__MODEL.FOCAL_EIOU.GAMMA=0.5__seed3",
        "focal_eiou__MODEL.FOCAL_EIOU.GAMMA=1__seed3",
        "smooth_l1_MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT=0.25___MODEL.FOCAL_EIOU.GAMMA=0.5__seed3",
        "smooth_l1_MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT=0.25___MODEL.FOCAL_EIOU.GAMMA=1__seed3",
    ]


def test_every_loss_has_its_papers_name_in_the_tables():
    names = {loss: Row(loss).label for loss in BOX_LOSSES}
    assert all(label != loss for loss, label in names.items()), names
    assert len(set(names.values())) == len(names)
    assert names["wiou_v3"] == "Wise-IoU v3" and names["shape_iou"] == "Shape-IoU"


def test_runs_of_a_finished_config_reuse_its_result():
    base = load_run_config(CONFIG)

    def digest_of(run):
        return load_run_config(CONFIG, run.opts(base, "unused")).digest()

    finished = {
        "focal_eiou__seed0": {"row": "focal_eiou", "setting": [], "seed": 0},
        "eiou__seed0": {"row": "eiou", "setting": [], "seed": 0},
        "gone__seed0": {"row": "focal_eiou[NO_SUCH.KEY=1]", "setting": [], "seed": 0},
    }
    by_config = finished_configs(finished, {"focal_eiou"}, digest_of)  # the bad record: a line
    assert list(by_config.values()) == [("focal_eiou__seed0", finished["focal_eiou__seed0"])]
    runs = plan([Row("focal_eiou")], [("MODEL.FOCAL_EIOU.GAMMA", ("0.5", "1.0"))], [0, 1])
    # 0.5 is the default; seed 1 and gamma 1.0 are other configs
    assert [digest_of(run) in by_config for run in runs] == [True, False, False, False]
    weighted = parse_row("focal_eiou[MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT=2.5]")  # the paper's
    halved = parse_row("focal_eiou[MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT=1.25]")
    assert [digest_of(run) in by_config for run in plan([weighted, halved], [], [0])] == [
        True,
        False,
    ]


def test_the_loop_of_both_runners_trains_only_the_unfinished_runs(tmp_path, capsys):
    base = load_run_config(CONFIG)

    def digest_of(run):
        return load_run_config(CONFIG, run.opts(base, "unused")).digest()

    default = parse_row("focal_eiou[MODEL.FOCAL_EIOU.GAMMA=0.5]")  # focal_eiou's config
    runs = plan([Row("focal_eiou"), default, Row("eiou")], [], [0])
    finished = {"row": "focal_eiou", "setting": [], "seed": 0}
    records, trained = {"focal_eiou__seed0": finished}, []

    def train_run(run):
        trained.append(run.name)
        return {"bbox": {"AP": 1.0}, "ap_per_iou": [1.0] * 10}

    train_unfinished(runs, records, str(tmp_path), {"code": "c"}, digest_of, train_run, "runner")
    assert trained == ["eiou__seed0"] and records[runs[1].name] is finished
    assert json.loads((tmp_path / "eiou__seed0.json").read_text())["fingerprint"] == {"code": "c"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["eiou__seed0.json"]
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "[runner] focal_eiou__seed0: finished earlier, skipped",
        f"[runner] {runs[1].name}: the config of focal_eiou__seed0, finished earlier",
    ]
    # without a trainer (--finished-only) an unfinished run is left out
    records = {}
    train_unfinished(runs[2:], records, str(tmp_path / "none"), {}, digest_of, None, "runner")
    assert not records and "eiou__seed0: not finished, left out" in capsys.readouterr().out


def test_a_key_the_config_lacks_is_an_error_before_any_work(tmp_path):
    options = ["--config-file", CONFIG, "--output-dir", str(tmp_path)]
    with pytest.raises(SystemExit, match="ablate: error: Non-existent key: NO_SUCH.KEY"):
        ablate.main([*options, "--set", "NO_SUCH.KEY=1,2"])
    assert not list(tmp_path.iterdir())


@pytest.fixture
def no_training(monkeypatch):
    """Makes starting a training process fail the test: what is checked must be checked before."""

    def run(*args, **kwargs):
        raise AssertionError("a training was started")

    monkeypatch.setattr(subprocess, "run", run)


@pytest.mark.parametrize(
    "option, start, end",
    [
        (["--set", "SEED=1,2"], "--set SEED: SEED is set by --seeds", ""),
        (["--losses", "eiou[SEED=3]"], "--losses eiou[SEED=3]: SEED is set by --seeds", ""),
        (
            ["--set", "MODEL.RETINANET.BBOX_REG_LOSS_TYPE=giou,eiou"],
            "--set MODEL.RETINANET.BBOX_REG_LOSS_TYPE: MODEL.RETINANET.BBOX_REG_LOSS_TYPE is set "
            "by --losses",
            "",
        ),
        (["--set", "MODEL.FOCAL_EIOU.GAMMA=0.5,-1.0"], "MODEL.FOCAL_EIOU.GAMMA ", "got -1.0"),
    ],
)
def test_grid_values_are_checked_before_any_training(option, start, end, tmp_path, no_training):
    argv = ["--config-file", CONFIG, "--losses", "eiou", "--seeds", "0", *option]
    with pytest.raises(SystemExit) as exit_info:
        ablate.main([*argv, "--output", str(tmp_path / "ablation"), *SMOKE_OPTS])
    line = str(exit_info.value.code)
    assert line.startswith(f"ablate: error: {start}") and line.endswith(end), line
    assert not list(tmp_path.iterdir())


def test_a_failed_training_ends_with_one_line(tmp_path, monkeypatch):
    def run(command, check):
        raise subprocess.CalledProcessError(1, command)

    monkeypatch.setattr(subprocess, "run", run)
    argv = ["--config-file", CONFIG, "--losses", "eiou", "--seeds", "0"]
    argv += ["--output", str(tmp_path), *SMOKE_OPTS]
    with pytest.raises(SystemExit) as exit_info:
        ablate.main(argv)
    run_dir = tmp_path / "runs" / "eiou__seed0"
    message = f"the training in {run_dir} failed (exit status 1; its output above says why)"
    assert exit_info.value.code == f"ablate: error: {message}"


def test_a_grid_value_given_twice_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--config-file", CONFIG, "--set", "MODEL.FOCAL_EIOU.GAMMA=0.5,1,0.5"])
    assert exit_info.value.code == 2 and "repeats 0.5" in capsys.readouterr().err


def test_overrides_after_opts_and_the_old_output_option():
    args = parse_args(["--config-file", CONFIG, "--output-dir", "out", "--opts", "SEED", "1"])
    assert args.output == "out" and args.opts == ["SEED", "1"]


def write_record(folder, name, fingerprint):
    (folder / f"{name}.json").write_text(json.dumps({"fingerprint": fingerprint}))


def test_tables_of_another_machine_under_their_own_fingerprint(tmp_path, capsys):
    here = {"code": "c", "protocol": "p", "torch": "2.14", "device": "cpu (2 threads)"}
    elsewhere = {**here, "torch": "2.9", "device": "cuda (H200)"}
    assert tabulated_fingerprint(str(tmp_path), here) == here  # nothing there: this machine's
    write_record(tmp_path, "other_protocol", {**elsewhere, "protocol": "q"})
    write_record(tmp_path, "a", elsewhere)
    assert tabulated_fingerprint(str(tmp_path), here) == elsewhere
    write_record(tmp_path, "b", here)
    assert tabulated_fingerprint(str(tmp_path), here) == here  # this machine's comes first
    (tmp_path / "b.json").unlink()
    write_record(tmp_path, "c", {**elsewhere, "code": "d"})
    with pytest.raises(OutputDirError, match="under 2 fingerprints"):
        tabulated_fingerprint(str(tmp_path), here)


def test_a_results_folder_holds_one_fingerprint(tmp_path):
    here = {"code": "c", "protocol": "p+backbone:b", "torch": "2.14", "device": "cpu (2 threads)"}
    check_one_fingerprint(str(tmp_path / "none yet"), here)
    write_record(tmp_path, "a", here)
    check_one_fingerprint(str(tmp_path), here)
    # before the pretraining, the backbone is not known yet
    check_one_fingerprint(str(tmp_path), {**here, "protocol": "p"}, backbone_known=False)
    for name, other in (
        ("another_protocol", {**here, "protocol": "q+backbone:b"}),
        ("another_backbone", {**here, "protocol": "p+backbone:c"}),
        ("another_device", {**here, "device": "cuda (H200)"}),
        ("no_fingerprint", None),
    ):
        write_record(tmp_path, name, other)
        with pytest.raises(OutputDirError, match=f"holds runs of another fingerprint \\({name}: "):
            check_one_fingerprint(str(tmp_path), here)
        (tmp_path / f"{name}.json").unlink()
    write_record(tmp_path, "another_backbone", {**here, "protocol": "p+backbone:c"})
    check_one_fingerprint(str(tmp_path), {**here, "protocol": "p"}, backbone_known=False)


def test_tables_while_another_ablation_writes_the_results(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    with open(results / LOCK, "w") as held:  # an ablation training into the folder
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        options = ["--config-file", CONFIG, "--results-dir", str(results), "--finished-only"]
        with pytest.raises(SystemExit, match="no finished run to tabulate"):
            ablate.main([*options, "--output-dir", str(tmp_path / "tables")])
        with pytest.raises(SystemExit, match="is in use by"):  # training needs the folder
            ablate.main(options[:-1] + ["--output-dir", str(tmp_path / "runs")])


def test_student_t_quantiles_match_the_tables():
    for df, quantile in ((1, 12.706), (4, 2.776), (9, 2.262), (30, 2.042)):
        assert student_t_quantile(0.975, df) == pytest.approx(quantile, abs=5e-4)


def test_paired_difference_by_hand():
    # differences 1, 2, 3: mean 2, sample std 1, half width t(0.975, 2) / sqrt(3) = 4.3027 / 1.732
    mean, half_width, pairs = paired_difference([11.0, 12.0, 13.0], [10.0, 10.0, 10.0])
    assert (mean, pairs) == (2.0, 3)
    assert half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)


def records(values_by_row):
    """Result records of runs without a grid: {run name: record}."""
    found = {}
    for row, values in values_by_row.items():
        for seed, ap in enumerate(values):
            metrics = dict.fromkeys(("AP", "AP50", "AP75", "AP85", "AP95"), ap)
            found[f"{row}__seed{seed}"] = {"metrics": metrics, "ap_per_iou": [ap] * 10}
    return found


def test_summary_pairs_by_seed(tmp_path):
    runs = plan([Row("smooth_l1"), Row("eiou")], [], [0, 1, 2])
    summary = summarize(
        runs, records({"smooth_l1": [30, 31, 35], "eiou": [31, 33, 38]}), Row("smooth_l1")
    )
    eiou = next(entry for entry in summary if entry["row"] == "eiou")
    assert eiou["AP"] == [34.0, pytest.approx(math.sqrt(13))]
    assert eiou["delta"]["AP"][:2] == [2.0, pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)]
    assert eiou["delta_per_iou"][9] == eiou["delta"]["AP"]  # every threshold's AP is AP here
    table = format_markdown(summary, "Smooth L1")
    assert "| EIoU | 3 | 34.00 ± 3.61 |" in table and "+2.00 ± 2.48" in table
    plot_ap_vs_iou(summary, "Smooth L1", str(tmp_path / "ap_vs_iou.png"))
    assert (tmp_path / "ap_vs_iou.png").read_bytes().startswith(b"\x89PNG")


def test_sweep_plot(tmp_path):
    settings = [("MODEL.FOCAL_EIOU.GAMMA", ("0.5", "1"))]
    runs = plan([Row("focal_eiou")], settings, [0, 1])
    metrics = ("AP", "AP50", "AP75", "AP85", "AP95")
    found = {
        run.name: {"metrics": dict.fromkeys(metrics, 30.0 + run.seed), "ap_per_iou": [30.0] * 10}
        for run in runs
    }
    summary = summarize(runs, found, Row("focal_eiou"))
    plot_sweep(summary, settings, str(tmp_path / "sweep.png"))
    assert (tmp_path / "sweep.png").stat().st_size > 0


def test_paper_loss_weights():
    assert get_box_loss("smooth_l1").paper_weight == get_box_loss("focal_l1").paper_weight == 1.0
    assert get_box_loss("balanced_l1").paper_weight == 1.0
    assert get_box_loss("giou").paper_weight == get_box_loss("focal_eiou").paper_weight == 2.5
