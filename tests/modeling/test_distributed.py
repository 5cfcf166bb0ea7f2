"""Eq. 11 covers the global batch: two gloo processes give the single-process loss and gradient,
for RetinaNet and FCOS. On Detectron2 main the processes are started by its ``launch`` (gloo
without CUDA); 0.6's ``launch`` needs CUDA for two processes, so they are spawned directly."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.engine import launch
from detectron2.modeling.meta_arch.fcos import FCOS
from detectron2.structures import Boxes
from detectron2.utils import comm
from detectron2.utils.events import EventStorage
from tiny_models import build_tiny_model

# Two images sharing 4 anchors; image 0 has 3 positives, image 1 has 1 (unequal splits matter).
ANCHORS = torch.tensor([[10.0, 10, 50, 40], [30, 20, 90, 100], [0, 0, 32, 32], [60, 60, 80, 120]])
TARGETS = torch.tensor(
    [
        [[12.0, 8, 55, 45], [25, 30, 95, 90], [4, 2, 30, 36], [0, 0, 1, 1]],
        [[0.0, 0, 1, 1], [28, 25, 80, 110], [0, 0, 1, 1], [0, 0, 1, 1]],
    ]
)
POSITIVE = torch.tensor([[True, True, True, False], [False, True, False, False]])
DELTAS = torch.linspace(-0.3, 0.3, 32).reshape(2, 4, 4)
# Detectron2 main's launch falls back to gloo without CUDA; 0.6's asserts CUDA.
LAUNCH_RUNS_ON_CPU = hasattr(comm, "create_local_process_group")
LOSS_KEY = {"retinanet": "loss_box_reg", "fcos": "loss_fcos_loc"}
# FCOS.losses takes the matched boxes as Boxes on Detectron2 0.6, as tensors on main.
FCOS_TAKES_BOXES = hasattr(FCOS, "match_anchors")


def box_loss_and_grad(architecture, images):
    """The box loss of ``images`` through the model's ``losses`` and its gradient w.r.t. their
    deltas."""
    model = build_tiny_model(architecture, "focal_eiou")
    deltas = DELTAS[images].clone().requires_grad_(True)
    labels = [torch.where(POSITIVE[i], 0, model.num_classes) for i in images]
    logits = [torch.zeros(len(images), 4, model.num_classes)]
    targets = [TARGETS[i] for i in images]
    if architecture == "fcos" and FCOS_TAKES_BOXES:
        targets = [Boxes(t) for t in targets]
    extra = [[torch.zeros(len(images), 4, 1)]] if architecture == "fcos" else []
    with EventStorage(0):
        losses = model.losses([Boxes(ANCHORS)], logits, labels, [deltas], targets, *extra)
    losses[LOSS_KEY[architecture]].backward()
    return losses[LOSS_KEY[architecture]].detach(), deltas.grad


def launched_worker(architecture, result_file):
    loss, grad = box_loss_and_grad(architecture, [comm.get_rank()])
    torch.save({"loss": loss, "grad": grad}, f"{result_file}.{comm.get_rank()}")
    comm.synchronize()  # no rank tears gloo down while the other still uses it (a rare SIGABRT)


def spawned_worker(rank, architecture, init_file, result_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    launched_worker(architecture, result_file)
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["retinanet", "fcos"])
def test_two_processes_match_one(architecture, tmp_path):
    result_file = str(tmp_path / "result")
    if LAUNCH_RUNS_ON_CPU:
        launch(launched_worker, 2, dist_url="auto", args=(architecture, result_file))
    else:
        init = str(tmp_path / "init")
        mp.spawn(spawned_worker, args=(architecture, init, result_file), nprocs=2)
    parts = [torch.load(f"{result_file}.{rank}") for rank in range(2)]
    loss, grad = box_loss_and_grad(architecture, [0, 1])
    # Detectron2 averages logged losses over workers, DDP averages gradients over workers.
    torch.testing.assert_close((parts[0]["loss"] + parts[1]["loss"]) / 2, loss)
    averaged_grad = torch.cat([parts[0]["grad"], parts[1]["grad"]]) / 2
    torch.testing.assert_close(averaged_grad, grad)
    assert grad.abs().sum() > 0
