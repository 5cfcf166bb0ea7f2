"""An output folder belongs to one run at a time and to one config."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from tiny_models import REPO

from focal_eiou_d2.engine import OutputDirError, claim_output_dir, load_run_config
from focal_eiou_d2.engine.run_dir import run_classes

CONFIG = "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"


def config(folder, *opts):
    return load_run_config(CONFIG, list(opts), output_dir=str(folder))


def hold_lock(folder):
    """A process that claims ``folder`` and waits; returns it once it holds the lock."""
    code = (
        "import sys, time\n"
        "from focal_eiou_d2.engine import claim_output_dir, load_run_config\n"
        f"claim_output_dir(load_run_config({CONFIG!r}, output_dir={str(folder)!r}))\n"
        "print('holding', flush=True)\n"
        "time.sleep(600)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_second_process_is_refused_until_the_first_is_gone(tmp_path):
    holder = hold_lock(tmp_path / "run")
    try:
        with pytest.raises(OutputDirError, match=f"in use by process {holder.pid}"):
            claim_output_dir(config(tmp_path / "run"))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    time.sleep(0.1)
    assert claim_output_dir(config(tmp_path / "run")) is True  # the killed run's config


def test_another_config_never_overwrites_a_run(tmp_path):
    folder = tmp_path / "run"
    assert claim_output_dir(config(folder)) is False
    (folder / "model_final.pth").write_bytes(b"weights")
    (folder / "notes.txt").write_text("not a run file")
    other = config(folder, "SOLVER.MAX_ITER", "7")
    with pytest.raises(OutputDirError, match="holds a run of another config.*--force"):
        claim_output_dir(other)
    assert (folder / "model_final.pth").read_bytes() == b"weights"
    assert claim_output_dir(config(folder)) is True  # the run's own config may resume it
    assert claim_output_dir(other, force=True) is False
    assert sorted(os.listdir(folder)) == [".lock", "notes.txt", "run.json"]


def test_logs_of_a_run_that_never_trained_are_taken_over(tmp_path):
    folder = tmp_path / "run"
    claim_output_dir(config(folder))
    (folder / "log.txt").write_text("crashed before the first checkpoint")
    assert claim_output_dir(config(folder, "SOLVER.MAX_ITER", "7")) is False


def test_foreign_run_files_count_as_another_config(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "last_checkpoint").write_text("model_0000099.pth")
    with pytest.raises(OutputDirError, match="files of a run this tool did not start"):
        claim_output_dir(config(folder))


def test_the_run_records_its_classes(tmp_path):
    folder = tmp_path / "run"
    claim_output_dir(config(folder), classes=["a", "b"])
    assert json.loads((folder / "run.json").read_text())["classes"] == ["a", "b"]
    assert run_classes(str(folder / "model_final.pth")) == ["a", "b"]
    assert run_classes(str(tmp_path / "elsewhere" / "model.pth")) is None


def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OutputDirError, match="cannot use .*file/run as output folder"):
        claim_output_dir(config(tmp_path / "file" / "run"))
