"""--coco-dataset NAME ANNOTATIONS_JSON IMAGE_DIR: parsing, registration, idempotence, clashes."""

import argparse
import logging
import multiprocessing
import os

import pytest
import torch
from coco_tiny import CATEGORY_ID, CLASS_NAME, NUM_IMAGES, read_json, write_coco_tiny
from detectron2.data import DatasetCatalog, MetadataCatalog, get_detection_dataset_dicts
from detectron2.engine import default_argument_parser
from detectron2.evaluation import COCOEvaluator
from detectron2.structures import Boxes, BoxMode, Instances

from focal_eiou_d2.data import (
    CocoDataset,
    DatasetError,
    add_coco_dataset_argument,
    register_coco_datasets,
)
from focal_eiou_d2.data import check as check_cli
from focal_eiou_d2.data import coco as coco_module


@pytest.fixture
def coco_files(tmp_path):
    """``(json_file, image_root)`` of a fresh tiny COCO dataset."""
    return write_coco_tiny(tmp_path / "mydata")


@pytest.fixture
def unregister():
    """A list to put registered names in; they are removed from the catalogs after the test."""
    names = []
    yield names
    for name in names:
        if name in DatasetCatalog.list():
            DatasetCatalog.remove(name)
        if name in MetadataCatalog.list():
            MetadataCatalog.remove(name)


@pytest.fixture
def coco_log():
    """Records what ``focal_eiou_d2.data.coco`` logs (independent of other loggers' setup)."""
    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    logger = logging.getLogger(coco_module.__name__)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def parser_with_option():
    parser = argparse.ArgumentParser()
    add_coco_dataset_argument(parser)
    return parser


def test_option_parses_repeated_triples_into_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parser = parser_with_option()
    args = parser.parse_args(
        "--coco-dataset a train.json imgs --coco-dataset b /data/val.json /data/val".split()
    )
    assert args.coco_datasets == [
        CocoDataset("a", str(tmp_path / "train.json"), str(tmp_path / "imgs")),
        CocoDataset("b", "/data/val.json", "/data/val"),
    ]
    assert parser.parse_args([]).coco_datasets == []  # the default is not mutated
    assert "NAME ANNOTATIONS_JSON IMAGE_DIR" in parser.format_help()


def test_option_comes_before_config_overrides():
    parser = default_argument_parser()
    add_coco_dataset_argument(parser)
    args = parser.parse_args(
        ["--config-file", "c.yaml", "--coco-dataset", "mine", "/j.json", "/d"]
        + ["DATASETS.TRAIN", "('mine',)"]
    )
    assert args.coco_datasets == [CocoDataset("mine", "/j.json", "/d")]
    assert args.opts == ["DATASETS.TRAIN", "('mine',)"]


