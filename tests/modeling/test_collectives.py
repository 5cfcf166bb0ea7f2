"""Eq. 11's collectives run on the device of the data (NCCL reduces only CUDA tensors), and the
loss path reads nothing back to the host (no host-device synchronization)."""

import pytest
import torch
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.utils import comm

from focal_eiou_d2.modeling import BoxRegressionLoss
from focal_eiou_d2.modeling.box_loss import EQ11_FORMS

WORLD_SIZE = 2


class DeviceCheckingAllReduce:
    """Stands in for ``torch.distributed.all_reduce`` over 2 processes that hold the same data,
    and fails, as NCCL does, on a tensor that is not on the data's device."""

    def __init__(self, device):
        self.device = device
        self.calls = 0

    def __call__(self, tensor, *args, **kwargs):
        if tensor.device != self.device:
            raise RuntimeError(f"No backend type associated with device type {tensor.device.type}")
        self.calls += 1
        tensor.mul_(WORLD_SIZE)


def pairs(count, device):
    """Anchors, predicted deltas and targets of ``count`` positives."""
    generator = torch.Generator().manual_seed(0)
    corner = torch.rand(count, 2, generator=generator) * 100
    anchors = torch.cat([corner, corner + 20 + torch.rand(count, 2, generator=generator) * 50], 1)
    targets = anchors + torch.randn(count, 4, generator=generator) * 4
    deltas = torch.randn(count, 4, generator=generator) * 0.1
    return anchors.to(device), deltas.to(device).requires_grad_(), targets.to(device)


@pytest.mark.parametrize("eq11_form", EQ11_FORMS)
def test_eq11_collectives_stay_on_the_data_device(eq11_form, monkeypatch):
    device = torch.device("meta")  # any device but the CPU: a host tensor would be caught
    all_reduce = DeviceCheckingAllReduce(device)
    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
    monkeypatch.setattr(comm, "get_world_size", lambda: WORLD_SIZE)
    loss = BoxRegressionLoss(
        "focal_eiou", Box2BoxTransform((1.0, 1.0, 1.0, 1.0)), eq11_form=eq11_form
    )
    anchors, deltas, targets = pairs(8, device)
    value = loss(anchors, deltas, targets, normalizer=torch.tensor(8.0, device=device))
    assert all_reduce.calls == 1
    assert value.device == device and value.shape == ()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("eq11_form", EQ11_FORMS)
def test_no_host_device_sync_on_cuda(eq11_form):
    # As many pairs as a real batch has.
    anchors, deltas, targets = pairs(4096, torch.device("cuda"))
    loss = BoxRegressionLoss(
        "focal_eiou", Box2BoxTransform((1.0, 1.0, 1.0, 1.0)), eq11_form=eq11_form
    )
    normalizer = torch.tensor(4096.0, device="cuda")
    loss(anchors, deltas, targets, normalizer).backward()  # CUDA's lazy set-up is not checked
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        value = loss(anchors, deltas, targets, normalizer)
        value.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(value).item() and deltas.grad.abs().sum().item() > 0


def test_wiou_running_mean_is_reduced_on_the_data_device(monkeypatch):
    device = torch.device("meta")
    all_reduce = DeviceCheckingAllReduce(device)
    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
    monkeypatch.setattr(comm, "get_world_size", lambda: WORLD_SIZE)
    loss = BoxRegressionLoss("wiou_v3", Box2BoxTransform((1.0, 1.0, 1.0, 1.0)), momentum=0.1)
    head = torch.nn.Module()
    loss.register_state(head)
    head.to(device)
    anchors, deltas, targets = pairs(8, device)
    value = loss(anchors, deltas, targets, torch.tensor(8.0, device=device), head=head)
    assert all_reduce.calls == 1
    assert value.device == device and head.iou_loss_mean.device == device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("loss_type", ["mpdiou", "wiou_v3"])
def test_head_inputs_add_no_host_device_sync_on_cuda(loss_type):
    anchors, deltas, targets = pairs(4096, torch.device("cuda"))
    momentum = 0.1 if loss_type == "wiou_v3" else None
    loss = BoxRegressionLoss(loss_type, Box2BoxTransform((1.0, 1.0, 1.0, 1.0)), momentum=momentum)
    head = torch.nn.Module()
    loss.register_state(head)
    head.to("cuda")
    image_sizes = torch.tensor([[480.0, 640.0], [600.0, 400.0]])  # on the host, as heads have them
    image_of_pair = torch.arange(4096, device="cuda") % 2
    normalizer = torch.tensor(4096.0, device="cuda")

    def step():
        image_size = image_sizes.to("cuda", non_blocking=True)[image_of_pair]
        value = loss(anchors, deltas, targets, normalizer, head=head, image_size=image_size)
        value.backward()
        return value

    step()  # CUDA's lazy set-up is not checked
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        value = step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(value).item() and deltas.grad.abs().sum().item() > 0
