"""The quickstart job trains, evaluates, saves and visualizes; a second run reuses its results."""

import json
import os

import pytest
import torch
from tiny_models import SMOKE_OPTS

from focal_eiou_d2.data import MINI_SPEC, register_shapes
from focal_eiou_d2.tools import quickstart

CONFIG = "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("quickstart")
    register_shapes(("qs_train", "qs_val"), MINI_SPEC, root=str(root / "data"))
    opts = SMOKE_OPTS + ["DATASETS.TRAIN", "('qs_train',)", "DATASETS.TEST", "('qs_val',)"]
    cfg = quickstart.build_cfg(CONFIG, opts, output_dir=str(root / "run"))
    return cfg, quickstart.run(cfg, num_visualizations=2)


def test_run_evaluates_with_finite_ap(finished_run):
    cfg, saved = finished_run
    for key in ("AP", "AP50", "AP75"):  # size bands may hold no object of the mini dataset
        assert 0.0 <= saved["bbox"][key] <= 100.0
    assert len(saved["ap_per_iou"]) == len(saved["iou_thresholds"]) == 10
    with open(os.path.join(cfg.OUTPUT_DIR, quickstart.RESULTS_FILE)) as f:
        written = json.load(f)
    assert written["config_digest"] == saved["config_digest"]
    assert written["ap_per_iou"] == saved["ap_per_iou"]
    assert len(os.listdir(os.path.join(cfg.OUTPUT_DIR, "visualizations"))) == 2


def test_second_run_reuses_results(finished_run, monkeypatch):
    cfg, saved = finished_run

    def fail(*args):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(quickstart, "train_and_evaluate", fail)
    again = quickstart.run(cfg, num_visualizations=0)
    assert again["config_digest"] == saved["config_digest"]
    assert again["bbox"]["AP"] == saved["bbox"]["AP"]


def test_changed_config_is_not_served_from_cache(finished_run):
    cfg, _ = finished_run
    changed = cfg.clone()
    changed.defrost()
    changed.SOLVER.BASE_LR = 0.005
    path = os.path.join(cfg.OUTPUT_DIR, quickstart.RESULTS_FILE)
    assert quickstart.cached_results(cfg, path) is not None
    assert quickstart.cached_results(changed, path) is None


def test_digest_ignores_the_output_directory_only(finished_run):
    cfg, _ = finished_run
    moved, changed = cfg.clone(), cfg.clone()
    moved.defrost()
    moved.OUTPUT_DIR = "elsewhere"
    changed.defrost()
    changed.SEED = cfg.SEED + 1
    assert quickstart.config_digest(moved) == quickstart.config_digest(cfg)
    assert quickstart.config_digest(changed) != quickstart.config_digest(cfg)


def test_checkpoints_of_another_config_are_not_resumed(finished_run):
    cfg, _ = finished_run
    changed = cfg.clone()
    changed.defrost()
    changed.SOLVER.BASE_LR = 0.005
    assert quickstart.can_resume(cfg)
    assert not quickstart.can_resume(changed)


def test_table_lists_ap_and_per_class_ap():
    metrics = {k: 10.0 for k in quickstart.AP_KEYS} | {"AP-ring": 55.5}
    table = quickstart.format_table("RetinaNet (focal_eiou)", metrics)
    assert "| AP | AP50 |" in table and "AP-ring" in table and "55.5" in table


def _initial_state(cfg):
    """Initial weights and first batch's boxes of a freshly built trainer."""
    torch.seed()  # reseed at random: whatever ran before must not matter
    trainer = quickstart.build_trainer(cfg)
    weights = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    batch = next(trainer._trainer._data_loader_iter)
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
