"""train_net.py and lazy_train_net.py: Detectron2's project template (a copy with its own
evaluator uses it), no torch.jit FutureWarning at start, and every user error in one line
``<prog>: error: ...`` with exit status 1 and no traceback, from the launcher or from a training
process."""

import importlib.util
import os
import subprocess
import sys
import traceback

import pytest
import torch
from tiny_models import LAZY_SMOKE_OPTS, REPO, SMOKE_OPTS

from focal_eiou_d2.engine import OutputDirError
from focal_eiou_d2.tools.cli import TRACEBACK_VARIABLE, run_command
from focal_eiou_d2.tools.train_command import LAUNCH_RUNS_ON_CPU

CONFIG = "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"
LAZY_CONFIG = "configs/lazy/quickstart/fcos_R_18_FPN_shapes_focal_eiou.py"
ONE_ITERATION = [*SMOKE_OPTS, "SOLVER.MAX_ITER", "1"]
JIT_WARNING = "`torch.jit.script` is deprecated"

# An evaluator a user adds to their copy of train_net.py: it counts the images it is shown.
RECORDING_EVALUATOR = """

from detectron2.evaluation import DatasetEvaluator


class RecordingEvaluator(DatasetEvaluator):
    def reset(self):
        self.images = 0

    def process(self, inputs, outputs):
        self.images += len(inputs)

    def evaluate(self):
        return {"recorded": {"images": self.images}}
"""


def load_script(path, name):
    """Import the script at ``path`` as module ``name`` (its ``__main__`` block does not run)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def train_net():
    return load_script(REPO / "train_net.py", "train_net_under_test")


@pytest.fixture(scope="module")
def lazy_train_net():
    return load_script(REPO / "lazy_train_net.py", "lazy_train_net_under_test")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, train_net):
    """The output folder of a one-iteration training by train_net.py."""
    folder = tmp_path_factory.mktemp("train_net") / "run"
    train_net.invoke_main(["--config-file", CONFIG, *ONE_ITERATION, "OUTPUT_DIR", str(folder)])
    assert (folder / "model_final.pth").is_file()
    return folder


def error_line(module, prog, argv):
    """The line ``run_command`` exits with (a user error), as the script's ``__main__`` does."""
    with pytest.raises(SystemExit) as exited:
        run_command(prog, module.invoke_main, argv)
    line = exited.value.code
    assert isinstance(line, str), line  # sys.exit(str): the line on stderr, exit status 1
    assert line.startswith(f"{prog}: error: ") and "\n" not in line, line
    return line


@pytest.fixture(autouse=True)
def no_traceback_variable(monkeypatch):
    monkeypatch.delenv(TRACEBACK_VARIABLE, raising=False)


@pytest.mark.slow
def test_a_copy_of_train_net_uses_the_evaluator_of_its_trainer(tmp_path):
    source = (REPO / "train_net.py").read_text()
    call = "        return super().build_evaluator(cfg, dataset_name, output_folder)\n"
    assert call in source  # Trainer.build_evaluator, the place a user edits
    copy = tmp_path / "my_train_net.py"
    copy.write_text(
        source.replace(call, "        return RecordingEvaluator()\n") + RECORDING_EVALUATOR
    )
    module = load_script(copy, "my_train_net")
    args = module.parse_training_args(
        ["--num-gpus", "1", "--config-file", CONFIG, *ONE_ITERATION, "OUTPUT_DIR", str(tmp_path)]
    )
    results = module.main(args)
    from detectron2.data import DatasetCatalog

    assert results == {"recorded": {"images": len(DatasetCatalog.get("shapes_mini_val"))}}


@pytest.mark.slow
def test_commands_start_without_the_torch_jit_future_warning():
    command = [sys.executable, "-c", "import train_net, lazy_train_net"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert JIT_WARNING not in result.stderr


# (arguments after the config's, what the line says); {tmp}: a folder holding notes.pth, a text.
TRAIN_NET_ERRORS = [
    (["--eval-only", "MODEL.WEIGHTS", ""], "--eval-only needs weights: set MODEL.WEIGHTS"),
    (["--eval-only", "MODEL.WEIGHTS", "{tmp}/missing.pth"], "MODEL.WEIGHTS {tmp}/missing.pth not "),
    (["--eval-only", "MODEL.WEIGHTS", "{tmp}"], "MODEL.WEIGHTS {tmp} is a folder; name a "),
    (["--eval-only", "MODEL.WEIGHTS", "{tmp}/notes.pth"], "{tmp}/notes.pth is not a checkpoint"),
    (["--eval-only", "MODEL.WEIGHTS", "http://127.0.0.1:9/w.pth"], "cannot download MODEL.WEI"),
    (["MODEL.WEIGHTS", "{tmp}/missing.pth"], "MODEL.WEIGHTS {tmp}/missing.pth not found"),
    (["MODEL.WEIGHTS", "{tmp}/notes.pth"], "MODEL.WEIGHTS {tmp}/notes.pth is not a checkpoint"),
    (["MODEL.RETINANET.BBOX_REG_LOSS_TYPE", "foo"], "unknown box-regression loss 'foo'"),
    (["MODEL.FOCAL_EIOU.GAMMA", "-1.0"], "MODEL.FOCAL_EIOU.GAMMA = -1.0"),
    (["SOLVER.MAX_ITER", "0"], "SOLVER.MAX_ITER must be a positive number of iterations, got 0"),
    (["OUTPUT_DIR", "{tmp}/notes.pth/run"], "cannot use {tmp}/notes.pth/run as output folder"),
]


@pytest.mark.parametrize("arguments, expected", TRAIN_NET_ERRORS)
def test_a_user_error_is_one_line(arguments, expected, train_net, tmp_path, monkeypatch):
    for variable in ("http_proxy", "HTTP_PROXY"):  # the URL must fail here, not at a proxy
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "notes.pth").write_text("not weights\n")
    options = [item for item in arguments if item.startswith("--")]
    overrides = [item.format(tmp=tmp_path) for item in arguments if not item.startswith("--")]
    argv = [*options, "--config-file", CONFIG, *ONE_ITERATION]
    argv += ["OUTPUT_DIR", str(tmp_path / "run"), *overrides]
    assert expected.format(tmp=tmp_path) in error_line(train_net, "train_net.py", argv)


