"""Work folders of killed generations are removed by the next one; live or foreign ones are kept."""

import os
import socket
import subprocess
import sys
import time

from focal_eiou_d2.data import ShapesSpec, generate_shapes
from focal_eiou_d2.data.staging import OLD, STAGING, make_work_dir, stale_work_dirs

# Generates a dataset far too large to finish before the test kills the process.
GENERATE = (
    "import sys; from focal_eiou_d2.data import ShapesSpec, generate_shapes; "
    "generate_shapes(sys.argv[1], ShapesSpec(5000, 1, image_size=64))"
)
SMALL = ShapesSpec(2, 1, image_size=64)


def hidden_folders(top):
    """Paths of hidden folders anywhere under ``top``."""
    return [
        os.path.join(parent, name)
        for parent, folders, _ in os.walk(top)
        for name in folders
        if name.startswith(".")
    ]


def pid_of_finished_process():
    """The id of a process that has exited and been reaped."""
    result = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(result.stdout)


def wait_for_staged_image(top, proc, timeout=120):
    """Waits until a hidden folder under ``top`` holds an image file; fails if ``proc`` ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the generation ended before it could be killed"
        for folder in hidden_folders(top):
            if any(name.endswith(".png") for _, _, names in os.walk(folder) for name in names):
                return
        time.sleep(0.02)
    raise AssertionError("no staged image appeared")


def test_killed_generation_is_cleaned_up_by_the_next(tmp_path):
    directory = tmp_path / "d"
    proc = subprocess.Popen(
        [sys.executable, "-c", GENERATE, str(directory)], stderr=subprocess.DEVNULL
    )
    try:
        wait_for_staged_image(tmp_path, proc)
    finally:
        proc.kill()
        proc.wait()
    assert hidden_folders(tmp_path), "the kill left no staging folder"
    generate_shapes(str(directory), SMALL)
    assert hidden_folders(tmp_path) == []
    assert sorted(os.listdir(directory)) == ["train", "val"]


def test_work_folders_of_live_processes_and_other_hosts_are_kept(tmp_path):
    mine = make_work_dir(str(tmp_path), "train", STAGING)
    dead_pid = pid_of_finished_process()
    host = socket.gethostname()
    dead = tmp_path / f".val.x1y2.{OLD}-{dead_pid}@{host}"
    elsewhere = tmp_path / f".val.x1y2.{STAGING}-{dead_pid}@not-{host}"
    user = tmp_path / ".val.staging"  # not a name the project makes
    for folder in (dead, elsewhere, user):
        folder.mkdir()
    assert stale_work_dirs(str(tmp_path)) == [str(dead)]
    generate_shapes(str(tmp_path), SMALL)
    assert sorted(os.listdir(tmp_path)) == sorted(
        [os.path.basename(mine), elsewhere.name, user.name, "train", "val"]
    )