@pytest.mark.parametrize(
    "argv", [["--coco-dataset", "a", "b.json"], ["--coco-dataset", " ", "b", "c"]]
)
def test_option_rejects_bad_values(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser_with_option().parse_args(argv)
    assert exit_info.value.code == 2
    assert "--coco-dataset" in capsys.readouterr().err


def test_registration_sets_metadata_before_loading(coco_files, unregister):
    json_file, image_root = coco_files
    unregister.append("mine_train")
    assert register_coco_datasets([CocoDataset("mine_train", json_file, image_root)]) == [
        "mine_train"
    ]
    metadata = MetadataCatalog.get("mine_train")
    assert metadata.evaluator_type == "coco"
    assert (metadata.json_file, metadata.image_root) == (json_file, image_root)
    assert metadata.thing_classes == [CLASS_NAME]
    assert metadata.thing_dataset_id_to_contiguous_id == {CATEGORY_ID: 0}


def test_config_name_loads_with_detectron2(coco_files, unregister):
    """What ``DATASETS.TRAIN ('mine_train',)`` does: Detectron2 loads it by name, ids mapped."""
    unregister.append("mine_train")
    register_coco_datasets([CocoDataset("mine_train", *coco_files)])
    dicts = get_detection_dataset_dicts(["mine_train"])
    assert len(dicts) == NUM_IMAGES
    categories = {a["category_id"] for d in dicts for a in d["annotations"]}
    assert categories == {0}
    assert all(os.path.isfile(d["file_name"]) and d["file_name"].endswith(".jpg") for d in dicts)


def test_coco_evaluator_maps_classes_back_to_the_json_ids(coco_files, unregister):
    unregister.append("mine_val")
    register_coco_datasets([CocoDataset("mine_val", *coco_files)])
    evaluator = COCOEvaluator("mine_val", tasks=("bbox",), use_fast_impl=False)
    evaluator.reset()
    for record in DatasetCatalog.get("mine_val"):
        annotations = record["annotations"]
        boxes = [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in annotations]
        instances = Instances((record["height"], record["width"]))
        instances.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
        instances.scores = torch.ones(len(annotations))
        instances.pred_classes = torch.tensor([a["category_id"] for a in annotations])
        evaluator.process([{"image_id": record["image_id"]}], [{"instances": instances}])
    assert evaluator.evaluate()["bbox"]["AP"] == pytest.approx(100.0)


def test_same_triple_twice_registers_and_warns_once(
    coco_files, unregister, coco_log, tmp_path, monkeypatch
):
    json_file, image_root = coco_files
    unregister.append("mine")
    first = register_coco_datasets([CocoDataset("mine", json_file, image_root)])
    warnings = [r for r in coco_log if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # category id 7 is mapped to class 0
    # Again, the same files by another spelling of their paths: nothing happens.
    monkeypatch.chdir(tmp_path)
    again = CocoDataset.from_values("mine", "mydata/instances.json", "mydata/./images")
    assert register_coco_datasets([again, again]) == first * 2 == ["mine", "mine"]
    assert [r for r in coco_log if r.levelno == logging.WARNING] == warnings
    assert DatasetCatalog.list().count("mine") == 1


@pytest.mark.parametrize("builtin", ["coco_2017_train", "shapes_train"])
def test_builtin_name_is_an_error(coco_files, builtin):
    with pytest.raises(DatasetError, match=f"'{builtin}' is already a registered dataset"):
        register_coco_datasets([CocoDataset(builtin, *coco_files)])
    assert MetadataCatalog.get(builtin).json_file != coco_files[0]


def test_name_of_other_files_is_an_error(coco_files, unregister, tmp_path):
    unregister.append("mine")
    register_coco_datasets([CocoDataset("mine", *coco_files)])
    other_json, other_root = write_coco_tiny(tmp_path / "other", seed=1)
    with pytest.raises(DatasetError) as error:
        register_coco_datasets([CocoDataset("mine", other_json, other_root)])
    message = str(error.value)
    assert "'mine' is already a registered dataset" in message
    assert coco_files[0] in message and other_json in message
    assert MetadataCatalog.get("mine").json_file == coco_files[0]


def test_invalid_dataset_is_not_registered(coco_files, unregister):
    unregister.append("broken")
    with pytest.raises(DatasetError):
        register_coco_datasets([CocoDataset("broken", coco_files[0], "/no/such/folder")])
    assert "broken" not in DatasetCatalog.list()


def test_check_command_refuses_a_name_of_other_files(coco_files, tmp_path, capsys):
    other_json, other_root = write_coco_tiny(tmp_path / "other", seed=1)
    same = ["--coco-dataset", "mine", *coco_files]
    argv = [*same, *same, "--coco-dataset", "mine", other_json, other_root]
    assert check_cli.main(argv) == 1
    (error,) = capsys.readouterr().err.splitlines()
    assert error.startswith("mine: error: the name is given to 2 datasets of other files (")
    assert coco_files[0] in error and other_json in error and "its own NAME" in error
    assert check_cli.main(same + same) == 0  # the same files twice: the tools accept it


def count_in_fresh_process(dataset):
    """Registers ``dataset`` in this (spawned) process and returns how many images it loads."""
    import focal_eiou_d2.data  # noqa: F401  as every tool does: registers the shapes datasets

    register_coco_datasets([dataset])
    return len(DatasetCatalog.get(dataset.name))


def test_registers_in_a_spawned_process(coco_files):
    """As with ``launch``: parsed datasets are pickled to a new process, which registers them."""
    args = parser_with_option().parse_args(["--coco-dataset", "mine", *coco_files])
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(count_in_fresh_process, (args.coco_datasets[0],)) == NUM_IMAGES


def test_check_command(coco_files, tmp_path, capsys):
    json_file, image_root = coco_files
    good = ["--coco-dataset", "mine", json_file, image_root]
    assert check_cli.main(good) == 0
    out = capsys.readouterr().out.splitlines()
    num_annotations = len(read_json(json_file)["annotations"])
    assert out[0] == f"mine: {NUM_IMAGES} images, {num_annotations} annotations, 1 class (shape)"
    assert out[1].startswith(f"mine: warning: {json_file}: the category ids (7) are not 1..1.")
    bad = ["--coco-dataset", "shapes_val", json_file, image_root]
    bad += ["--coco-dataset", "gone", json_file, str(tmp_path / "gone")]
    assert check_cli.main(good + bad) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("shapes_val: error: --coco-dataset shapes_val ")
    assert err[1].startswith(f"gone: error: image folder {tmp_path / 'gone'} (of {json_file})")


def test_a_dataset_checked_by_the_launcher_is_not_checked_again_by_its_processes(
    coco_files, unregister, monkeypatch
):
    """Validation once per machine: the processes a launcher starts inherit its environment,
    which records the datasets it checked (until their JSON changes)."""
    monkeypatch.delenv(coco_module.CHECKED_VARIABLE, raising=False)
    json_file, image_root = coco_files
    dataset = CocoDataset("mine_checked", json_file, image_root)
    unregister.append(dataset.name)
    register_coco_datasets([dataset])  # the launcher checks it
    checked_metadata = dict(MetadataCatalog.get(dataset.name).as_dict())
    for catalog in (DatasetCatalog, MetadataCatalog):
        catalog.remove(dataset.name)  # as in a new process started by the launcher

    def no_second_check(*args):
        raise AssertionError("the dataset was checked again")

    monkeypatch.setattr(coco_module, "check_coco_dataset", no_second_check)
    register_coco_datasets([dataset])
    assert dict(MetadataCatalog.get(dataset.name).as_dict()) == checked_metadata
    for catalog in (DatasetCatalog, MetadataCatalog):
        catalog.remove(dataset.name)
    stat = os.stat(json_file)
    os.utime(json_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # the JSON changed
    with pytest.raises(AssertionError, match="checked again"):
        register_coco_datasets([dataset])
