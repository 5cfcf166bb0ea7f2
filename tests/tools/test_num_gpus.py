"""``--num-gpus N`` of the quickstart job and of the ranking: N training processes on this machine
through Detectron2's ``launch``, as ``train_net.py`` starts them; a count that this machine or
config cannot train is refused before any work with ``train_net.py``'s message; the ranking trains
its warm-up, pretraining and runs in N processes each and records N in the results' fingerprint.

Several processes on the CPU need Detectron2's git main (0.6's ``launch`` asserts CUDA) and a
LazyConfig (a YAML config's DefaultTrainer gives DDP a GPU index)."""

import json
import os

import pytest
import torch
from tiny_models import LAZY_SMOKE_OPTS, SMOKE_OPTS

from focal_eiou_d2.tools import quickstart, rank, run_store, run_timing
from focal_eiou_d2.tools.train_command import (
    LAUNCH_RUNS_ON_CPU,
    check_before_launch,
    parse_training_args,
)

CONFIG = "configs/quickstart/retinanet_R_18_FPN_shapes.yaml"
LAZY = "configs/lazy/quickstart/fcos_R_18_FPN_shapes_focal_eiou.py"
# 2 images per process: BatchNorm of the 1x1 P7 map needs 2 values per channel.
LAZY_OPTS = [*LAZY_SMOKE_OPTS, "dataloader.train.total_batch_size=4"]
several_cpu_processes = pytest.mark.skipif(
    not LAUNCH_RUNS_ON_CPU or torch.cuda.is_available(),
    reason="several CPU processes: Detectron2's git main without CUDA (0.6's launch needs CUDA "
    "for several processes; with CUDA, each needs a GPU)",
)


def train_net_line(config_file, tmp_path):
    """What ``train_net.py --num-gpus 2`` says of ``config_file`` before it launches anything."""
    argv = ["--num-gpus", "2", "--config-file", config_file, "OUTPUT_DIR", str(tmp_path / "tn")]
    with pytest.raises(ValueError) as error:
        check_before_launch(parse_training_args(argv))
    return str(error.value)


def error_line(main, argv):
    """The line a command exits with (its ``SystemExit`` code)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return str(exit_info.value.code)


@pytest.mark.slow
@several_cpu_processes
def test_the_quickstart_job_trains_in_two_cpu_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # see test_rank.py's end-to-end test
    argv = ["--num-gpus", "2", "--num-visualizations", "0", "--config-file", LAZY]
    saved = quickstart.main([*argv, "--output", str(tmp_path), *LAZY_OPTS])
    assert 0 <= saved["bbox"]["AP"] <= 100 and len(saved["ap_per_iou"]) == 10
    final = torch.load(tmp_path / quickstart.FINAL_WEIGHTS, weights_only=False)
    assert final["trainer"]["data_order"]["world_size"] == 2  # the batch was split over two
    assert len(final["rng_states"]) == 2 and (tmp_path / "log.txt.rank1").is_file()


def test_counts_that_cannot_train_are_refused_before_any_work(tmp_path, capsys):
    output = tmp_path / "out"
    for main, prog in ((rank.main, "rank"), (quickstart.main, "quickstart")):
        argv = ["--config-file", CONFIG, "--output", str(output), *SMOKE_OPTS]
        error_line(main, ["--num-gpus", "0", *argv])
        assert "argument --num-gpus: must be >= 1, got 0" in capsys.readouterr().err
        # several CPU processes of a YAML config: 0.6 starts none, main's DefaultTrainer fails
        line = error_line(main, ["--num-gpus", "2", *argv])
        assert line == f"{prog}: error: {train_net_line(CONFIG, tmp_path)}"
    assert not output.exists()

    # a YAML pretraining config beside a LazyConfig that trains in two CPU processes (overrides
    # would apply to both: none)
    argv = ["--config-file", LAZY, "--pretrain", CONFIG, "--losses", "eiou", "--num-gpus", "2"]
    line = error_line(rank.main, [*argv, "--output", str(output)])
    assert line == f"rank: error: {train_net_line(CONFIG, tmp_path)}"
    assert not (output / "warmup").exists() and not (output / "pretrain").exists()


def test_a_batch_the_processes_cannot_share_is_refused_before_any_work():
    from focal_eiou_d2.engine import load_run_config
    from focal_eiou_d2.tools.train_command import check_trainer_processes

    config = load_run_config(LAZY, [*LAZY_SMOKE_OPTS, "dataloader.train.total_batch_size=3"])
    check_trainer_processes(config, 1, 3)  # 3 machines of one process: one image each
    with pytest.raises(ValueError, match=r"total_batch_size = 3 is not divisible by the 2 train"):
        check_trainer_processes(config, 2, 1)
    yaml = load_run_config(CONFIG, [*SMOKE_OPTS, "SOLVER.IMS_PER_BATCH", "3"])
    with pytest.raises(ValueError, match=r"SOLVER.IMS_PER_BATCH = 3 is not divisible by the 4"):
        check_trainer_processes(yaml, 2, 2)


@several_cpu_processes
def test_the_ranking_trains_everything_in_n_processes_and_records_n(tmp_path, capsys, monkeypatch):
    trainings = []

    def fake_quickstart(config_file, opts, output_dir, coco_options, log_file, num_gpus):
        trainings.append((os.path.basename(output_dir), num_gpus))
        os.makedirs(output_dir, exist_ok=True)
        weights = {"backbone.bottom_up.stem.conv1.weight": torch.ones(1)}
        torch.save({"model": weights}, os.path.join(output_dir, quickstart.FINAL_WEIGHTS))
        ap = 10.0 + len(trainings)
        bbox = {key: ap for key in ("AP", "AP50", "AP75", "APs", "APm", "APl")}
        return {"bbox": bbox, "ap_per_iou": [ap] * 10}

    monkeypatch.setattr(run_store, "quickstart", fake_quickstart)
    monkeypatch.setattr(run_timing, "quickstart", fake_quickstart)
    output = tmp_path / "rank"
    argv = ["--config-file", LAZY, "--pretrain", LAZY, "--losses", "smooth_l1", "eiou"]
    argv += ["--seeds", "2", "--num-gpus", "2", "--output", str(output), *LAZY_OPTS]
    rank.main(argv)
    printed = capsys.readouterr().out
    names = [name for name, _ in trainings]
    runs = [f"{loss}__seed{seed}" for seed in (0, 1) for loss in ("smooth_l1", "eiou")]
    assert names[-5:] == ["pretrain_x2", *(f"{run}_x2" for run in runs)]  # never resumed by 1
    assert names[:-5] and all(name.endswith("x2") for name in names[:-5])  # the warm-ups
    assert {count for _, count in trainings} == {2}
    assert "2 iterations of 4 images per run (2 in each of 2 processes)" in printed
    results = sorted((output / "results").glob("*.json"))
    assert [path.stem for path in results] == sorted(runs)
    assert {json.loads(path.read_text())["fingerprint"]["processes"] for path in results} == {2}
    assert json.loads((output / "report.json").read_text())["fingerprint"]["processes"] == 2
