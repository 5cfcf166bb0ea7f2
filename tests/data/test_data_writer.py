"""Dataset files: exact annotations, byte-identical output, split markers, atomic writes, CLI."""

import dataclasses
import filecmp
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest

from focal_eiou_d2.data import ShapesSpec, generate_shapes, writer
from focal_eiou_d2.data import generate as cli
from focal_eiou_d2.data.shapes import CLASS_NAMES


def load_split(directory, split):
    """Returns the split's COCO dict and its annotations grouped by image id."""
    with open(writer.split_paths(directory, split)[0]) as f:
        coco = json.load(f)
    by_image = {image["id"]: [] for image in coco["images"]}
    for annotation in coco["annotations"]:
        by_image[annotation["image_id"]].append(annotation)
    return coco, by_image


def all_files(directory):
    """Relative paths of every file under ``directory``, sorted."""
    return sorted(
        os.path.relpath(os.path.join(parent, name), directory)
        for parent, _, names in os.walk(directory)
        for name in names
    )


@pytest.mark.parametrize("split", ["train", "val"])
def test_coco_structure(tiny_shapes, tiny_spec, split):
    coco, by_image = load_split(tiny_shapes, split)
    assert len(coco["images"]) == tiny_spec.num_images(split)
    assert [c["name"] for c in coco["categories"]] == list(CLASS_NAMES)
    assert [c["id"] for c in coco["categories"]] == list(range(1, len(CLASS_NAMES) + 1))
    assert all(len(annotations) >= 1 for annotations in by_image.values())
    ids = [a["id"] for a in coco["annotations"]]
    assert ids == list(range(1, len(ids) + 1))
    image_root = writer.split_paths(tiny_shapes, split)[1]
    for image in coco["images"]:
        path = os.path.join(image_root, image["file_name"])
        assert cv2.imread(path).shape == (image["height"], image["width"], 3)


@pytest.mark.parametrize("split", ["train", "val"])
def test_annotations_are_exact(tiny_shapes, split):
    """bbox == box of the RLE mask, area == its pixel count, and the mask matches the image.

    In the image, a mask's pixels share one colour up to noise, that colour stands out from the
    non-object pixels around the mask, and almost none of those pixels have it (no missed edge).
    """
    coco, by_image = load_split(tiny_shapes, split)
    image_root = writer.split_paths(tiny_shapes, split)[1]
    for image in coco["images"]:
        pixels = cv2.imread(os.path.join(image_root, image["file_name"])).astype(int)
        annotations = by_image[image["id"]]
        masks = [mask_util.decode(a["segmentation"]).astype(bool) for a in annotations]
        objects = np.any(masks, axis=0)
        for annotation, mask in zip(annotations, masks, strict=True):
            rle = annotation["segmentation"]
            assert rle["size"] == [image["height"], image["width"]]
            assert mask_util.toBbox(rle).tolist() == annotation["bbox"]
            assert annotation["area"] == mask.sum() == mask_util.area(rle)
            assert annotation["iscrowd"] == 0
            colour = np.median(pixels[mask], axis=0)
            assert np.quantile(np.abs(pixels[mask] - colour).max(axis=1), 0.99) <= 25
            grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            around = pixels[grown & ~objects]
            if len(around):
                assert np.abs(np.median(around, axis=0) - colour).max() >= 30
                assert (np.abs(around - colour).max(axis=1) <= 20).mean() <= 0.1


def test_same_seed_is_byte_identical(tiny_shapes, tiny_spec, tmp_path):
    again = generate_shapes(str(tmp_path / "again"), tiny_spec)
    files = all_files(tiny_shapes)
    assert len(files) == 2 * 2 + tiny_spec.train_images + tiny_spec.val_images
    assert all_files(again) == files
    match, mismatch, errors = filecmp.cmpfiles(tiny_shapes, again, files, shallow=False)
    assert mismatch == errors == []


def test_different_seed_differs(tiny_shapes, tiny_spec, tmp_path):
    other = dataclasses.replace(tiny_spec, seed=tiny_spec.seed + 1)
    directory = generate_shapes(str(tmp_path / "other"), other)
    for name in ("train/annotations.json", "val/annotations.json", "val/images/000001.png"):
        assert not filecmp.cmp(os.path.join(tiny_shapes, name), os.path.join(directory, name))


