"""The dataset check: an error naming the file and the fix per defect, warnings with counts."""

import os

import pytest
from coco_tiny import CATEGORY_ID, CLASS_NAME, NUM_IMAGES, edit_json, read_json, write_coco_tiny

from focal_eiou_d2.data import DatasetError, check_coco_dataset, validate


@pytest.fixture
def dataset(tmp_path):
    """``(json_file, image_root)`` of a fresh tiny COCO dataset the test may change."""
    return write_coco_tiny(tmp_path / "mydata")


def check_fails(json_file, image_root, *fragments):
    """Asserts that the check raises DatasetError whose message has every fragment."""
    with pytest.raises(DatasetError) as error:
        check_coco_dataset(json_file, image_root)
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_valid_dataset_summary(dataset):
    json_file, image_root = dataset
    coco = read_json(json_file)
    summary = check_coco_dataset(json_file, image_root)
    assert (summary.json_file, summary.image_root) == dataset
    assert summary.num_images == NUM_IMAGES
    assert summary.num_annotations == len(coco["annotations"]) > 0
    assert summary.category_ids == (CATEGORY_ID,)
    assert summary.thing_classes == (CLASS_NAME,)
    assert summary.id_map() == {CATEGORY_ID: 0}
    assert summary.describe() == (
        f"{NUM_IMAGES} images, {summary.num_annotations} annotations, 1 class ({CLASS_NAME})"
    )


def test_missing_json(dataset, tmp_path):
    missing = str(tmp_path / "nope.json")
    check_fails(missing, dataset[1], missing, "does not exist", "COCO instances JSON")


def test_json_is_a_folder(dataset):
    folder = os.path.dirname(dataset[0])
    check_fails(folder, dataset[1], folder, "is a folder")


def test_unreadable_json(dataset, monkeypatch):
    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    # Shadows open() inside the checker only (root reads files despite their permissions).
    monkeypatch.setattr(validate, "open", denied, raising=False)
    check_fails(*dataset, dataset[0], "cannot read", "(Permission denied)", "readable")


def test_truncated_json(dataset):
    json_file = dataset[0]
    with open(json_file) as f:
        text = f.read()
    with open(json_file, "w") as f:
        f.write(text[: len(text) // 2])
    check_fails(*dataset, json_file, "is not valid JSON", "line 1")


def test_binary_file_as_json(dataset):
    json_file, image_root = dataset
    jpeg = os.path.join(image_root, sorted(os.listdir(image_root))[0])
    check_fails(jpeg, image_root, jpeg, "not a text file")


def test_json_that_is_not_coco(dataset):
    json_file = dataset[0]
    edit_json(json_file, lambda coco: coco.pop("categories"))
    check_fails(*dataset, json_file, "not a COCO instances file", "categories")
    with open(json_file, "w") as f:
        f.write("[1, 2]")
    check_fails(*dataset, json_file, "top level is a list")


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (lambda coco: coco["categories"].clear(), ["defines no categories"]),
        (lambda coco: coco["categories"].append({"id": "8"}), ["1 categories", "integer 'id'"]),
        (lambda coco: coco["categories"].append({"id": 7, "name": "x"}), ["ids 7 occur more"]),
        (lambda coco: coco["images"].clear(), ["lists no images"]),
        (lambda coco: coco["images"][0].pop("height"), ["1 images", "lack one of the fields"]),
        (lambda coco: coco["images"][1].update(id=coco["images"][0]["id"]), ["image ids 100"]),
        (lambda coco: coco["annotations"][0].pop("bbox"), ["1 annotations", "no 'bbox' of 4"]),
        (lambda coco: coco["annotations"][0].update(bbox=[1, 2, 3]), ["no 'bbox' of 4"]),
        (lambda coco: coco["annotations"][0].update(bbox=[1, 2, float("nan"), 3]), ["finite"]),
        (lambda coco: coco["annotations"][1].update(id=1), ["annotation ids 1 occur more"]),
        (lambda coco: coco["annotations"][0].update(category_id=3), ["category ids 3, which"]),
    ],
)
def test_malformed_json(dataset, edit, fragments):
    edit_json(dataset[0], edit)
    check_fails(*dataset, dataset[0], *fragments)


def test_missing_image_folder(dataset, tmp_path):
    missing = str(tmp_path / "no_images")
    check_fails(dataset[0], missing, missing, dataset[0], "does not exist", "file_name")
    check_fails(dataset[0], dataset[0], "is not a folder")


def test_absent_images_are_counted_with_examples(dataset):
    json_file, image_root = dataset
    names = sorted(os.listdir(image_root))
    for name in names[:2]:
        os.remove(os.path.join(image_root, name))
    message = check_fails(*dataset, json_file, image_root, f"2 of {NUM_IMAGES} images")
    assert f"e.g. {names[0]}, {names[1]}:" in message


def test_many_absent_images_show_the_first_few(tmp_path):
    json_file, image_root = write_coco_tiny(tmp_path / "d", num_images=6, image_size=32)
    names = sorted(os.listdir(image_root))
    for name in names:
        os.remove(os.path.join(image_root, name))
    message = check_fails(json_file, image_root, "6 of 6 images")
    assert f"e.g. {', '.join(names[:3])}, ...:" in message
    assert names[3] not in message


