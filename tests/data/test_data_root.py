"""Where datasets live: $DETECTRON2_DATASETS, else the project's datasets/, never the cwd."""

import os
import subprocess
import sys

from tiny_models import REPO

from focal_eiou_d2.data import datasets_root, default_root, root

SHAPES_VAL_JSON = (
    "import focal_eiou_d2.data; from detectron2.data import MetadataCatalog; "
    "print(MetadataCatalog.get('shapes_val').json_file)"
)


def test_default_is_the_checkouts_datasets_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("DETECTRON2_DATASETS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert datasets_root() == str(REPO / "datasets")
    assert default_root() == str(REPO / "datasets" / "focal_eiou_shapes")


def test_environment_variable_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DETECTRON2_DATASETS", "mine")
    assert default_root() == str(tmp_path / "mine" / "focal_eiou_shapes")
    monkeypatch.setenv("DETECTRON2_DATASETS", "")  # empty: as if unset
    assert datasets_root() == str(REPO / "datasets")


def test_installed_copy_uses_the_user_cache(tmp_path, monkeypatch):
    site_packages = tmp_path / "site-packages"
    (site_packages / "focal_eiou_d2").mkdir(parents=True)
    monkeypatch.setattr(root, "PACKAGE_DIR", str(site_packages / "focal_eiou_d2"))
    monkeypatch.delenv("DETECTRON2_DATASETS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert root.checkout_dir() is None
    assert datasets_root() == str(tmp_path / "cache" / "focal_eiou_d2" / "datasets")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets_root() == str(tmp_path / "home" / ".cache" / "focal_eiou_d2" / "datasets")


def test_run_from_another_folder_uses_the_same_place(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DETECTRON2_DATASETS"}
    result = subprocess.run(
        [sys.executable, "-c", SHAPES_VAL_JSON],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    json_file = result.stdout.strip().splitlines()[-1]
    assert json_file.startswith(str(REPO / "datasets" / "focal_eiou_shapes") + os.sep)
    assert os.listdir(tmp_path) == []