def count_split_writes(monkeypatch):
    """Counts ``write_split`` calls; returns the list that records them."""
    calls, write_split = [], writer.write_split

    def counted(directory, split, spec):
        calls.append(split)
        write_split(directory, split, spec)

    monkeypatch.setattr(writer, "write_split", counted)
    return calls


def test_matching_spec_skips_generation(tmp_path, monkeypatch):
    spec = ShapesSpec(train_images=2, val_images=1, image_size=64)
    directory = generate_shapes(str(tmp_path / "d"), spec)
    marker = os.stat(os.path.join(directory, "train", "spec.json"))
    calls = count_split_writes(monkeypatch)
    assert generate_shapes(directory, spec) == directory
    assert calls == []
    assert os.stat(os.path.join(directory, "train", "spec.json")).st_mtime_ns == marker.st_mtime_ns


def test_changed_spec_regenerates(tmp_path, monkeypatch):
    directory = generate_shapes(str(tmp_path / "d"), ShapesSpec(2, 1, image_size=64))
    calls = count_split_writes(monkeypatch)
    changed = ShapesSpec(3, 2, image_size=64)
    generate_shapes(directory, changed)
    assert calls == ["train", "val"]
    assert writer.read_marker(os.path.join(directory, "val")) == changed.marker("val")
    assert len(load_split(directory, "train")[0]["images"]) == 3
    assert sorted(os.listdir(tmp_path)) == ["d"]
    assert sorted(os.listdir(directory)) == ["train", "val"]  # no staging or old copies left


def fail_after(monkeypatch, count):
    """Makes ``render_sample`` raise on its call number ``count + 1``."""
    calls, render_sample = [], writer.render_sample

    def failing(*args):
        calls.append(args)
        if len(calls) > count:
            raise KeyboardInterrupt
        return render_sample(*args)

    monkeypatch.setattr(writer, "render_sample", failing)


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    fail_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        generate_shapes(str(tmp_path / "d"), ShapesSpec(4, 2, image_size=64))
    assert os.listdir(tmp_path / "d") == []


def test_interrupted_regeneration_keeps_old_dataset(tmp_path, monkeypatch):
    old = ShapesSpec(2, 1, image_size=64)
    directory = generate_shapes(str(tmp_path / "d"), old)
    fail_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        generate_shapes(directory, ShapesSpec(4, 2, image_size=64))
    for split in writer.SPLITS:
        assert writer.read_marker(os.path.join(directory, split)) == old.marker(split)
    assert os.listdir(tmp_path) == ["d"]
    assert sorted(os.listdir(directory)) == ["train", "val"]


