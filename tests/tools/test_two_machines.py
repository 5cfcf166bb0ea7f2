"""Two machines, tested on one host: ``train_net.py --num-machines 2 --machine-rank 0|1
--dist-url tcp://127.0.0.1:PORT`` as two commands (gloo, CPU) train a LazyConfig FCOS or
RetinaNet, write its checkpoints once, evaluate, and resume; when only machine 0 starts, it fails
after ``--dist-timeout`` with one line that says so.

Detectron2 0.6's ``launch`` starts several processes only on GPUs, so this runs on its git main."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from tiny_models import LAZY_SMOKE_OPTS, REPO

from focal_eiou_d2.tools.train_command import LAUNCH_RUNS_ON_CPU

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not LAUNCH_RUNS_ON_CPU, reason="Detectron2 0.6's launch needs CUDA for several processes"
    ),
]

CONFIGS = {
    "fcos": "configs/lazy/quickstart/fcos_R_18_FPN_shapes_focal_eiou.py",
    "retinanet": "configs/lazy/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.py",
}
OPTS = [
    *LAZY_SMOKE_OPTS,
    "dataloader.train.total_batch_size=4",  # 2 images per machine (BatchNorm needs 2)
    "train.max_iter=2",
    "train.checkpointer.period=1",
    "train.eval_period=0",  # evaluates after the last iteration
]
TIMEOUT = 240
# A machine alone at the rendezvous: how long it waits for the other (--dist-timeout, minutes), and
# the most it may take to start, wait and fail.
ALONE_DIST_TIMEOUT = "0.1"
ALONE_LIMIT = 60


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def machine_command(rank, url, config, folder, *options):
    """The command line of machine ``rank`` of 2, training ``config`` into ``folder``."""
    return (
        [sys.executable, "train_net.py", "--num-machines", "2", "--machine-rank", str(rank)]
        + ["--dist-url", url, *options, "--config-file", config, *OPTS]
        + [f"train.output_dir={folder}"]
    )


def run_both_machines(config, folder, *options):
    """Start the two machines' commands together; return their (exit status, output) pairs."""
    url = f"tcp://127.0.0.1:{free_port()}"
    commands = [machine_command(rank, url, config, folder, *options) for rank in (0, 1)]
    processes = [
        subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for command in commands
    ]
    outputs = []
    try:
        for process in processes:
            outputs.append((process.wait(timeout=TIMEOUT), process.stdout.read().decode()))
    finally:
        for process in processes:
            process.kill()
    return outputs


@pytest.mark.parametrize("model", CONFIGS)
def test_two_machine_commands_train_checkpoint_once_evaluate_and_resume(model, tmp_path):
    folder = tmp_path / "run"
    for returncode, output in run_both_machines(CONFIGS[model], folder):
        assert returncode == 0, output[-3000:]
    checkpoints = sorted(path.name for path in folder.glob("model_*"))
    assert checkpoints == ["model_0000000.pth", "model_0000001.pth", "model_final.pth"]
    assert not list(folder.glob("*.partial"))
    assert (folder / "inference").is_dir()  # evaluated
    for returncode, output in run_both_machines(CONFIGS[model], folder, "--resume"):
        assert returncode == 0, output[-3000:]
    assert sorted(path.name for path in folder.glob("model_*")) == checkpoints


def test_a_machine_that_never_starts_fails_the_other_after_the_dist_timeout(tmp_path):
    """Only machine 0 of 2 starts: it waits for machine 1 at the rendezvous for --dist-timeout
    (6 s here, not Detectron2's 30 minutes), then exits with one line naming the timeout."""
    url = f"tcp://127.0.0.1:{free_port()}"
    timeout = ["--dist-timeout", ALONE_DIST_TIMEOUT]
    command = machine_command(0, url, CONFIGS["retinanet"], tmp_path / "run", *timeout)
    started = time.monotonic()
    # In a session of its own: the launcher and the process it spawned are killed together.
    process = subprocess.Popen(
        command, cwd=REPO, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, stderr = process.communicate(timeout=ALONE_LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"machine 0 alone still waited after {ALONE_LIMIT} s")
    elapsed = time.monotonic() - started
    assert process.returncode == 1, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    line = stderr.rstrip().splitlines()[-1]
    assert line.startswith(f"train_net.py: error: not every machine joined the run at {url} "), line
    assert f"within --dist-timeout {ALONE_DIST_TIMEOUT} minutes (machine 0 of 2; " in line
    assert "torch.distributed: " in line  # torch's own words follow
    assert "--machine-rank 0 to 1" in line and line.endswith("--dist-timeout MINUTES")
    assert elapsed < ALONE_LIMIT
    assert not list((tmp_path / "run").glob("model_*"))