def test_an_unreadable_yaml_config_is_one_line(train_net, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("MODEL:\n  WEIGHTS: [unclosed\n SEED: 1\n")
    line = error_line(train_net, "train_net.py", ["--config-file", str(broken)])
    assert f"cannot read the config {broken}: " in line


def test_a_lazyconfig_max_iter_that_is_no_number_is_one_line(train_net, lazy_train_net, tmp_path):
    argv = ["--config-file", LAZY_CONFIG, f"train.output_dir={tmp_path}", "train.max_iter=abc"]
    expected = "train.max_iter must be a positive number of iterations, got 'abc'"
    assert expected in error_line(train_net, "train_net.py", argv)
    assert expected in error_line(lazy_train_net, "lazy_train_net.py", argv)


@pytest.mark.skipif(
    LAUNCH_RUNS_ON_CPU or torch.cuda.is_available(), reason="processes can start here"
)
def test_several_processes_without_cuda_on_detectron2_0_6_is_one_line(train_net, tmp_path):
    argv = ["--num-gpus", "2", "--config-file", CONFIG, "OUTPUT_DIR", str(tmp_path)]
    line = error_line(train_net, "train_net.py", argv)
    assert "--num-gpus 2 --num-machines 1 needs CUDA, which is unavailable" in line


@pytest.mark.slow
def test_eval_only_leaves_the_runs_config_untouched(train_net, finished_run):
    saved = finished_run / "config.yaml"
    before = saved.read_bytes(), saved.stat().st_mtime_ns
    results = finished_run / "inference" / "shapes_mini_val" / "coco_instances_results.json"
    results.unlink()
    weights = ["MODEL.WEIGHTS", str(finished_run / "model_final.pth")]
    argv = ["--eval-only", "--config-file", CONFIG, *ONE_ITERATION, *weights]
    train_net.invoke_main([*argv, "OUTPUT_DIR", str(finished_run)])
    assert results.is_file()
    assert (saved.read_bytes(), saved.stat().st_mtime_ns) == before


@pytest.mark.slow
def test_eval_only_refuses_the_folder_of_another_configs_run(train_net, finished_run):
    weights = ["MODEL.WEIGHTS", str(finished_run / "model_final.pth")]
    other = ["MODEL.FOCAL_EIOU.GAMMA", "0.7", "OUTPUT_DIR", str(finished_run)]
    argv = ["--eval-only", "--config-file", CONFIG, *ONE_ITERATION, *weights, *other]
    line = error_line(train_net, "train_net.py", argv)
    assert f"{finished_run} holds a run of a config that differs from this one" in line
    assert f"Evaluate into another folder, e.g. OUTPUT_DIR {finished_run}_eval" in line


@pytest.fixture(scope="module")
def finished_lazy_run(tmp_path_factory, train_net):
    """The output folder of a one-iteration training of the LazyConfig by train_net.py (handed
    over to lazy_train_net.py), and the command line that trained it."""
    folder = tmp_path_factory.mktemp("lazy_train_net") / "run"
    argv = ["--config-file", LAZY_CONFIG, *LAZY_SMOKE_OPTS, "train.max_iter=1"]
    argv.append(f"train.output_dir={folder}")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(REPO))  # as when run: lazy_train_net.py is beside it
        train_net.invoke_main(argv)
    return folder, argv


@pytest.mark.slow
def test_train_net_hands_a_lazyconfig_over_to_lazy_train_net(
    train_net, finished_lazy_run, monkeypatch
):
    monkeypatch.syspath_prepend(str(REPO))
    folder, argv = finished_lazy_run
    saved = folder / "config.yaml"
    before = saved.read_bytes(), saved.stat().st_mtime_ns
    # the run's own weights: the run's config, its saved config.yaml kept
    weights = f"train.init_checkpoint={folder / 'model_final.pth'}"
    train_net.invoke_main(["--eval-only", *argv, weights])
    assert (saved.read_bytes(), saved.stat().st_mtime_ns) == before


