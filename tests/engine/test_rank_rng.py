"""Each training process saves and restores its own random state (two gloo processes), and a run
saved by two processes resumes with one."""

import logging

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.utils import comm

from focal_eiou_d2.engine.checkpoint import TrainingCheckpointer, restore_rank_rng

pytestmark = pytest.mark.slow  # trains models or spawns processes


def save_then_draw(rank, folder):
    """Seed this rank's generators, checkpoint (a collective call), then draw: what a rank that
    restores the checkpoint must draw next."""
    dist.init_process_group("gloo", init_method=f"file://{folder}/init", rank=rank, world_size=2)
    torch.manual_seed(100 + rank)
    checkpointer = TrainingCheckpointer(torch.nn.Linear(2, 2), folder)
    checkpointer.save("model_0000003")
    torch.save(torch.rand(5), f"{folder}/expected.{rank}")
    dist.barrier()  # no rank tears gloo down while the other still uses it (a rare SIGABRT)
    dist.destroy_process_group()


def restore_then_draw(rank, folder, world_size):
    dist.init_process_group(
        "gloo", init_method=f"file://{folder}/init2", rank=rank, world_size=world_size
    )
    torch.manual_seed(999)  # what a fresh process does before it loads the checkpoint
    checkpoint = TrainingCheckpointer(torch.nn.Linear(2, 2), folder).load(
        f"{folder}/model_0000003.pth"
    )
    restore_rank_rng(checkpoint["rng_states"])
    torch.save(torch.rand(5), f"{folder}/drawn.{world_size}.{rank}")
    dist.barrier()
    dist.destroy_process_group()


def test_every_rank_restores_its_own_random_state(tmp_path):
    mp.spawn(save_then_draw, args=(str(tmp_path),), nprocs=2)
    checkpoint = torch.load(tmp_path / "model_0000003.pth", weights_only=False)
    assert len(checkpoint["rng_states"]) == 2
    assert not torch.equal(
        checkpoint["rng_states"][0]["torch"], checkpoint["rng_states"][1]["torch"]
    )
    mp.spawn(restore_then_draw, args=(str(tmp_path), 2), nprocs=2)
    for rank in range(2):
        expected = torch.load(tmp_path / f"expected.{rank}")
        assert torch.equal(torch.load(tmp_path / f"drawn.2.{rank}"), expected)


def test_fewer_processes_resume_with_a_warning(tmp_path, caplog):
    mp.spawn(save_then_draw, args=(str(tmp_path),), nprocs=2)
    checkpoint = torch.load(tmp_path / "model_0000003.pth", weights_only=False)
    assert comm.get_world_size() == 1
    with caplog.at_level(logging.WARNING):
        restore_rank_rng(checkpoint["rng_states"])
    assert "saved by 2 processes with 1" in caplog.text
    assert torch.equal(torch.rand(5), torch.load(tmp_path / "expected.0"))
