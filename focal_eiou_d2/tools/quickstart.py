"""Train and evaluate one detector on the embedded shapes dataset: the project's main job.

    python -m focal_eiou_d2.tools.quickstart          # Focal-EIoU RetinaNet on the CPU
    python -m focal_eiou_d2.tools.quickstart --config-file CONFIG.yaml [KEY VALUE ...]
    python -m focal_eiou_d2.tools.quickstart --config-file CONFIG.py [key=value ...]
    python -m focal_eiou_d2.tools.quickstart --config-file CONFIG --output FOLDER --opts KEY VALUE
    python -m focal_eiou_d2.tools.quickstart --num-gpus 2 --config-file CONFIG.py [key=value ...]

Generates the dataset if needed, trains the model of ``--config-file``, evaluates it on its test
dataset with ``COCOEvaluator``, prints the AP table, draws a few test images (ground truth beside
the detections) and saves everything under the config's output folder. YAML configs and
LazyConfig ``.py`` files are both accepted (with Detectron2's override syntax of each, trailing as
``train_net.py`` takes them or after ``--opts``). ``--num-gpus N`` trains in N processes on this
machine through Detectron2's ``launch``, as ``train_net.py`` does, with its checks and messages
(several processes need a GPU each, or Detectron2's git main and a LazyConfig on the CPU); the
batch stays the config's, split over the processes.

The output folder belongs to this config: an interrupted run resumes exactly where it stopped; a
finished run is not repeated (its results are printed again, if its final weights are intact);
another config's run there is never overwritten (``--force`` deletes it first).
"""

import argparse
import functools
import hashlib
import json
import logging
import os

from focal_eiou_d2 import ignore_torch_jit_deprecation

ignore_torch_jit_deprecation()  # raised by Detectron2 0.6's first import under recent PyTorch

import cv2  # noqa: E402
from detectron2.data import DatasetCatalog, MetadataCatalog  # noqa: E402
from detectron2.engine import launch  # noqa: E402
from detectron2.utils import comm  # noqa: E402
from detectron2.utils.env import seed_all_rng  # noqa: E402
from detectron2.utils.logger import setup_logger  # noqa: E402

from focal_eiou_d2.data import (  # noqa: E402
    add_coco_dataset_argument,
    dataset_classes,
    prepare_datasets,
)
from focal_eiou_d2.engine import claim_output_dir, load_run_config  # noqa: E402
from focal_eiou_d2.engine.exact_resume import FINAL_CHECKPOINT  # noqa: E402
from focal_eiou_d2.evaluation import (  # noqa: E402
    IOU_THRESHOLDS,
    best_f1_threshold,
    build_predictor,
    evaluate_boxes,
    load_ground_truth,
)
from focal_eiou_d2.tools.cli import (  # noqa: E402
    add_opts_arguments,
    add_output_argument,
    parsed_opts,
    run_command,
)
from focal_eiou_d2.tools.train_command import (  # noqa: E402
    check_process_count,
    check_trainer_processes,
)
from focal_eiou_d2.visualization.draw import (  # noqa: E402
    draw_detections,
    draw_ground_truth,
    side_by_side,
)

DEFAULT_CONFIG = "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"
RESULTS_FILE = "quickstart_results.json"
FINAL_WEIGHTS = f"{FINAL_CHECKPOINT}.pth"
AP_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
logger = logging.getLogger("focal_eiou_d2.quickstart")


