import pytest
import torch
from torchvision.ops import box_iou

from focal_eiou_d2.simulation.boxes import AlignedIoU, xywh_to_xyxy
from focal_eiou_d2.simulation.metrics import QUANTILE_LEVELS, MetricRecorder, quantile_iterations


def random_boxes(num, generator):
    centre = torch.rand(num, 2, generator=generator, dtype=torch.float64) * 3
    size = torch.rand(num, 2, generator=generator, dtype=torch.float64) * 2 + 0.1
    return torch.cat([centre, size], dim=1)


def test_aligned_iou_matches_torchvision():
    generator = torch.Generator().manual_seed(0)
    boxes, targets = random_boxes(500, generator), random_boxes(500, generator)
    expected = box_iou(xywh_to_xyxy(boxes), xywh_to_xyxy(targets)).diagonal()
    assert torch.allclose(AlignedIoU(targets)(boxes), expected, atol=1e-12)
    assert (expected == 0).any() and (expected > 0.5).any()  # both regimes covered


def test_xywh_to_xyxy():
    box = torch.tensor([[10.0, 20.0, 4.0, 2.0]])
    assert torch.equal(xywh_to_xyxy(box), torch.tensor([[8.0, 19.0, 12.0, 21.0]]))


def test_quantile_iterations_include_both_ends():
    assert quantile_iterations(200, 10)[:3] == [0, 10, 20]
    assert quantile_iterations(25, 10) == [0, 10, 20, 25]


def test_recorder_error_is_the_l1_sum_and_stats_are_consistent():
    targets = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0]])
    boxes = torch.tensor([[0.5, 0.0, 1.0, 1.0], [5.0, 0.0, 2.0, 2.0]])
    recorder = MetricRecorder(targets, 1, quantile_iterations(1, 1))
    iou = recorder.observe(0, boxes)
    recorder.observe(1, boxes)
    assert recorder.error.tolist() == [5.5, 5.5]
    assert iou.tolist() == pytest.approx([1 / 3, 0.0])
    stats = recorder.final_stats(boxes, iou)
    assert stats["mean_iou"] == pytest.approx(1 / 6)
    assert stats["share_no_overlap"] == 0.5
    assert stats["share_iou_gt_0.5"] == 0.0 and stats["nonfinite_pairs"] == 0
    stored = recorder.to_dict()
    assert stored["quantile_iterations"] == [0, 1]
    assert len(stored["iou_quantiles"][0]) == len(QUANTILE_LEVELS)
    assert stored["iou_quantiles"][0][-1] == pytest.approx(1 / 3)


def test_xyxy_conversion_gradient():
    boxes = torch.rand(5, 4, dtype=torch.float64).add_(0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(xywh_to_xyxy, (boxes,))
    batched = torch.rand(2, 3, 4, dtype=torch.float64)
    assert torch.equal(xywh_to_xyxy(batched)[1, 2], xywh_to_xyxy(batched[1, 2:3])[0])
