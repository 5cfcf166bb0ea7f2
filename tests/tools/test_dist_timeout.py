"""``--dist-timeout MINUTES`` of train_net.py and lazy_train_net.py: Detectron2's 30 minutes by
default, refused before any work unless a finite number > 0, given to Detectron2's ``launch``;
a process that fails to join the others at the rendezvous is one line naming the timeout.

The launch itself is replaced here (no process starts); tests/tools/test_two_machines.py starts
only machine 0 of 2 on Detectron2 main and sees it fail after the timeout."""

import datetime
import importlib.util
import os
import traceback

import pytest
import torch
import torch.distributed as dist
from detectron2.engine.launch import DEFAULT_TIMEOUT
from tiny_models import REPO

from focal_eiou_d2.tools.cli import TRACEBACK_VARIABLE, run_command
from focal_eiou_d2.tools.train_command import dist_timeout, parse_training_args

LAZY_CONFIG = "configs/lazy/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.py"
URL = "tcp://10.0.0.1:29500"
MACHINE_0_OF_2 = ["--num-machines", "2", "--machine-rank", "0", "--dist-url", URL]
STORE_TIMEOUT = "Timed out after 361 seconds waiting for clients. 1/2 clients joined."


def load_script(name):
    """Import the script ``name`` of the repository (its ``__main__`` block does not run)."""
    spec = importlib.util.spec_from_file_location(f"{name}_dist_timeout", REPO / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=["train_net", "lazy_train_net"])
def script(request):
    return request.param, load_script(request.param)


@pytest.fixture(autouse=True)
def no_traceback_variable(monkeypatch):
    monkeypatch.delenv(TRACEBACK_VARIABLE, raising=False)


def spawned_failure(raise_error):
    """What Detectron2's ``launch`` raises when a spawned process failed in ``raise_error()``."""
    try:
        raise_error()
    except Exception:
        text = traceback.format_exc()
    message = f"\n\n-- Process 0 terminated with the following error:\n{text}"
    return torch.multiprocessing.ProcessRaisedException(message, 0, os.getpid())


def init_process_group():
    """Fails as torch's store does when a machine never joins (named as the frame it fails in)."""
    raise dist.DistStoreError(STORE_TIMEOUT)


def launched(script, monkeypatch, argv, failure=None):
    """Run ``script``'s command line ``argv`` (checks skipped) as its ``__main__`` does; return the
    keyword arguments its ``launch`` got, and the exit line (None: no exit)."""
    name, module = script
    calls = []

    def launch(*args, **kwargs):
        calls.append(kwargs)
        if failure is not None:
            raise failure

    monkeypatch.setattr(module, "check_before_launch", lambda args: None)
    monkeypatch.setattr(module, "launch", launch)
    line = None
    try:
        run_command(f"{name}.py", module.invoke_main, [*argv, "--config-file", LAZY_CONFIG])
    except SystemExit as exited:
        line = exited.code
    assert len(calls) == 1
    return calls[0], line


def test_the_default_is_detectron2s_timeout():
    args = parse_training_args(["--config-file", LAZY_CONFIG])
    assert args.dist_timeout == 30 and dist_timeout(args) == DEFAULT_TIMEOUT


@pytest.mark.parametrize("minutes", ["0", "-1", "nan", "inf", "1e300", "1e-12"])
def test_a_dist_timeout_that_is_no_positive_number_is_refused_before_any_work(
    minutes, capsys, monkeypatch
):
    from focal_eiou_d2.tools import train_command

    monkeypatch.setattr(train_command, "resolve_config_file", pytest.fail)  # nothing is read
    with pytest.raises(SystemExit) as exited:
        parse_training_args(["--dist-timeout", minutes, "--config-file", LAZY_CONFIG])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    if minutes == "1e-12":  # above 0, but no time as a timedelta
        assert "error: --dist-timeout 1e-12 minutes rounds to no time at all" in error
    else:
        wanted = "must be a number of minutes above 0 and at most 1e+09"
        assert f"error: --dist-timeout {wanted}, got {float(minutes):g}" in error


def test_launch_gets_the_dist_timeout(script, monkeypatch):
    kwargs, line = launched(script, monkeypatch, [*MACHINE_0_OF_2, "--dist-timeout", "0.5"])
    assert line is None
    assert kwargs["timeout"] == datetime.timedelta(seconds=30)
    kwargs, _ = launched(script, monkeypatch, MACHINE_0_OF_2)
    assert kwargs["timeout"] == DEFAULT_TIMEOUT


def test_a_machine_that_does_not_join_is_one_line_naming_the_timeout(script, monkeypatch):
    name, _ = script
    failure = spawned_failure(init_process_group)
    _, line = launched(script, monkeypatch, [*MACHINE_0_OF_2, "--dist-timeout", "6"], failure)
    assert isinstance(line, str) and "\n" not in line, line
    assert line.startswith(
        f"{name}.py: error: not every machine joined the run at {URL} within --dist-timeout 6 "
        f"minutes (machine 0 of 2; torch.distributed: {STORE_TIMEOUT}); probably a machine did "
        "not start"
    ), line
    assert line.endswith("or allow more time with --dist-timeout MINUTES")


def test_a_rendezvous_address_in_use_is_one_line_about_the_address(script, monkeypatch):
    def init_process_group():
        raise dist.DistNetworkError("The server socket has failed to listen: EADDRINUSE")

    failure = spawned_failure(init_process_group)
    _, line = launched(script, monkeypatch, MACHINE_0_OF_2, failure)
    assert f"the processes could not meet at --dist-url {URL} (machine 0 of 2; " in line
    assert "EADDRINUSE" in line and "timeout" not in line


def test_a_store_error_after_the_rendezvous_keeps_its_traceback(script, monkeypatch):
    def train():
        raise dist.DistStoreError(STORE_TIMEOUT)

    with pytest.raises(torch.multiprocessing.ProcessRaisedException, match="DistStoreError"):
        launched(script, monkeypatch, MACHINE_0_OF_2, spawned_failure(train))