def test_foreign_directory_is_not_replaced(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate_shapes(str(tmp_path), ShapesSpec(1, 1, image_size=64))
    assert os.listdir(tmp_path) == ["mine.txt"]


def test_spec_dirname_and_marker():
    spec = ShapesSpec(10, 5, image_size=64, seed=2)
    assert spec.dirname() == "64px_10train_5val_seed2"
    assert spec.marker("val") == {
        "format_version": writer.FORMAT_VERSION,
        "split": "val",
        "train_images": 10,
        "val_images": 5,
        "image_size": 64,
        "seed": 2,
        "one_class": False,
    }
    assert ShapesSpec(10, 5, 64, 2, one_class=True).dirname() == "64px_10train_5val_seed2_1class"


def test_one_class_variant_has_the_same_images_and_one_category(tmp_path):
    shapes, one_class = ShapesSpec(3, 1, 64, seed=4), ShapesSpec(3, 1, 64, seed=4, one_class=True)
    folders = [
        generate_shapes(str(tmp_path / spec.dirname()), spec) for spec in (shapes, one_class)
    ]
    cocos = [json.loads(Path(f, "train", "annotations.json").read_text()) for f in folders]
    assert cocos[1]["categories"] == [{"id": 1, "name": "shape", "supercategory": "shape"}]
    assert {a["category_id"] for a in cocos[1]["annotations"]} == {1}
    assert len({a["category_id"] for a in cocos[0]["annotations"]}) > 1
    assert [a["bbox"] for a in cocos[0]["annotations"]] == [
        a["bbox"] for a in cocos[1]["annotations"]
    ]
    for name in ("000001.png", "000003.png"):
        assert (
            Path(folders[0], "train", "images", name).read_bytes()
            == Path(folders[1], "train", "images", name).read_bytes()
        )


def test_cli(tmp_path, capsys):
    args = "--train-images 2 --val-images 1 --image-size 64 --seed 5".split()
    cli.main(["--root", str(tmp_path), *args])
    directory = str(tmp_path / "64px_2train_1val_seed5")
    assert capsys.readouterr().out.strip() == directory
    for split in writer.SPLITS:
        assert writer.read_marker(os.path.join(directory, split)) == ShapesSpec(2, 1, 64, 5).marker(
            split
        )
    cli.main(["--root", str(tmp_path / "only_val"), "--splits", "val", *args])
    assert os.listdir(tmp_path / "only_val" / "64px_2train_1val_seed5") == ["val"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0


def test_one_split_is_generated_alone(tmp_path, monkeypatch):
    directory = str(tmp_path / "d")
    spec = ShapesSpec(3, 2, image_size=64)
    calls = count_split_writes(monkeypatch)
    assert writer.generate_split(directory, "val", spec) == os.path.join(directory, "val")
    assert calls == ["val"]
    assert os.listdir(directory) == ["val"]
    val_marker = os.stat(os.path.join(directory, "val", "spec.json")).st_mtime_ns
    generate_shapes(directory, spec)
    assert calls == ["val", "train"]
    assert os.stat(os.path.join(directory, "val", "spec.json")).st_mtime_ns == val_marker


def test_unknown_split_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="split must be one of train, val, not 'test'"):
        writer.generate_split(str(tmp_path / "d"), "test", ShapesSpec(1, 1, image_size=64))
    assert os.listdir(tmp_path) == []


def test_split_alone_is_byte_identical(tiny_shapes, tiny_spec, tmp_path):
    directory = writer.generate_split(str(tmp_path / "alone"), "val", tiny_spec)
    files = all_files(directory)
    assert files == all_files(os.path.join(tiny_shapes, "val"))
    match, mismatch, errors = filecmp.cmpfiles(
        directory, os.path.join(tiny_shapes, "val"), files, shallow=False
    )
    assert mismatch == errors == []


def test_outdated_split_is_replaced(tmp_path):
    spec = ShapesSpec(2, 1, image_size=64)
    directory = generate_shapes(str(tmp_path / "d"), spec)
    marker_file = os.path.join(directory, "val", "spec.json")
    writer.write_json(marker_file, {**spec.marker("val"), "format_version": 0})
    writer.generate_split(directory, "val", spec)
    assert writer.read_marker(os.path.join(directory, "val")) == spec.marker("val")
    assert sorted(os.listdir(directory)) == ["train", "val"]


def test_format_1_dataset_is_replaced(tmp_path):
    """A dataset of the layout of format 1 (one marker for both splits) is regenerated."""
    directory = tmp_path / "d"
    for split in writer.SPLITS:
        (directory / split).mkdir(parents=True)
        (directory / split / "000001.png").write_bytes(b"old")
        (directory / f"{split}.json").write_text("{}")
    legacy = {"format_version": 1, "train_images": 2, "val_images": 1, "image_size": 64, "seed": 0}
    writer.write_json(str(directory / "spec.json"), legacy)
    spec = ShapesSpec(2, 1, image_size=64)
    writer.generate_split(str(directory), "val", spec)
    assert os.listdir(directory) == ["val"]
    assert writer.read_marker(str(directory / "val")) == spec.marker("val")


def test_format_1_dataset_with_foreign_files_is_not_touched(tmp_path):
    legacy = {"format_version": 1, "train_images": 2, "val_images": 1, "image_size": 64, "seed": 0}
    writer.write_json(str(tmp_path / "spec.json"), legacy)
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="'notes.txt'"):
        writer.generate_split(str(tmp_path), "val", ShapesSpec(2, 1, image_size=64))
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "spec.json"]


def test_foreign_split_folder_is_not_replaced(tmp_path):
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="'val', which is not part of a shapes dataset"):
        writer.generate_split(str(tmp_path), "val", ShapesSpec(1, 1, image_size=64))
    assert os.listdir(tmp_path) == ["val"]
    assert os.listdir(tmp_path / "val") == ["mine.txt"]
