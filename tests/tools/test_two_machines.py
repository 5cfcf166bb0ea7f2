"""Two machines, tested on one host: ``train_net.py --num-machines 2 --machine-rank 0|1
--dist-url tcp://127.0.0.1:PORT`` as two commands (gloo, CPU) train a LazyConfig FCOS, write its
checkpoints once, evaluate, and resume.

Detectron2 0.6's ``launch`` starts several processes only on GPUs, so this runs on its git main."""

import socket
import subprocess
import sys

import pytest
from tiny_models import LAZY_SMOKE_OPTS, REPO

from focal_eiou_d2.tools.train_command import LAUNCH_RUNS_ON_CPU

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not LAUNCH_RUNS_ON_CPU, reason="Detectron2 0.6's launch needs CUDA for several processes"
    ),
]

CONFIG = "configs/lazy/quickstart/fcos_R_18_FPN_shapes_focal_eiou.py"
OPTS = [
    *LAZY_SMOKE_OPTS,
    "dataloader.train.total_batch_size=4",  # 2 images per machine (BatchNorm needs 2)
    "train.max_iter=2",
    "train.checkpointer.period=1",
    "train.eval_period=0",  # evaluates after the last iteration
]
TIMEOUT = 240


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_both_machines(folder, *options):
    """Start the two machines' commands together; return their CompletedProcess-like results."""
    url = f"tcp://127.0.0.1:{free_port()}"
    commands = [
        [sys.executable, "train_net.py", "--num-machines", "2", "--machine-rank", str(rank)]
        + ["--dist-url", url, *options, "--config-file", CONFIG, *OPTS]
        + [f"train.output_dir={folder}"]
        for rank in (0, 1)
    ]
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


def test_two_machine_commands_train_checkpoint_once_evaluate_and_resume(tmp_path):
    folder = tmp_path / "run"
    for returncode, output in run_both_machines(folder):
        assert returncode == 0, output[-3000:]
    checkpoints = sorted(path.name for path in folder.glob("model_*"))
    assert checkpoints == ["model_0000000.pth", "model_0000001.pth", "model_final.pth"]
    assert not list(folder.glob("*.partial"))
    assert (folder / "inference").is_dir()  # evaluated
    for returncode, output in run_both_machines(folder, "--resume"):
        assert returncode == 0, output[-3000:]
    assert sorted(path.name for path in folder.glob("model_*")) == checkpoints
