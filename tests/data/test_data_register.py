"""Detectron2 registration: lazy generation, loading, metadata, COCO evaluation, bitmask mapping."""

import os
import subprocess
import sys

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.data import DatasetCatalog, DatasetMapper, MetadataCatalog
from detectron2.evaluation import COCOEvaluator
from detectron2.structures import BitMasks, Boxes, BoxMode, Instances

from focal_eiou_d2.data import (
    CLASS_NAMES,
    DEFAULT_NAMES,
    DEFAULT_SPEC,
    dataset_dir,
    prepare_datasets,
    register_shapes,
)
from focal_eiou_d2.data.writer import split_paths

NAMES = ("test_shapes_train", "test_shapes_val")


@pytest.fixture(scope="module")
def registered(tmp_path_factory, tiny_spec):
    """Registers the tiny spec under ``NAMES`` in a fresh root; returns that root."""
    root = str(tmp_path_factory.mktemp("root"))
    register_shapes(NAMES, tiny_spec, root=root)
    yield root
    for name in NAMES:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_registration_is_lazy_and_loads(tmp_path, tiny_spec):
    names = ("lazy_shapes_train", "lazy_shapes_val")
    register_shapes(names, tiny_spec, root=str(tmp_path))
    try:
        assert os.listdir(tmp_path) == []
        for name, split in zip(names, ("train", "val"), strict=True):
            dicts = DatasetCatalog.get(name)
            assert len(dicts) == tiny_spec.num_images(split)
            assert all(len(d["annotations"]) >= 1 for d in dicts)
            record = dicts[0]["annotations"][0]
            assert record["bbox_mode"] == BoxMode.XYWH_ABS
            assert isinstance(record["segmentation"]["counts"], str)
            assert 0 <= record["category_id"] < len(CLASS_NAMES)
        assert os.listdir(tmp_path) == [tiny_spec.dirname()]
    finally:
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


def test_loading_one_split_generates_only_that_split(tmp_path, tiny_spec):
    names = ("split_shapes_train", "split_shapes_val")
    register_shapes(names, tiny_spec, root=str(tmp_path))
    try:
        assert len(DatasetCatalog.get(names[1])) == tiny_spec.val_images
        assert os.listdir(dataset_dir(tiny_spec, str(tmp_path))) == ["val"]
    finally:
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


def test_metadata(registered, tiny_spec):
    json_file, image_root = split_paths(dataset_dir(tiny_spec, registered), "val")
    metadata = MetadataCatalog.get(NAMES[1])
    assert metadata.evaluator_type == "coco"
    assert metadata.thing_classes == list(CLASS_NAMES)
    assert len(metadata.thing_colors) == len(CLASS_NAMES)
    assert metadata.thing_dataset_id_to_contiguous_id == {i + 1: i for i in range(len(CLASS_NAMES))}
    assert (metadata.json_file, metadata.image_root) == (json_file, image_root)


def test_second_registration_is_fine(registered, tiny_spec):
    DatasetCatalog.get(NAMES[1])  # load once, which also writes metadata
    register_shapes(NAMES, tiny_spec, root=registered)
    assert len(DatasetCatalog.get(NAMES[1])) == tiny_spec.val_images
    assert MetadataCatalog.get(NAMES[1]).evaluator_type == "coco"


def test_default_names_point_at_default_root():
    for name, split in zip(DEFAULT_NAMES, ("train", "val"), strict=True):
        assert name in DatasetCatalog.list()
        json_file = split_paths(dataset_dir(DEFAULT_SPEC), split)[0]
        assert MetadataCatalog.get(name).json_file == json_file


def test_import_generates_nothing(tmp_path):
    env = dict(os.environ, DETECTRON2_DATASETS=str(tmp_path))
    subprocess.run([sys.executable, "-c", "import focal_eiou_d2.data"], env=env, check=True)
    assert os.listdir(tmp_path) == []


def ground_truth_as_prediction(record):
    """A perfect prediction for one Detectron2 dataset dict: boxes, classes and masks of the GT."""
    annotations = record["annotations"]
    boxes = [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in annotations]
    masks = np.stack([mask_util.decode(a["segmentation"]) for a in annotations])
    instances = Instances((record["height"], record["width"]))
    instances.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
    instances.scores = torch.ones(len(annotations))
    instances.pred_classes = torch.tensor([a["category_id"] for a in annotations])
    instances.pred_masks = torch.from_numpy(masks.astype(bool))
    return {"instances": instances}


def test_coco_evaluator_scores_ground_truth_perfectly(registered):
    dicts = DatasetCatalog.get(NAMES[1])
    evaluator = COCOEvaluator(NAMES[1], tasks=("bbox", "segm"), use_fast_impl=False)
    evaluator.reset()
    for record in dicts:
        evaluator.process([{"image_id": record["image_id"]}], [ground_truth_as_prediction(record)])
    results = evaluator.evaluate()
    assert results["bbox"]["AP"] == pytest.approx(100.0)
    assert results["segm"]["AP"] == pytest.approx(100.0)


def test_bitmask_mapper(registered):
    record = DatasetCatalog.get(NAMES[0])[0]
    mapper = DatasetMapper(
        is_train=True,
        augmentations=[],
        image_format="BGR",
        use_instance_mask=True,
        instance_mask_format="bitmask",
    )
    mapped = mapper(record)
    instances = mapped["instances"]
    assert mapped["image"].shape == (3, record["height"], record["width"])
    assert isinstance(instances.gt_masks, BitMasks)
    mask_boxes = instances.gt_masks.get_bounding_boxes().tensor
    torch.testing.assert_close(mask_boxes, instances.gt_boxes.tensor)


def test_prepare_datasets_generates_the_named_splits_once_before_training(tmp_path, tiny_spec):
    names = ("prepared_shapes_train", "prepared_shapes_val")
    register_shapes(names, tiny_spec, root=str(tmp_path))
    try:
        directory = dataset_dir(tiny_spec, str(tmp_path))
        prepare_datasets([names[0], "coco_2017_val"])  # a dataset not generated is left alone
        assert os.path.isfile(split_paths(directory, "train")[0])
        assert not os.path.exists(split_paths(directory, "val")[0])
    finally:
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
