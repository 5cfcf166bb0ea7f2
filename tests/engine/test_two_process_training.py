"""Two gloo processes train a LazyConfig FCOS (Focal-EIoU) or RetinaNet (Wise-IoU v3), and a run
resumed from one of its checkpoints ends with the uninterrupted run's losses, weights, per-process
buffers (each process's own ``loss_normalizer`` and BatchNorm statistics), Wise-IoU v3's running
mean of 1 - IoU (one value, all-reduced) and COCO metrics; only the main process prunes
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
from focal_eiou_d2.layers import wiou_momentum
from focal_eiou_d2.lazy_config import use_box_loss
from focal_eiou_d2.modeling.box_loss import RUNNING_MEAN

pytestmark = pytest.mark.slow  # trains in spawned processes

# Each model with the box loss it trains with: the FCOS config's own (Focal-EIoU), and for RetinaNet
# Wise-IoU v3, whose running mean must be restored too (None: the config's loss).
MODELS = {
    "fcos_focal_eiou": ("configs/lazy/quickstart/fcos_R_18_FPN_shapes_focal_eiou.py", None),
    "retinanet_wiou_v3": (
        "configs/lazy/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.py",
        "wiou_v3",
    ),
}
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


def train(rank, init_file, root, folder, resume, result_file, model_name):
    """Train (or resume) the two-process run of ``MODELS[model_name]`` in ``folder``; save what
    each process ends with."""
    init_gloo(rank, 2, init_file)
    register_shapes(NAMES, MINI_SPEC, root)
    config_file, box_loss = MODELS[model_name]
    config = load_run_config(config_file, OPTS, output_dir=folder)
    if box_loss is not None:  # the paper's momentum rule over this training's length
        use_box_loss(config.cfg.model, box_loss, momentum=wiou_momentum(MAX_ITER))
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


@pytest.mark.parametrize("model_name", MODELS)
def test_two_processes_resume_exactly_and_only_the_main_one_prunes(model_name, tmp_path):
    root = str(tmp_path / "data")
    register_shapes(NAMES, MINI_SPEC, root)
    for name in NAMES:
        DatasetCatalog.get(name)  # generated once, before the processes read it
    first, second = tmp_path / "uninterrupted", tmp_path / "resumed"
    arguments = (str(tmp_path / "init1"), root, str(first), False, str(tmp_path / "a"), model_name)
    run_processes(train, arguments)
    kept = sorted(p.name for p in first.glob("model_*.pth"))
    assert kept == ["model_0000003.pth", "model_final.pth"]  # model_0000001 pruned
    assert len(list(first.glob("events.out.tfevents.*"))) == 1
    second.mkdir()
    shutil.copy(first / "model_0000003.pth", second)  # as if killed after iteration 3
    (second / "last_checkpoint").write_text("model_0000003.pth")
    arguments = (str(tmp_path / "init2"), root, str(second), True, str(tmp_path / "b"), model_name)
    run_processes(train, arguments)
    uninterrupted = [torch.load(f"{tmp_path}/a.{rank}") for rank in range(2)]
    resumed = [torch.load(f"{tmp_path}/b.{rank}") for rank in range(2)]
    assert [result["writers"] for result in uninterrupted] == [1, 0]
    assert [result["max_to_keep"] for result in uninterrupted] == [[1], [None]]
    assert sorted(resumed[0]["losses"]) == [4]
    assert resumed[0]["losses"][4] == uninterrupted[0]["losses"][4]
    normalizers = [result["state"]["loss_normalizer"] for result in uninterrupted]
    assert normalizers[0] != normalizers[1]  # the processes' buffers do differ
    if MODELS[model_name][1] == "wiou_v3":
        # All-reduced, so one value on both processes; moved from its start (1.0) by training,
        # and the resumed processes continue from the checkpoint's to the same value.
        means = [result["state"][RUNNING_MEAN].item() for result in uninterrupted]
        assert means[0] == means[1] != 1.0, means
        assert [result["state"][RUNNING_MEAN].item() for result in resumed] == means
    assert json.dumps(resumed[0]["results"]) == json.dumps(uninterrupted[0]["results"])  # NaN too
    for rank in range(2):
        for name, value in uninterrupted[rank]["state"].items():
            assert torch.equal(resumed[rank]["state"][name], value), (rank, name)
