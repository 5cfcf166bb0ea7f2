"""Each training process saves and restores its own random state (two gloo processes), and a run
saved by two processes resumes with one."""

import logging

import pytest
import torch
from detectron2.utils import comm
from gloo_processes import finish_gloo, init_gloo, run_processes

from focal_eiou_d2.engine.checkpoint import TrainingCheckpointer, restore_rank_rng

pytestmark = pytest.mark.slow  # trains models or spawns processes


def save_then_draw(rank, folder):
    """Seed this rank's generators, checkpoint (a collective call), then draw: what a rank that
    restores the checkpoint must draw next."""
    init_gloo(rank, 2, f"{folder}/init")
    torch.manual_seed(100 + rank)
    checkpointer = TrainingCheckpointer(torch.nn.Linear(2, 2), folder)
    checkpointer.save("model_0000003")
    torch.save(torch.rand(5), f"{folder}/expected.{rank}")
    finish_gloo()


def restore_then_draw(rank, folder, world_size):
    init_gloo(rank, world_size, f"{folder}/init2")
    torch.manual_seed(999)  # what a fresh process does before it loads the checkpoint
    checkpoint = TrainingCheckpointer(torch.nn.Linear(2, 2), folder).load(
        f"{folder}/model_0000003.pth"
    )
    restore_rank_rng(checkpoint["rng_states"])
    torch.save(torch.rand(5), f"{folder}/drawn.{world_size}.{rank}")
    finish_gloo()


def test_every_rank_restores_its_own_random_state(tmp_path):
    run_processes(save_then_draw, (str(tmp_path),))
    checkpoint = torch.load(tmp_path / "model_0000003.pth", weights_only=False)
    assert len(checkpoint["rng_states"]) == 2
    assert not torch.equal(
        checkpoint["rng_states"][0]["torch"], checkpoint["rng_states"][1]["torch"]
    )
    run_processes(restore_then_draw, (str(tmp_path), 2))
    for rank in range(2):
        expected = torch.load(tmp_path / f"expected.{rank}")
        assert torch.equal(torch.load(tmp_path / f"drawn.2.{rank}"), expected)


def test_fewer_processes_resume_with_a_warning(tmp_path, caplog):
    run_processes(save_then_draw, (str(tmp_path),))
    checkpoint = torch.load(tmp_path / "model_0000003.pth", weights_only=False)
    assert comm.get_world_size() == 1
    with caplog.at_level(logging.WARNING):
        restore_rank_rng(checkpoint["rng_states"])
    assert "saved by 2 processes with 1" in caplog.text
    assert torch.equal(torch.rand(5), torch.load(tmp_path / "expected.0"))
