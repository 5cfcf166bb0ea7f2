"""Class names of registered datasets, and the head's class count rule."""

import logging

import pytest
from coco_tiny import CLASS_NAME, edit_json, write_coco_tiny
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances

from focal_eiou_d2.data import (
    CLASS_NAMES,
    CocoDataset,
    DatasetError,
    dataset_classes,
    num_classes_for,
    register_coco_datasets,
)
from focal_eiou_d2.data import classes as classes_module

KEY = "MODEL.RETINANET.NUM_CLASSES"


@pytest.fixture
def registered(tmp_path):
    """Registers a tiny COCO dataset as ``cls_a``; unregisters every ``cls_*`` name after."""
    register_coco_datasets([CocoDataset("cls_a", *write_coco_tiny(tmp_path / "a"))])
    yield tmp_path
    for name in DatasetCatalog.list():
        if name.startswith("cls_"):
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


def test_classes_of_a_coco_dataset(registered):
    assert dataset_classes(["cls_a"]) == (CLASS_NAME,)
    assert dataset_classes("cls_a") == (CLASS_NAME,)


def test_builtin_coco_needs_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no datasets/coco here
    classes = dataset_classes(("coco_2017_train", "coco_2017_val"))
    assert len(classes) == 80 and classes[0] == "person"


def test_shapes_classes_need_no_generation():
    assert dataset_classes(("shapes_train",)) == tuple(CLASS_NAMES)


def test_dataset_without_metadata_is_loaded_once(registered):
    json_file, image_root = write_coco_tiny(registered / "plain")
    register_coco_instances("cls_plain", {}, json_file, image_root)
    assert dataset_classes(["cls_plain"]) == (CLASS_NAME,)


def test_datasets_with_different_classes(registered):
    json_file, image_root = write_coco_tiny(registered / "b")
    edit_json(json_file, lambda coco: coco["categories"].append({"id": 9, "name": "other"}))
    register_coco_datasets([CocoDataset("cls_b", json_file, image_root)])
    with pytest.raises(DatasetError, match=r"'cls_a' \(1 classes: shape\) and 'cls_b' \(2 class"):
        dataset_classes(["cls_a", "cls_b"])


def test_unknown_or_no_dataset():
    with pytest.raises(DatasetError, match="'cls_nope' is not registered.*--coco-dataset cls_nope"):
        dataset_classes(["cls_nope"])
    with pytest.raises(DatasetError, match="no dataset given"):
        dataset_classes([])


@pytest.fixture
def class_log():
    """Records what ``focal_eiou_d2.data.classes`` logs."""
    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    logger = logging.getLogger(classes_module.__name__)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_config_file_value_is_replaced_with_one_line(class_log):
    assert num_classes_for(1, KEY, 80, from_command_line=False) == 1
    (record,) = class_log
    assert record.getMessage() == (
        f"{KEY}: 1 (the training dataset's categories) replaces 80 from the config file"
    )
    assert num_classes_for(1, KEY, 1, from_command_line=False) == 1
    assert len(class_log) == 1  # nothing to say when they agree


@pytest.mark.parametrize("value", [3, 5])
def test_command_line_value_is_kept(value):
    assert num_classes_for(3, KEY, value, from_command_line=True) == value


def test_smaller_command_line_value_is_an_error():
    with pytest.raises(DatasetError) as error:
        num_classes_for(3, KEY, 2, from_command_line=True)
    message = str(error.value)
    assert f"{KEY} 2 given on the command line is smaller than the 3 categories" in message
    assert f"set {KEY} 3" in message
