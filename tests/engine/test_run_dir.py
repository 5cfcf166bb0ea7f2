"""An output folder belongs to one run at a time and to one config."""

import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from unittest import mock

import pytest
from tiny_models import REPO

from focal_eiou_d2.engine import OutputDirError, claim_output_dir, load_run_config
from focal_eiou_d2.engine.run_dir import OWNER_FILE, run_classes

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


def no_flock(code):
    """``fcntl.flock`` as a filesystem without locks answers it."""
    return mock.patch("fcntl.flock", side_effect=OSError(code, os.strerror(code)))


def write_owner(folder, host, pid):
    folder.mkdir(parents=True, exist_ok=True)
    owner = {"host": host, "pid": pid, "started": "2026-12-01T10:00:00", "command": "train_net.py"}
    (folder / OWNER_FILE).write_text(json.dumps(owner))


@pytest.mark.parametrize("code", [errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP])
def test_without_flock_an_owner_file_claims_the_folder(tmp_path, caplog, code):
    folder = tmp_path / "run"
    with no_flock(code), caplog.at_level(logging.WARNING):
        assert claim_output_dir(config(folder)) is False
    assert "cannot lock files" in caplog.text and os.strerror(code) in caplog.text
    owner = json.loads((folder / OWNER_FILE).read_text())
    assert (owner["host"], owner["pid"]) == (socket.gethostname(), os.getpid())


def test_another_flock_error_is_reported_not_taken_for_a_filesystem_without_locks(tmp_path):
    folder = tmp_path / "run"
    refused = pytest.raises(OutputDirError, match=r"cannot lock .*\(Input/output error\)")
    with no_flock(errno.EIO), refused:
        claim_output_dir(config(folder))
    assert not (folder / OWNER_FILE).exists()


def test_without_flock_a_live_owner_on_this_host_is_refused(tmp_path):
    folder = tmp_path / "run"
    write_owner(folder, socket.gethostname(), os.getppid())  # a live process
    with no_flock(errno.ENOLCK), pytest.raises(
        OutputDirError, match=f"in use by process {os.getppid()} on host {socket.gethostname()}"
    ):
        claim_output_dir(config(folder))


def test_without_flock_another_hosts_owner_is_never_stale(tmp_path):
    folder = tmp_path / "run"
    write_owner(folder, "node-17.cluster", 4242)
    with no_flock(errno.ENOSYS), pytest.raises(
        OutputDirError, match=f"process 4242 on host node-17.cluster .*delete .*{OWNER_FILE}"
    ):
        claim_output_dir(config(folder))


def test_without_flock_a_dead_owner_on_this_host_is_taken_over(tmp_path, caplog):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid no longer exists
    folder = tmp_path / "run"
    write_owner(folder, socket.gethostname(), gone.pid)
    with no_flock(errno.ENOLCK), caplog.at_level(logging.WARNING):
        claim_output_dir(config(folder))
    assert f"from process {gone.pid} of this host" in caplog.text
    assert json.loads((folder / OWNER_FILE).read_text())["pid"] == os.getpid()


def test_without_flock_the_owner_file_is_released_at_exit(tmp_path):
    folder = tmp_path / "run"
    code = (
        "import errno, os\n"
        "from unittest import mock\n"
        "from focal_eiou_d2.engine import claim_output_dir, load_run_config\n"
        "with mock.patch('fcntl.flock', side_effect=OSError(errno.ENOLCK, 'No locks')):\n"
        f"    claim_output_dir(load_run_config({CONFIG!r}, output_dir={str(folder)!r}))\n"
        f"assert os.path.exists({str(folder / OWNER_FILE)!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
    assert (folder / "run.json").exists() and not (folder / OWNER_FILE).exists()
