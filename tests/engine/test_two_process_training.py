"""Two gloo processes train a LazyConfig FCOS, and a run resumed from one of its checkpoints ends
with the uninterrupted run's losses, weights, per-process buffers (each process's own
``loss_normalizer`` and BatchNorm statistics) and COCO metrics; only the main process prunes
checkpoints and builds log writers."""

import json
import shutil
from unittest import mock

import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.engine import hooks
from gloo_processes import finish_gloo, init_gloo, run_processes
from tiny_models import LAZY_SMOKE_OPTS

from focal_eiou_d2.data import MINI_SPEC, register_shapes
from focal_eiou_d2.engine import lazy_trainer, load_run_config

pytestmark = pytest.mark.slow  # trains in spawned processes

CONFIG = "configs/lazy/quickstart/fcos_R_18_FPN_shapes_focal_eiou.py"
NAMES = ("two_process_train", "two_process_val")
MAX_ITER = 5
OPTS = LAZY_SMOKE_OPTS + [
    f"dataloader.train.dataset.names={NAMES[0]}",
    "dataloader.train.total_batch_size=4",  # 2 images per process (BatchNorm needs 2)
    f"train.max_iter={MAX_ITER}",
    "train.checkpointer.period=2",
    "train.checkpointer.max_to_keep=1",
    "train.eval_period=0",  # evaluates after the last iteration only
    f"dataloader.test.dataset.names={NAMES[1]}",
    f"dataloader.evaluator.dataset_name={NAMES[1]}",
]


def train(rank, init_file, root, folder, resume, result_file):
    """Train (or resume) the two-process run in ``folder``; save what each process ends with."""
    init_gloo(rank, 2, init_file)
    register_shapes(NAMES, MINI_SPEC, root)
    config = load_run_config(CONFIG, OPTS, output_dir=folder)
    torch.manual_seed(0)
    with mock.patch.object(
        lazy_trainer, "default_writers", wraps=lazy_trainer.default_writers
    ) as writers:
        trainer = config.build_trainer()
    trainer.resume_or_load(resume=resume)
    results = trainer.train()
    model = trainer.model.module
    history = trainer.storage.history("total_loss").values() if rank == 0 else []
    torch.save(
        {
            "losses": {iteration: loss for loss, iteration in history},
            "results": results,
            "state": {name: value.clone() for name, value in model.state_dict().items()},
            "writers": writers.call_count,
            "max_to_keep": [
                hook.max_to_keep
                for hook in trainer._hooks
                if isinstance(hook, hooks.PeriodicCheckpointer)
            ],
        },
        f"{result_file}.{rank}",
    )
    finish_gloo()


def test_two_processes_resume_exactly_and_only_the_main_one_prunes(tmp_path):
    root = str(tmp_path / "data")
    register_shapes(NAMES, MINI_SPEC, root)
    for name in NAMES:
        DatasetCatalog.get(name)  # generated once, before the processes read it
    first, second = tmp_path / "uninterrupted", tmp_path / "resumed"
    run_processes(train, (str(tmp_path / "init1"), root, str(first), False, str(tmp_path / "a")))
    kept = sorted(p.name for p in first.glob("model_*.pth"))
    assert kept == ["model_0000003.pth", "model_final.pth"]  # model_0000001 pruned
    assert len(list(first.glob("events.out.tfevents.*"))) == 1
    second.mkdir()
    shutil.copy(first / "model_0000003.pth", second)  # as if killed after iteration 3
    (second / "last_checkpoint").write_text("model_0000003.pth")
    run_processes(train, (str(tmp_path / "init2"), root, str(second), True, str(tmp_path / "b")))
    uninterrupted = [torch.load(f"{tmp_path}/a.{rank}") for rank in range(2)]
    resumed = [torch.load(f"{tmp_path}/b.{rank}") for rank in range(2)]
    assert [result["writers"] for result in uninterrupted] == [1, 0]
    assert [result["max_to_keep"] for result in uninterrupted] == [[1], [None]]
    assert sorted(resumed[0]["losses"]) == [4]
    assert resumed[0]["losses"][4] == uninterrupted[0]["losses"][4]
    normalizers = [result["state"]["loss_normalizer"] for result in uninterrupted]
    assert normalizers[0] != normalizers[1]  # the processes' buffers do differ
    assert json.dumps(resumed[0]["results"]) == json.dumps(uninterrupted[0]["results"])  # NaN too
    for rank in range(2):
        for name, value in uninterrupted[rank]["state"].items():
            assert torch.equal(resumed[rank]["state"][name], value), (rank, name)
