"""The quickstart job trains, evaluates, saves and visualizes; a second run reuses its results, a
changed config never overwrites them, and damaged final weights are repaired."""

import json
import logging
import os

import pytest
import torch
from tiny_models import SMOKE_OPTS

from focal_eiou_d2.data import MINI_SPEC, register_shapes
from focal_eiou_d2.engine import OutputDirError, load_run_config
from focal_eiou_d2.tools import quickstart

pytestmark = pytest.mark.slow  # trains models or spawns processes

CONFIG = "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"


@pytest.fixture(scope="module")
def data_opts(tmp_path_factory):
    register_shapes(("qs_train", "qs_val"), MINI_SPEC, root=str(tmp_path_factory.mktemp("data")))
    return SMOKE_OPTS + ["DATASETS.TRAIN", "('qs_train',)", "DATASETS.TEST", "('qs_val',)"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_opts):
    config = load_run_config(CONFIG, data_opts, output_dir=str(tmp_path_factory.mktemp("run")))
    return config, quickstart.run(config, num_visualizations=2)


def same(a, b):
    """Equal as saved (NaN, COCO's AP of an empty size band, equals NaN)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_run_evaluates_with_finite_ap(finished_run):
    config, saved = finished_run
    for key in ("AP", "AP50", "AP75"):  # size bands may hold no object of the mini dataset
        assert 0.0 <= saved["bbox"][key] <= 100.0
    assert len(saved["ap_per_iou"]) == len(saved["iou_thresholds"]) == 10
    assert 0 < saved["draw_threshold"] < 1 and 0 <= saved["draw_f1"] <= 1
    with open(os.path.join(config.output_dir, quickstart.RESULTS_FILE)) as f:
        assert same(json.load(f), saved)
    assert len(os.listdir(os.path.join(config.output_dir, "visualizations"))) == 2
    assert os.path.isfile(os.path.join(config.output_dir, "config.yaml"))


def test_second_run_reuses_results(finished_run, monkeypatch):
    config, saved = finished_run

    def fail(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(quickstart, "train_and_evaluate", fail)
    assert same(quickstart.run(config, num_visualizations=0), saved)


def test_changed_config_does_not_touch_the_finished_run(finished_run, data_opts):
    config, _ = finished_run
    files = {name: os.stat(os.path.join(config.output_dir, name)).st_mtime_ns
             for name in ("model_final.pth", quickstart.RESULTS_FILE)}  # fmt: skip
    changed = load_run_config(
        CONFIG, data_opts + ["SOLVER.MAX_ITER", "3"], output_dir=config.output_dir
    )
    with pytest.raises(OutputDirError, match="holds a run of another config"):
        quickstart.run(changed, num_visualizations=0)
    for name, mtime in files.items():
        assert os.stat(os.path.join(config.output_dir, name)).st_mtime_ns == mtime


def test_digest_ignores_the_output_folder_only(data_opts, tmp_path):
    here = load_run_config(CONFIG, data_opts, output_dir=str(tmp_path / "a"))
    moved = load_run_config(CONFIG, data_opts, output_dir=str(tmp_path / "b"))
    other_seed = load_run_config(CONFIG, data_opts + ["SEED", "1"], output_dir=str(tmp_path / "a"))
    assert here.digest() == moved.digest() != other_seed.digest()


def test_zoo_keys_enter_the_digest_only_off_their_defaults(data_opts):
    # At their defaults the keys added for the zoo are left out of the digest, as if they did not
    # exist (tests/tools/test_reproduction_tables.py checks the digest the committed results
    # record); off their defaults they are in it.
    from focal_eiou_d2.config import DIGEST_NEUTRAL_KEYS

    plain = load_run_config(CONFIG, data_opts)
    assert set(DIGEST_NEUTRAL_KEYS) <= set(plain.cfg.MODEL.FOCAL_EIOU)
    assert all(key in plain.text() for key in DIGEST_NEUTRAL_KEYS)  # config.yaml keeps them
    for key, value in (("SIOU_THETA", "5.0"), ("FOCAL_GAMMA", "0.5"), ("INNER_IOU_BASE", "siou")):
        changed = load_run_config(CONFIG, data_opts + [f"MODEL.FOCAL_EIOU.{key}", value])
        assert changed.digest() != plain.digest(), key


def test_damaged_final_weights_are_trained_again(tmp_path, data_opts):
    opts = data_opts + ["SOLVER.CHECKPOINT_PERIOD", "1"]
    config = load_run_config(CONFIG, opts, output_dir=str(tmp_path))
    saved = quickstart.run(config, num_visualizations=0)
    final = tmp_path / quickstart.FINAL_WEIGHTS
    final.write_bytes(final.read_bytes()[:1000])  # truncated, e.g. by a full disk
    again = quickstart.run(config, num_visualizations=1)  # drawing loads the final weights
    assert same(again["bbox"], saved["bbox"])
    assert again["model_final_sha256"] == quickstart.file_digest(final)
    assert (tmp_path / "model_final.pth.corrupt").exists()


class StopTraining(Exception):
    """Ends a test's run where its training would start."""