def file_digest(path):
    """sha256 of a file, hexadecimal."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_results(config):
    """The saved results of the finished run of ``config`` in its output folder, or None.

    They count only if the final weights they were computed from are still intact: a damaged
    ``model_final.pth`` is renamed to ``model_final.pth.corrupt`` (with a warning), so that the
    run resumes from its last intact checkpoint and writes it again.
    """
    path = os.path.join(config.output_dir, RESULTS_FILE)
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    if saved.get("config_digest") != config.digest():
        return None
    final = os.path.join(config.output_dir, FINAL_WEIGHTS)
    if os.path.isfile(final) and file_digest(final) == saved.get("model_final_sha256"):
        return saved
    logger.warning(
        "%s is missing or not the file the saved results were computed from (damaged?): "
        "resuming the run from its last intact checkpoint",
        final,
    )
    if os.path.isfile(final):
        os.replace(final, f"{final}.corrupt")
    os.remove(path)
    return None


def train_and_evaluate(config, resume):
    """Train (resuming the output folder's checkpoints if ``resume``) and evaluate, in every
    process of the run.

    Returns:
        dict or None: the ``bbox`` metrics of ``COCOEvaluator`` (AP, AP50, ..., AP-<class>) on the
        first test dataset; None in the processes other than the main one (the evaluation gathers
        its results there).
    """
    trainer = build_trainer(config)
    trainer.resume_or_load(resume=resume)
    results = trainer.train()
    if not comm.is_main_process():
        return None
    return results["bbox"] if "bbox" in results else results[config.test_datasets[0]]["bbox"]


def train_and_save(config, resume):
    """Train and evaluate ``config`` (:func:`train_and_evaluate`, in every process of the run);
    the main process writes the run's config and its results (``quickstart_results.json``)."""
    main_process = comm.is_main_process()
    if main_process:
        with open(os.path.join(config.output_dir, config.CONFIG_NAME), "w") as f:
            f.write(config.text())
    metrics = train_and_evaluate(config, resume)
    if not main_process:
        return
    saved = {
        "config_digest": config.digest(),
        "bbox": metrics,
        "model_final_sha256": file_digest(os.path.join(config.output_dir, FINAL_WEIGHTS)),
        **evaluation_summary(config),
    }
    partial = os.path.join(config.output_dir, RESULTS_FILE + ".partial")
    with open(partial, "w") as f:
        json.dump(saved, f, indent=2, sort_keys=True)
    os.replace(partial, os.path.join(config.output_dir, RESULTS_FILE))


def build_trainer(config):
    """The trainer of ``config``, built after seeding the random generators with its seed.

    Seeding first makes the initial weights depend on the seed only, as ``train_net.py`` does
    through Detectron2's ``default_setup`` (a negative seed draws a random one); the data order
    and the augmentation depend on the seed only anyway (``focal_eiou_d2.data.train_loader``).
    """
    seed_all_rng(None if config.seed < 0 else config.seed)
    return config.build_trainer()


def detections_file(config):
    """Where the evaluation wrote the detections on the first test dataset."""
    dataset = config.test_datasets[0]
    return os.path.join(config.output_dir, "inference", dataset, "coco_instances_results.json")


def evaluation_summary(config):
    """AP per IoU threshold and the drawing threshold, from the detections the evaluation saved.

    Returns:
        dict: ``ap_per_iou`` (AP in percent at IoU 0.50, 0.55, ..., 0.95), ``iou_thresholds``,
        ``draw_threshold`` (the score threshold of highest F1 at IoU 0.5) and ``draw_f1``.
    """
    with open(detections_file(config)) as f:
        detections = json.load(f)
    coco_gt = load_ground_truth(config.test_datasets[0])
    threshold, f1 = best_f1_threshold(coco_gt, detections)
    return {
        "ap_per_iou": evaluate_boxes(coco_gt, detections)["ap_per_iou"],
        "iou_thresholds": list(IOU_THRESHOLDS),
        "draw_threshold": threshold,
        "draw_f1": f1,
    }


def visualize(config, count, threshold):
    """Draw the first ``count`` test images: ground truth beside the detections.

    Returns:
        list[str]: the written files, in <output folder>/visualizations.
    """
    dataset = config.test_datasets[0]
    metadata = MetadataCatalog.get(dataset)
    predictor = build_predictor(config, os.path.join(config.output_dir, FINAL_WEIGHTS))
    folder = os.path.join(config.output_dir, "visualizations")
    os.makedirs(folder, exist_ok=True)
    written = []
    for record in DatasetCatalog.get(dataset)[:count]:
        image = cv2.imread(record["file_name"])
        rgb = image[:, :, ::-1]
        truth = draw_ground_truth(rgb, record["annotations"])
        found = draw_detections(rgb, predictor(image)["instances"], metadata, threshold)
        titles = ("ground truth", f"detections, score >= {threshold:.2f}")
        path = os.path.join(folder, os.path.basename(record["file_name"]))
        cv2.imwrite(path, side_by_side(truth, found, titles)[:, :, ::-1])
        written.append(path)
    return written


def format_table(name, metrics):
    """A markdown table of the COCO box metrics, per-class APs included."""
    classes = sorted(k for k in metrics if k.startswith("AP-"))
    header = "| model | " + " | ".join(AP_KEYS + tuple(classes)) + " |"
    rule = "|---" * (1 + len(AP_KEYS) + len(classes)) + "|"
    values = " | ".join(f"{metrics[k]:.1f}" for k in AP_KEYS + tuple(classes))
    return "\n".join([header, rule, f"| {name} | {values} |"])


def claim(config, force=False):
    """Claims the output folder of ``config`` (see ``claim_output_dir``), recording the classes
    of its training data; with ``force``, deletes the run there first.

    Returns:
        bool: True if the folder holds a run of this very config (to resume or reuse).

    Raises:
        OutputDirError: the folder is in use, or holds another config's run (without ``force``).
    """
    return claim_output_dir(config, force=force, classes=dataset_classes(config.train_datasets))


def run(config, force=False, num_visualizations=4):
    """Claim the output folder, train, evaluate, print and visualize; reuse a finished
    identical run.

    Args:
        config (YamlRunConfig or LazyRunConfig): the config.
        force (bool): delete the run in the output folder first (this config's or another's).
        num_visualizations (int): test images to draw.

    Returns:
        dict: what is saved to <output folder>/quickstart_results.json.

    Raises:
        OutputDirError: the folder is in use, or holds another config's run (without ``force``).
    """
    return run_claimed(config, claim(config, force), num_visualizations)


def run_claimed(config, same_config, num_visualizations=4, train=None):
    """:func:`run` in an output folder already claimed.

    Args:
        config (YamlRunConfig or LazyRunConfig): the config.
        same_config (bool): what :func:`claim` returned.
        num_visualizations (int): test images to draw.
        train (callable or None): ``train(resume)`` does :func:`train_and_save`'s work for
            ``config`` (e.g. in several processes); None: :func:`train_and_save` in this process.

    Returns:
        dict: what is saved to <output folder>/quickstart_results.json.
    """
    saved = cached_results(config) if same_config else None
    if saved is None:
        # generates the embedded datasets once, before any training process starts
        prepare_datasets((*config.train_datasets, *config.test_datasets))
        (train or functools.partial(train_and_save, config))(same_config)
        with open(os.path.join(config.output_dir, RESULTS_FILE)) as f:
            saved = json.load(f)
    else:
        logger.info(f"{config.output_dir} holds the finished run of this config; --force retrains")
    print(format_table(f"{config.architecture} ({config.loss_type})", saved["bbox"]))
    if num_visualizations > 0:
        files = visualize(config, num_visualizations, saved["draw_threshold"])
        print(
            f"{len(files)} test images, ground truth beside the detections with score >= "
            f"{saved['draw_threshold']:.2f} (the threshold of highest F1), in "
            f"{os.path.dirname(files[0])}"
        )
    return saved


def process_count(text):
    """An argparse type: a number of training processes, >= 1."""
    count = int(text)
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return count


def add_num_gpus_argument(parser):
    """Adds ``--num-gpus N``, the training processes on this machine (``train_net.py``'s)."""
    parser.add_argument(
        "--num-gpus",
        type=process_count,
        default=1,
        metavar="N",
        help="train in N processes on this machine, one per GPU (on the CPU: Detectron2's git "
        "main and a LazyConfig), as train_net.py does; the batch stays the config's, split over "
        "them (default: %(default)s)",
    )


def check_num_gpus(config, num_gpus):
    """Raise ValueError, with ``train_net.py``'s messages, when ``config`` cannot train in
    ``num_gpus`` processes on this machine (see ``check_process_count`` and
    ``check_trainer_processes`` of ``focal_eiou_d2.tools.train_command``)."""
    check_process_count(num_gpus, 1)
    check_trainer_processes(config, num_gpus, 1)


def parse_args(argv=None):
    """Parses the command line and checks its values (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config-file", default=DEFAULT_CONFIG, help="a YAML or LazyConfig (.py) config"
    )
    add_output_argument(parser, None, "the run's folder (default: the config's output folder)")
    parser.add_argument(
        "--force", action="store_true", help="delete the run in the output folder and train afresh"
    )
    parser.add_argument(
        "--num-visualizations",
        type=int,
        default=4,
        help="test images to draw (0: none; default: %(default)s)",
    )
    add_num_gpus_argument(parser)
    add_coco_dataset_argument(parser)
    add_opts_arguments(parser, "SOLVER.MAX_ITER 900", trailing=True)
    args = parser.parse_args(argv)
    args.opts = parsed_opts(parser, args, [args.config_file])
    if args.num_visualizations < 0:
        parser.error(f"--num-visualizations must be >= 0, got {args.num_visualizations}")
    return args


def load_config(args):
    """The config of the command line (its ``--coco-dataset`` datasets registered in this
    process)."""
    return load_run_config(
        args.config_file, args.opts, output_dir=args.output, coco_datasets=args.coco_datasets
    )


def setup_logging(output_dir):
    """Detectron2's and this package's log: ``<output_dir>/log.txt`` and the console in the main
    process, ``log.txt.rank<r>`` in the others (the same call in every process of the run)."""
    for name in ("detectron2", "focal_eiou_d2"):
        setup_logger(output_dir, distributed_rank=comm.get_rank(), name=name)


def train_process(args, resume):
    """A training process of the command line (each of ``--num-gpus``, started by Detectron2's
    ``launch``): loads the config of ``args``, registering its datasets in this process, and runs
    :func:`train_and_save`."""
    config = load_config(args)
    setup_logging(config.output_dir)
    train_and_save(config, resume)


def launch_training(args, resume):
    """Trains and saves the run of ``args`` in ``args.num_gpus`` processes on this machine
    through Detectron2's ``launch``, as ``train_net.py`` does (one process: this one)."""
    launch(train_process, args.num_gpus, dist_url="auto", args=(args, resume))


def quickstart(argv):
    """The quickstart without its error boundary: checks the process count, claims the output
    folder (``--force`` deletes the run there), then opens the run's log in it, then trains (in
    ``--num-gpus`` processes), evaluates and draws.

    Returns:
        dict: what is saved to <output folder>/quickstart_results.json.
    """
    args = parse_args(argv)
    config = load_config(args)
    check_num_gpus(config, args.num_gpus)
    same_config = claim(config, args.force)  # before the log: --force deletes the old one
    setup_logging(config.output_dir)
    train = functools.partial(launch_training, args)
    return run_claimed(config, same_config, args.num_visualizations, train)


def main(argv=None):
    """Runs the quickstart; a user error ends it with one line (see ``run_command``)."""
    return run_command("quickstart", quickstart, argv)


if __name__ == "__main__":
    main()