def box_warnings(summary):
    """The warnings about box sizes (not the one about category ids)."""
    return [w for w in summary.warnings if "boxes have" in w]


def test_zero_and_negative_boxes_warn_once_each_with_counts(dataset):
    json_file = dataset[0]

    def degenerate(coco):
        annotations = coco["annotations"]
        annotations[0]["bbox"][2] = 0
        annotations[1]["bbox"][3] = 0
        annotations[2]["bbox"][2] = -5
        annotations[3].update(iscrowd=1, bbox=[0, 0, 0, 0])  # crowd: ignored by both

    edit_json(json_file, degenerate)
    total = len(read_json(json_file)["annotations"]) - 1
    zero, negative = box_warnings(check_coco_dataset(*dataset))
    assert zero.startswith(f"{json_file}: 2 of {total} boxes have zero width or height")
    assert "drops them from training" in zero and "missed" in zero
    assert negative.startswith(f"{json_file}: 1 of {total} boxes have a negative width")
    assert "flip" in negative and "[min(x, x + w), min(y, y + h), |w|, |h|]" in negative


def test_valid_boxes_do_not_warn(dataset):
    assert box_warnings(check_coco_dataset(*dataset)) == []


def test_non_contiguous_category_ids_warn_with_the_mapping(dataset):
    (warning,) = check_coco_dataset(*dataset).warnings
    assert warning.startswith(f"{dataset[0]}: the category ids ({CATEGORY_ID}) are not 1..1.")
    assert f"{CATEGORY_ID} ('{CLASS_NAME}') -> 0" in warning


def test_contiguous_category_ids_do_not_warn(dataset):
    def renumber(coco):
        coco["categories"] = [{"id": 2, "name": "b"}, {"id": 1, "name": "a"}]
        for annotation in coco["annotations"]:
            annotation["category_id"] = 2

    edit_json(dataset[0], renumber)
    summary = check_coco_dataset(*dataset)
    assert summary.warnings == ()
    assert summary.thing_classes == ("a", "b")  # in id order, as load_coco_json sets them


def warnings_with(summary, fragment):
    """The warnings of ``summary`` that contain ``fragment``."""
    return [w for w in summary.warnings if fragment in w]


def test_boxes_wholly_outside_their_image_warn_that_detectron2_drops_them(dataset):
    json_file = dataset[0]

    def outside(coco):
        annotations = coco["annotations"]
        width = coco["images"][0]["width"]
        annotations[0]["bbox"] = [width, 0, 10, 10]  # from the right edge on
        annotations[1]["bbox"] = [-20, 5, 20, 10]  # ends at the left edge
        annotations[2]["bbox"] = [-20, -20, 30, 30]  # partly inside: clipped, kept

    edit_json(json_file, outside)
    coco = read_json(json_file)
    (warning,) = warnings_with(check_coco_dataset(*dataset), "wholly outside")
    assert warning.startswith(f"{json_file}: 2 of {len(coco['annotations'])} boxes lie wholly")
    image = coco["images"][0]
    size = f"in image {image['id']} ({image['width']}x{image['height']})"
    assert f"e.g. {coco['annotations'][0]['bbox']} {size}, " in warning
    assert "drops these from training" in warning


def test_annotations_of_unlisted_images_warn_with_counts(dataset):
    json_file = dataset[0]

    def unlisted(coco):
        for annotation in coco["annotations"][:3]:
            annotation["image_id"] = 999
        coco["annotations"][3]["image_id"] = 998

    edit_json(json_file, unlisted)
    total = len(read_json(json_file)["annotations"])
    (warning,) = warnings_with(check_coco_dataset(*dataset), "does not list")
    assert warning.startswith(f"{json_file}: 4 of {total} annotations belong to 2 image ids")
    assert "e.g. 998, 999." in warning and "ignore these" in warning


def test_a_file_listed_as_several_images_warns_with_counts(dataset):
    json_file = dataset[0]

    def listed_twice(coco):
        first = coco["images"][0]["file_name"]
        coco["images"][1]["file_name"] = first
        coco["images"][2]["file_name"] = f"./{first}"  # the same file

    edit_json(json_file, listed_twice)
    first = read_json(json_file)["images"][0]["file_name"]
    (warning,) = warnings_with(check_coco_dataset(*dataset), "listed as")
    assert warning.startswith(f"{json_file}: 1 files are listed as 3 images, e.g. {first}.")


def test_file_names_leaving_the_image_folder_warn_with_counts(dataset):
    json_file, image_root = dataset
    name = read_json(json_file)["images"][0]["file_name"]
    outer = f"../{os.path.basename(image_root)}/{name}"  # the same picture, by way of ..
    edit_json(json_file, lambda coco: coco["images"][0].update(file_name=outer))
    (warning,) = warnings_with(check_coco_dataset(*dataset), "'..'")
    assert warning.startswith(f"{json_file}: 1 of {NUM_IMAGES} image file names leave the image")
    assert f"e.g. {outer}." in warning
