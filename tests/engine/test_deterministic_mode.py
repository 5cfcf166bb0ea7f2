"""FOCAL_EIOU_DETERMINISTIC=1 switches a training process to deterministic algorithms; unset, it
changes nothing."""

import os

import pytest
import torch

from focal_eiou_d2.engine.rng import DETERMINISTIC_ENV, use_deterministic_mode


@pytest.fixture
def restored_flags(monkeypatch):
    """Torch's global switches as they were before the test."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    yield monkeypatch
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def test_the_switch_turns_on_deterministic_algorithms(restored_flags):
    restored_flags.setenv(DETERMINISTIC_ENV, "1")
    torch.backends.cudnn.benchmark = True
    assert use_deterministic_mode()
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_without_the_switch_nothing_changes(restored_flags):
    restored_flags.delenv(DETERMINISTIC_ENV, raising=False)
    enabled = torch.are_deterministic_algorithms_enabled()
    assert not use_deterministic_mode()
    assert torch.are_deterministic_algorithms_enabled() == enabled
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    restored_flags.setenv(DETERMINISTIC_ENV, "yes")
    with pytest.raises(ValueError, match=f"{DETERMINISTIC_ENV} must be 0 or 1, not 'yes'"):
        use_deterministic_mode()
