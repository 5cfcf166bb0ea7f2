"""Detectron2's COCOEvaluator, with its fast C++ COCOeval only where the compiled ops exist."""

import os

from detectron2.evaluation import COCOEvaluator

from focal_eiou_d2.compiled_ops import detectron2_has_compiled_ops


def build_coco_evaluator(output_dir, dataset_name, output_folder=None):
    """A ``COCOEvaluator`` of ``dataset_name`` writing to <output_dir>/inference/<dataset>.

    Args:
        output_dir (str): the run's output folder.
        dataset_name (str): a registered dataset with COCO-format metadata.
        output_folder (str or None): where the detections are written instead.
    """
    output_folder = output_folder or os.path.join(output_dir, "inference", dataset_name)
    return COCOEvaluator(
        dataset_name, output_dir=output_folder, use_fast_impl=detectron2_has_compiled_ops()
    )