# What the one-line error says of a model of the shapes classes evaluated on the one-class data.
OTHER_CLASSES = (
    "was trained on the classes rectangle, frame, ellipse, ring, triangle, cross, star, but "
    "dataset 'shapes_1class_val' has 1: shape. Use a dataset of the model's classes"
)


@pytest.mark.slow
def test_eval_only_refuses_a_dataset_of_other_classes(train_net, finished_run, tmp_path):
    weights = str(finished_run / "model_final.pth")
    argv = ["--eval-only", "--config-file", CONFIG, *ONE_ITERATION, "MODEL.WEIGHTS", weights]
    argv += ["DATASETS.TEST", "('shapes_1class_val',)", "OUTPUT_DIR", str(tmp_path)]
    line = error_line(train_net, "train_net.py", argv)
    assert f"the model of {weights} {OTHER_CLASSES}" in line
    assert not (tmp_path / "inference").exists()  # refused before inference


@pytest.mark.slow
def test_lazy_eval_only_refuses_a_dataset_of_other_classes(
    lazy_train_net, finished_lazy_run, tmp_path
):
    folder, argv = finished_lazy_run
    weights = str(folder / "model_final.pth")
    argv = ["--eval-only", *argv, f"train.init_checkpoint={weights}"]
    argv += ["dataloader.test.dataset.names=shapes_1class_val", f"train.output_dir={tmp_path}"]
    line = error_line(lazy_train_net, "lazy_train_net.py", argv)
    assert f"the model of {weights} {OTHER_CLASSES}" in line
    assert not (tmp_path / "inference").exists()


def spawned_failure(error):
    """What Detectron2's ``launch`` raises when a spawned process raised ``error``."""
    try:
        raise error
    except type(error):
        text = traceback.format_exc()
    message = f"\n\n-- Process 1 terminated with the following error:\n{text}"
    return torch.multiprocessing.ProcessRaisedException(message, 1, os.getpid())


def raising(error):
    def main(argv):
        raise spawned_failure(error)

    return main


@pytest.mark.parametrize(
    "error, line",
    [
        (OutputDirError("out is in use by process 7"), "out is in use by process 7"),
        (KeyError("Non-existent key: SOLVER.MAX_ITERS"), "Non-existent key: SOLVER.MAX_ITERS"),
        (ValueError("gamma must be >= 0\nnot -1.0"), "gamma must be >= 0\nnot -1.0"),
    ],
)
def test_a_user_error_of_a_spawned_process_is_its_line(error, line):
    with pytest.raises(SystemExit) as exited:
        run_command("train_net.py", raising(error))
    assert exited.value.code == f"train_net.py: error: {line}"


def test_another_error_of_a_spawned_process_keeps_its_traceback():
    with pytest.raises(torch.multiprocessing.ProcessRaisedException, match="RuntimeError: bug"):
        run_command("train_net.py", raising(RuntimeError("bug")))


@pytest.mark.slow
@pytest.mark.skipif(
    not LAUNCH_RUNS_ON_CPU and torch.cuda.device_count() < 2,
    reason="Detectron2 0.6 starts several processes only on as many GPUs",
)
def test_a_user_error_in_a_training_process_is_one_line(tmp_path):
    command = [sys.executable, "train_net.py", "--num-gpus", "2", "--config-file", LAZY_CONFIG]
    command += [*LAZY_SMOKE_OPTS, "train.max_iter=1", f"train.output_dir={tmp_path}"]
    command += ["model.box_loss.params.gamma=-1.0"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    last = result.stderr.rstrip().splitlines()[-1]
    assert last.startswith("train_net.py: error: focal_eiou: gamma must be a finite number >= 0")
    assert "Traceback" not in result.stderr


def test_a_yaml_config_on_several_cpu_processes_is_one_line(train_net, tmp_path):
    argv = ["--num-gpus", "2", "--config-file", CONFIG, "MODEL.DEVICE", "cpu"]
    line = error_line(train_net, "train_net.py", [*argv, "OUTPUT_DIR", str(tmp_path)])
    assert "needs CUDA, which is unavailable" in line or "a YAML config trains several" in line


@pytest.mark.slow
def test_a_machine_that_does_not_claim_the_folder_refuses_what_the_first_refuses(
    finished_lazy_run, monkeypatch
):
    """Machines other than the first check the output folder too, before they start, so that a
    refusal stops them instead of leaving them at the rendezvous."""
    from focal_eiou_d2.tools import train_command

    folder, argv = finished_lazy_run
    monkeypatch.setattr(train_command, "check_process_count", lambda *counts: None)
    argv = ["--num-machines", "2", "--machine-rank", "1", *argv, "train.seed=7"]  # another config
    with pytest.raises(OutputDirError, match="holds a run of another config"):
        train_command.check_before_launch(train_command.parse_training_args(argv))
