"""Checkpoints: a damaged last checkpoint is set aside and training resumes from the one before;
weights that do not fit the model are an error naming the keys."""

import logging

import pytest
import torch
from tiny_models import build_tiny_model

from focal_eiou_d2.engine import WeightsError, WeightsMismatchError, load_trained_weights
from focal_eiou_d2.engine.checkpoint import TrainingCheckpointer


def test_damaged_last_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    model = torch.nn.Linear(2, 2)
    checkpointer = TrainingCheckpointer(model, str(tmp_path))
    checkpointer.save("model_0000001", iteration=1)
    checkpointer.save("model_0000003", iteration=3)
    checkpointer.save("model_final", iteration=4)
    data = (tmp_path / "model_final.pth").read_bytes()
    (tmp_path / "model_final.pth").write_bytes(data[: len(data) // 2])  # a kill mid-copy
    with caplog.at_level(logging.WARNING):
        resumed = TrainingCheckpointer(model, str(tmp_path)).resume_training("")
    assert resumed["iteration"] == 3
    assert (
        "model_final.pth cannot be used" in caplog.text
        and "resuming from model_0000003" in caplog.text
    )
    assert (tmp_path / "model_final.pth.corrupt").exists()
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000003.pth"


def test_missing_last_checkpoint_with_nothing_else_starts_over(tmp_path):
    model = torch.nn.Linear(2, 2)
    (tmp_path / "last_checkpoint").write_text("model_final.pth")
    assert TrainingCheckpointer(model, str(tmp_path)).resume_training("") is None
    assert not (tmp_path / "last_checkpoint").exists()


def test_save_leaves_no_partial_file(tmp_path):
    TrainingCheckpointer(torch.nn.Linear(2, 2), str(tmp_path)).save("model_0000000")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000000.pth"]


def test_weights_of_another_architecture_are_refused(tmp_path):
    retinanet = build_tiny_model("retinanet")
    torch.save({"model": retinanet.state_dict()}, tmp_path / "retinanet.pth")
    with pytest.raises(WeightsMismatchError, match=r"18 missing \(backbone.*13 unexpected"):
        load_trained_weights(build_tiny_model("faster_rcnn"), str(tmp_path / "retinanet.pth"))


def test_weights_of_another_class_count_are_refused(tmp_path):
    model = build_tiny_model("faster_rcnn")
    state = model.state_dict()
    state["roi_heads.box_predictor.cls_score.weight"] = torch.zeros(9, 64)
    torch.save({"model": state}, tmp_path / "other.pth")
    with pytest.raises(WeightsMismatchError, match=r"of another shape \(roi_heads"):
        load_trained_weights(model, str(tmp_path / "other.pth"))


def test_fitting_weights_load_and_a_missing_buffer_is_tolerated(tmp_path):
    source, target = build_tiny_model("retinanet", seed=1), build_tiny_model("retinanet", seed=2)
    state = source.state_dict()
    del state["loss_normalizer"]  # a Detectron2 RetinaNet checkpoint has no such buffer
    torch.save({"model": state}, tmp_path / "weights.pth")
    load_trained_weights(target, str(tmp_path / "weights.pth"))
    for name, value in source.state_dict().items():
        if name != "loss_normalizer":
            assert torch.equal(target.state_dict()[name], value), name
    with pytest.raises(FileNotFoundError):
        load_trained_weights(target, str(tmp_path / "absent.pth"))


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_unreadable_weights_name_the_file(tmp_path, content):
    path = tmp_path / "model_final.pth"
    if content is None:  # a real checkpoint cut short
        torch.save({"model": build_tiny_model("retinanet").state_dict()}, path)
        content = path.read_bytes()[:5000]
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=f"cannot read the weights in {path}.*damaged"):
        load_trained_weights(build_tiny_model("retinanet"), str(path))
