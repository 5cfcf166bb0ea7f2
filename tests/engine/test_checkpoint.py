"""Checkpoints: a damaged last checkpoint is set aside and training resumes from the one before;
weights that do not fit the model are an error naming the keys; a .pkl cannot run code."""

import collections
import logging
import os
import pickle

import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from tiny_models import build_tiny_model

from focal_eiou_d2.engine import WeightsError, WeightsMismatchError, load_trained_weights
from focal_eiou_d2.engine.checkpoint import TrainingCheckpointer, load_pkl_weights


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


class Payload:
    """What a crafted .pkl holds: unpickling it calls ``os.system``."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("loader", ["trained", "initial", "resumed"])
def test_a_crafted_pkl_runs_nothing_and_names_the_file(tmp_path, loader):
    marker = tmp_path / "ran"
    path = tmp_path / "weights.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": {"w": Payload(f"touch {marker}")}, "__author__": "x"}, f, protocol=2)
    model = torch.nn.Linear(2, 2)
    checkpointer = TrainingCheckpointer(model, str(tmp_path / "run"))
    load = {
        "trained": lambda: load_trained_weights(model, str(path)),
        "initial": lambda: checkpointer.load_initial_weights(str(path)),
        "resumed": lambda: checkpointer.resume_training(str(path)),
    }[loader]
    with pytest.raises(WeightsError, match=f"{path}: the file names the global posix.system"):
        load()
    assert not marker.exists()


def zoo_files(folder, state_dict, protocol):
    """Files shaped as Detectron2's model zoo (``model``, ``__author__``), Detectron's (``blobs``,
    with a momentum blob and a numpy scalar beside the blobs) and an ImageNet backbone's (bare
    arrays), as Python writes them with ``protocol``."""
    arrays = collections.OrderedDict((k, v.numpy()) for k, v in state_dict.items())
    contents = {
        "zoo": {"model": arrays, "__author__": "Detectron2 Model Zoo", "matching_heuristics": True},
        "detectron": {
            "blobs": {**arrays, "weight_momentum": np.zeros(2, np.float32)},
            "iter": np.int64(90000),
            "cfg": "MODEL: ...",
        },
        "imagenet": dict(arrays),
    }
    paths = {}
    for name, content in contents.items():
        paths[name] = str(folder / f"{name}.pkl")
        with open(paths[name], "wb") as f:
            pickle.dump(content, f, protocol=protocol)
    return paths


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL])
def test_model_zoo_pkl_files_load_as_detectron2_reads_them(tmp_path, protocol):
    source = torch.nn.Linear(2, 2)
    paths = zoo_files(tmp_path, source.state_dict(), protocol)
    for name, path in paths.items():
        expected = DetectionCheckpointer(torch.nn.Linear(2, 2))._load_file(path)  # plain pickle
        loaded = load_pkl_weights(path)
        assert loaded.keys() == expected.keys(), name
        assert loaded["model"].keys() == expected["model"].keys(), name
        for key, value in expected["model"].items():
            np.testing.assert_array_equal(loaded["model"][key], value)
    target = torch.nn.Linear(2, 2)
    load_trained_weights(target, paths["zoo"])
    assert torch.equal(target.weight, source.weight) and torch.equal(target.bias, source.bias)
    target = torch.nn.Linear(2, 2)
    TrainingCheckpointer(target, str(tmp_path)).load_initial_weights(paths["imagenet"])
    assert torch.equal(target.weight, source.weight)
