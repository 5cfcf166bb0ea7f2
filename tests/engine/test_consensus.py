"""Two gloo processes whose views of the output folder differ (a patched ``os.path.isfile`` in
one of them, as NFS attribute caching gives) take the main process's decisions and finish;
each process resumes its own per-process buffers."""

import contextlib
import os
from unittest import mock

import pytest
import torch
from gloo_processes import finish_gloo, init_gloo, run_processes

from focal_eiou_d2.engine import OutputDirError, WeightsError
from focal_eiou_d2.engine.checkpoint import TrainingCheckpointer
from focal_eiou_d2.engine.exact_resume import FINAL_CHECKPOINT, ExactResumeMixin

pytestmark = pytest.mark.slow  # spawns processes


class Normalized(torch.nn.Module):
    """A model with a buffer that each training process updates from its own batches."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(2, 2)
        self.register_buffer("loss_normalizer", torch.tensor(100.0))


class FinishedRun(ExactResumeMixin):
    """A trainer resumed at its last iteration, as after a damaged final checkpoint."""

    def __init__(self, checkpointer, folder):
        self.checkpointer, self.output_dir, self.data_loader = checkpointer, folder, None
        self.start_iter = self.max_iter = 4


def blind_to(path):
    """``os.path.isfile`` as a machine sees it whose cache says ``path`` is absent."""
    isfile = os.path.isfile
    return mock.patch("os.path.isfile", side_effect=lambda p: p != path and isfile(p))


def seeing(path):
    """``os.path.isfile`` as a machine sees it whose cache still holds the deleted ``path``."""
    isfile = os.path.isfile
    return mock.patch("os.path.isfile", side_effect=lambda p: p == path or isfile(p))


def worker(rank, folder):
    init_gloo(rank, 2, f"{folder}/init")
    model = Normalized()
    checkpointer = TrainingCheckpointer(model, folder)
    outcome = {}

    # Each process's buffer is saved and restored as its random state is.
    model.loss_normalizer.fill_(10.0 + rank)
    checkpointer.save("model_0000003", iteration=3)
    model.loss_normalizer.fill_(0.0)
    checkpointer.restore_rank_state(checkpointer.resume_training(""))
    outcome["loss_normalizer"] = model.loss_normalizer.item()

    # A checkpoint that one machine cannot see: an error on both processes, not a hang.
    last = os.path.join(folder, "model_0000003.pth")
    with blind_to(last) if rank == 1 else contextlib.nullcontext():
        try:
            checkpointer.resume_training("")
        except OutputDirError as error:
            outcome["resume"] = str(error)

    # Initial weights that one machine cannot see: an error on both processes, not a hang.
    with blind_to(last) if rank == 1 else contextlib.nullcontext():
        try:
            checkpointer.load_initial_weights(last)
        except (WeightsError, AssertionError) as error:
            outcome["initial"] = f"{type(error).__name__}: {error}"

    # A final checkpoint that only the other machine still sees: both save it, or neither.
    final = os.path.join(folder, f"{FINAL_CHECKPOINT}.pth")
    with seeing(final) if rank == 1 else contextlib.nullcontext():
        FinishedRun(checkpointer, folder).prepare_training()
    torch.save(outcome, f"{folder}/outcome.{rank}")
    finish_gloo()


def test_processes_take_the_main_process_decisions(tmp_path):
    run_processes(worker, (str(tmp_path),))
    outcomes = [torch.load(tmp_path / f"outcome.{rank}") for rank in range(2)]
    assert [outcome["loss_normalizer"] for outcome in outcomes] == [10.0, 11.0]
    for outcome in outcomes:
        assert "not by rank 1" in outcome["resume"] and "model_0000003.pth" in outcome["resume"]
    assert outcomes[0]["initial"].startswith("WeightsError: cannot load the initial weights")
    assert "on rank 1" in outcomes[0]["initial"] and "not found" in outcomes[1]["initial"]
    assert (tmp_path / "model_final.pth").is_file()
    saved = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert [buffers["loss_normalizer"].item() for buffers in saved["rank_buffers"]] == [10, 11]
