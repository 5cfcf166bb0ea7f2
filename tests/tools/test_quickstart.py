"""The quickstart job trains, evaluates, saves and visualizes; a second run reuses its results, a
changed config never overwrites them, and damaged final weights are repaired."""

import json
import os

import pytest
import torch
from tiny_models import SMOKE_OPTS

from focal_eiou_d2.data import MINI_SPEC, register_shapes
from focal_eiou_d2.engine import OutputDirError, build_config, config_digest
from focal_eiou_d2.tools import quickstart

CONFIG = "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"


@pytest.fixture(scope="module")
def data_opts(tmp_path_factory):
    register_shapes(("qs_train", "qs_val"), MINI_SPEC, root=str(tmp_path_factory.mktemp("data")))
    return SMOKE_OPTS + ["DATASETS.TRAIN", "('qs_train',)", "DATASETS.TEST", "('qs_val',)"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_opts):
    cfg = build_config(CONFIG, data_opts, output_dir=str(tmp_path_factory.mktemp("run")))
    return cfg, quickstart.run(cfg, num_visualizations=2)


def test_run_evaluates_with_finite_ap(finished_run):
    cfg, saved = finished_run
    for key in ("AP", "AP50", "AP75"):  # size bands may hold no object of the mini dataset
        assert 0.0 <= saved["bbox"][key] <= 100.0
    assert len(saved["ap_per_iou"]) == len(saved["iou_thresholds"]) == 10
    assert 0 < saved["draw_threshold"] < 1 and 0 <= saved["draw_f1"] <= 1
    with open(os.path.join(cfg.OUTPUT_DIR, quickstart.RESULTS_FILE)) as f:
        written = json.load(f)
    assert json.dumps(written, sort_keys=True) == json.dumps(saved, sort_keys=True)
    assert len(os.listdir(os.path.join(cfg.OUTPUT_DIR, "visualizations"))) == 2


def test_second_run_reuses_results(finished_run, monkeypatch):
    cfg, saved = finished_run

    def fail(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(quickstart, "train_and_evaluate", fail)
    again = quickstart.run(cfg, num_visualizations=0)
    assert json.dumps(again, sort_keys=True) == json.dumps(saved, sort_keys=True)


def test_changed_config_does_not_touch_the_finished_run(finished_run):
    cfg, saved = finished_run
    files = {name: os.stat(os.path.join(cfg.OUTPUT_DIR, name)).st_mtime_ns for name in
             ("model_final.pth", quickstart.RESULTS_FILE)}  # fmt: skip
    changed = cfg.clone()
    changed.defrost()
    changed.SOLVER.MAX_ITER = 3
    with pytest.raises(OutputDirError, match="holds a run of another config"):
        quickstart.run(changed, num_visualizations=0)
    for name, mtime in files.items():
        assert os.stat(os.path.join(cfg.OUTPUT_DIR, name)).st_mtime_ns == mtime


def test_digest_ignores_the_output_directory_only(finished_run):
    cfg, _ = finished_run
    moved, changed = cfg.clone(), cfg.clone()
    moved.defrost()
    moved.OUTPUT_DIR = "elsewhere"
    changed.defrost()
    changed.SEED = cfg.SEED + 1
    assert config_digest(moved) == config_digest(cfg)
    assert config_digest(changed) != config_digest(cfg)


def test_damaged_final_weights_are_trained_again(tmp_path, data_opts):
    cfg = build_config(
        CONFIG, data_opts + ["SOLVER.CHECKPOINT_PERIOD", "1"], output_dir=str(tmp_path)
    )
    saved = quickstart.run(cfg, num_visualizations=0)
    final = tmp_path / quickstart.FINAL_WEIGHTS
    final.write_bytes(final.read_bytes()[:1000])  # truncated, e.g. by a full disk
    again = quickstart.run(cfg, num_visualizations=1)  # drawing loads the final weights
    assert json.dumps(again["bbox"]) == json.dumps(saved["bbox"])
    assert again["model_final_sha256"] == quickstart.file_digest(final)
    assert (tmp_path / "model_final.pth.corrupt").exists()


def test_default_config_is_found_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = build_config(quickstart.DEFAULT_CONFIG)
    assert cfg.MODEL.RETINANET.BBOX_REG_LOSS_TYPE == "focal_eiou"


def test_table_lists_ap_and_per_class_ap():
    metrics = {k: 10.0 for k in quickstart.AP_KEYS} | {"AP-ring": 55.5}
    table = quickstart.format_table("RetinaNet (focal_eiou)", metrics)
    assert "| AP | AP50 |" in table and "AP-ring" in table and "55.5" in table


def _initial_state(cfg):
    """Initial weights and first batch's boxes of a freshly built trainer."""
    torch.seed()  # reseed at random: whatever ran before must not matter
    trainer = quickstart.build_trainer(cfg)
    weights = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    batch = next(iter(trainer.data_loader))
    boxes = torch.cat([item["instances"].gt_boxes.tensor.flatten() for item in batch])
    return weights, boxes


def test_seed_decides_initial_weights_and_batches(finished_run):
    cfg, _ = finished_run
    other = cfg.clone()
    other.defrost()
    other.SEED = cfg.SEED + 1
    weights, boxes = _initial_state(cfg)
    weights_again, boxes_again = _initial_state(cfg)
    weights_other, _ = _initial_state(other)
    assert torch.equal(weights, weights_again)
    assert torch.equal(boxes, boxes_again)
    assert not torch.equal(weights, weights_other)