def test_a_forced_run_keeps_its_log(data_opts, tmp_path, monkeypatch):
    (tmp_path / "log.txt").write_text("the log of another run\n")
    (tmp_path / "model_final.pth").write_bytes(b"the weights of another run")

    def train_and_evaluate(config, resume):
        logging.getLogger("focal_eiou_d2.quickstart").info("the forced run trains")
        raise StopTraining

    monkeypatch.setattr(quickstart, "train_and_evaluate", train_and_evaluate)
    argv = ["--config-file", CONFIG, "--output", str(tmp_path), "--force", "--opts", *data_opts]
    with pytest.raises(StopTraining):
        quickstart.main(argv)
    log = (tmp_path / "log.txt").read_text()
    assert "the forced run trains" in log and "another run" not in log
    assert not (tmp_path / "model_final.pth").exists()


def test_overrides_trailing_and_after_opts_and_the_old_output_option():
    argv = [
        "--config-file",
        CONFIG,
        "--output-dir",
        "out",
        "--opts",
        "SEED",
        "1",
        "SOLVER.MAX_ITER",
    ]
    args = quickstart.parse_args([*argv, "3", "--force"])
    assert (
        args.output == "out" and args.force and args.opts == ["SEED", "1", "SOLVER.MAX_ITER", "3"]
    )
    args = quickstart.parse_args(["--output", "out", "SEED", "1", "--opts", "SOLVER.MAX_ITER", "3"])
    assert args.output == "out" and args.opts == ["SEED", "1", "SOLVER.MAX_ITER", "3"]


def test_default_config_is_found_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_run_config(quickstart.DEFAULT_CONFIG).loss_type == "focal_eiou"


def test_table_lists_ap_and_per_class_ap():
    metrics = {k: 10.0 for k in quickstart.AP_KEYS} | {"AP-ring": 55.5}
    table = quickstart.format_table("RetinaNet (focal_eiou)", metrics)
    assert "| AP | AP50 |" in table and "AP-ring" in table and "55.5" in table


def _initial_state(config):
    """Initial weights and first batch's boxes of a freshly built trainer."""
    torch.seed()  # reseed at random: whatever ran before must not matter
    trainer = quickstart.build_trainer(config)
    weights = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    batch = next(iter(trainer.data_loader))
    boxes = torch.cat([item["instances"].gt_boxes.tensor.flatten() for item in batch])
    return weights, boxes


def test_seed_decides_initial_weights_and_batches(data_opts, tmp_path):
    config = load_run_config(CONFIG, data_opts, output_dir=str(tmp_path))
    other = load_run_config(CONFIG, data_opts + ["SEED", "1"], output_dir=str(tmp_path))
    weights, boxes = _initial_state(config)
    weights_again, boxes_again = _initial_state(config)
    weights_other, boxes_other = _initial_state(other)
    assert torch.equal(weights, weights_again) and torch.equal(boxes, boxes_again)
    assert not torch.equal(weights, weights_other) and not torch.equal(boxes, boxes_other)
