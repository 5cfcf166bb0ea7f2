"""Eq. 11 covers the global batch: two gloo processes give the single-process loss and gradient."""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.structures import Boxes
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


def box_loss_and_grad(model, images):
    """loss_box_reg of RetinaNet.losses on ``images`` and its gradient w.r.t. their deltas."""
    deltas = DELTAS[images].clone().requires_grad_(True)
    labels = [torch.where(POSITIVE[i], 0, model.num_classes) for i in images]
    logits = [torch.zeros(len(images), 4, model.num_classes)]
    with EventStorage(0):
        losses = model.losses(
            [Boxes(ANCHORS)], logits, labels, [deltas], [TARGETS[i] for i in images]
        )
    losses["loss_box_reg"].backward()
    return losses["loss_box_reg"].detach(), deltas.grad


def worker(rank, init_file, result_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    model = build_tiny_model("retinanet", "focal_eiou")
    loss, grad = box_loss_and_grad(model, [rank])
    torch.save({"loss": loss, "grad": grad}, f"{result_file}.{rank}")
    dist.destroy_process_group()


def test_two_processes_match_one(tmp_path):
    mp.spawn(worker, args=(str(tmp_path / "init"), str(tmp_path / "result")), nprocs=2)
    parts = [torch.load(tmp_path / f"result.{rank}") for rank in range(2)]
    loss, grad = box_loss_and_grad(build_tiny_model("retinanet", "focal_eiou"), [0, 1])
    # Detectron2 averages logged losses over workers, DDP averages gradients over workers.
    torch.testing.assert_close((parts[0]["loss"] + parts[1]["loss"]) / 2, loss)
    averaged_grad = torch.cat([parts[0]["grad"], parts[1]["grad"]]) / 2
    torch.testing.assert_close(averaged_grad, grad)
    assert grad.abs().sum() > 0
