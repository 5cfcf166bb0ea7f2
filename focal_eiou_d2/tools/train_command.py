"""What ``train_net.py`` and ``lazy_train_net.py`` share: their options, and the checks they make
once, before any training process starts.

Both commands take Detectron2's options (``default_argument_parser``), ``--coco-dataset``,
``--force`` and ``--dist-timeout``. :func:`check_before_launch` then turns every problem it can
see without training into a user error (one line, see :mod:`focal_eiou_d2.tools.cli`): the config,
its datasets, the weights, the number of processes, the output folder; to train, it claims the
output folder. Around ``launch``, :func:`rendezvous_errors` turns a machine that does not join
within ``--dist-timeout`` into one such line too.
"""

import contextlib
import datetime
import os

import torch
import torch.distributed as dist
import yaml
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_argument_parser
from detectron2.engine.launch import DEFAULT_TIMEOUT
from detectron2.utils import comm
from detectron2.utils.file_io import PathManager

from focal_eiou_d2.data import add_coco_dataset_argument, dataset_classes, prepare_datasets
from focal_eiou_d2.engine import (
    OutputDirError,
    WeightsError,
    check_datasets_exist,
    claim_output_dir,
    load_run_config,
    resolve_config_file,
)
from focal_eiou_d2.engine.consensus import main_decides
from focal_eiou_d2.engine.run_dir import check_output_dir, read_manifest, run_classes

from .cli import CommandError, spawned_exception

# The file in which Detectron2's default_setup saves the config of a run (either kind).
SAVED_CONFIG = "config.yaml"
# Detectron2's git main launches several processes on the CPU (gloo); 0.6 asserts CUDA in each.
LAUNCH_RUNS_ON_CPU = hasattr(comm, "create_local_process_group")
# Detectron2's launch: how long the processes wait for each other, in minutes (30).
DEFAULT_DIST_TIMEOUT = DEFAULT_TIMEOUT.total_seconds() / 60


def training_argument_parser(epilog=None):
    """Detectron2's ``default_argument_parser`` with ``--coco-dataset``, ``--force`` and
    ``--dist-timeout``."""
    parser = default_argument_parser(epilog)
    add_coco_dataset_argument(parser)
    parser.add_argument(
        "--force",
        action="store_true",
        help="delete the run in the output folder (another config's, or this one's), train afresh",
    )
    parser.add_argument(
        "--dist-timeout",
        type=float,
        default=DEFAULT_DIST_TIMEOUT,
        metavar="MINUTES",
        help="how long the processes of a run wait for each other: a machine that has not joined "
        "the rendezvous by then fails the others, and so does a collective that waits longer "
        "(the timeout of Detectron2's launch; default: %(default)g)",
    )
    return parser


def parse_training_args(argv=None, parser=None):
    """Parse and check the command line (``args.config_file`` becomes a path that exists).

    Args:
        argv (list[str] or None): the arguments (None: ``sys.argv[1:]``).
        parser (argparse.ArgumentParser or None): default: :func:`training_argument_parser`.

    Returns:
        argparse.Namespace: Detectron2's arguments, ``coco_datasets`` and ``force``.
    """
    parser = parser or training_argument_parser()
    args = parser.parse_args(argv)
    if args.num_gpus < 1 or args.num_machines < 1 or not 0 <= args.machine_rank < args.num_machines:
        parser.error("--num-gpus and --num-machines must be >= 1, 0 <= --machine-rank < machines")
    if not args.config_file:
        parser.error("--config-file is required (a YAML config or a LazyConfig .py file)")
    try:
        dist_timeout(args)
    except ValueError as error:
        parser.error(str(error))
    try:
        args.config_file = resolve_config_file(args.config_file)
    except FileNotFoundError as error:
        parser.error(str(error))
    return args


MAX_DIST_TIMEOUT = 1e9
"""The longest --dist-timeout, in minutes (about 1900 years; a timedelta holds up to 1.4e9)."""


def dist_timeout(args):
    """The ``timeout`` of Detectron2's ``launch``: ``--dist-timeout`` minutes.

    Raises:
        ValueError: ``--dist-timeout`` is not a number of minutes in (0, MAX_DIST_TIMEOUT], or
            too small to be a timedelta above 0.
    """
    minutes = args.dist_timeout
    if not 0 < minutes <= MAX_DIST_TIMEOUT:  # NaN fails both comparisons
        raise ValueError(
            f"--dist-timeout must be a number of minutes above 0 and at most {MAX_DIST_TIMEOUT:g}, "
            f"got {minutes:g}"
        )
    timeout = datetime.timedelta(minutes=minutes)
    if timeout <= datetime.timedelta(0):
        raise ValueError(f"--dist-timeout {minutes:g} minutes rounds to no time at all")
    return timeout


@contextlib.contextmanager
def rendezvous_errors(args):
    """Around Detectron2's ``launch``: a process that failed to join the others (an error of
    ``torch.distributed`` in ``init_process_group``) is a user error, a :class:`CommandError` whose
    line says what probably happened; any other error passes unchanged.

    A machine that never starts leaves the others at the rendezvous until ``--dist-timeout``
    (torch's store then raises, e.g. ``DistStoreError: Timed out after 361 seconds waiting for
    clients. 1/2 clients joined.``): the line names the timeout and the option.
    """
    from torch.multiprocessing import ProcessRaisedException

    try:
        yield
    except ProcessRaisedException as error:
        line = rendezvous_error_line(error, args)
        if line is None:
            raise
        raise CommandError(line) from None


def rendezvous_error_line(error, args):
    """The line of :func:`rendezvous_errors` for ``error``, or None if a spawned process raised
    anything but an error of ``torch.distributed`` in ``init_process_group``.

    Args:
        error (torch.multiprocessing.ProcessRaisedException): what ``launch`` raised.
        args (argparse.Namespace): from :func:`parse_training_args`.
    """
    raised = spawned_exception(error)
    if raised is None:
        return None
    error_type, _, message, frames = raised
    if not (isinstance(error_type, type) and issubclass(error_type, dist.DistError)):
        return None
    if not any(frame.strip().endswith("in init_process_group") for frame in frames):
        return None
    said = " ".join(message.split())
    machines, rank = args.num_machines, args.machine_rank
    here = f"machine {rank} of {machines}" if machines > 1 else "this machine"
    if not any(word in said.lower() for word in ("timed out", "timeout")):
        return (
            f"the processes could not meet at --dist-url {args.dist_url} ({here}; "
            f"torch.distributed: {said}): give machine 0's address and a port free there"
        )
    if machines > 1:
        missing = "machine"
        cause = (
            "probably a machine did not start, or cannot reach machine 0 at that address: run the "
            f"same command on every machine (--machine-rank 0 to {machines - 1}, the same "
            "--dist-url, machine 0's address), all within the timeout"
        )
    else:
        missing, cause = "process", "a process of this machine did not start in time"
    return (
        f"not every {missing} joined the run at {args.dist_url} within --dist-timeout "
        f"{args.dist_timeout:g} minutes ({here}; torch.distributed: {said}); {cause}, or allow "
        "more time with --dist-timeout MINUTES"
    )


def weights_to_evaluate(weights, output_dir, resume):
    """The weights ``--eval-only`` evaluates: with ``resume``, the output folder's last checkpoint
    if it has one (as Detectron2's ``resume_or_load`` picks it), else ``weights``."""
    checkpointer = DetectionCheckpointer(torch.nn.Module(), save_dir=output_dir)
    if resume and checkpointer.has_checkpoint():
        return checkpointer.get_checkpoint_file()
    return weights


def evaluation_weights(weights, output_dir, resume, dataset_names):
    """The weights ``--eval-only`` evaluates (:func:`weights_to_evaluate`), checked to predict
    the classes of ``dataset_names`` (:func:`check_model_classes`); decided on the main process
    for every process, so that the machines of a run never evaluate different files.

    Raises:
        ValueError: the weights' classes are not those of the datasets.
    """

    def decide():
        chosen = weights_to_evaluate(weights, output_dir, resume)
        check_model_classes(chosen, dataset_names)
        return chosen

    return main_decides(decide)


@contextlib.contextmanager
def keep_saved_config(output_dir, eval_only):
    """Around Detectron2's ``default_setup``: with ``eval_only``, the ``config.yaml`` already in
    ``output_dir`` (that of the run whose weights are evaluated) stays as it is; without one,
    ``default_setup`` saves the evaluation's config there as usual."""
    path = os.path.join(output_dir, SAVED_CONFIG) if output_dir else ""
    kept = None
    if eval_only and path and comm.is_main_process() and os.path.isfile(path):
        with open(path, "rb") as f:
            kept = f.read(), os.stat(path)
    try:
        yield
    finally:
        if kept is not None:
            content, stat = kept
            with open(path, "wb") as f:
                f.write(content)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def check_before_launch(args):
    """The checks made once, before any process starts; to train, claim the output folder.

    Checks the number of processes against the machine, the config and its overrides, its
    datasets, the weights (to evaluate: they must be given, with ``--resume`` the output folder's
    last checkpoint counts; to train: those given must be readable), the training length, and the
    output folder: to evaluate, it holds no other config's run; to train (on the first machine),
    it is claimed for this run (see ``claim_output_dir``), and a run of this config already there
    needs ``--resume`` or ``--force``.

    Args:
        args (argparse.Namespace): from :func:`parse_training_args`.

    Returns:
        YamlRunConfig or LazyRunConfig: the config (its datasets registered in this process).

    Raises:
        OutputDirError, DatasetError, WeightsError, FileNotFoundError, KeyError, ValueError: what
        the user has to fix, in one line.
    """
    check_process_count(args.num_gpus, args.num_machines)
    config = _load_config(args)
    if not args.eval_only:
        check_trainer_processes(config, args.num_gpus, args.num_machines)
    names = config.test_datasets if args.eval_only else config.train_datasets + config.test_datasets
    check_datasets_exist(names)
    if args.eval_only:
        weights = weights_to_evaluate(config.weights, config.output_dir, args.resume)
        if not weights:
            raise WeightsError(
                f"--eval-only needs weights: set {config.WEIGHTS_KEY} to a checkpoint (e.g. "
                "<run folder>/model_final.pth), or pass --resume to evaluate the last checkpoint "
                f"of the output folder ({config.output_dir})"
            )
        check_weights_file(weights, config.WEIGHTS_KEY)
        check_eval_output_dir(config, args)
        return config
    check_max_iter(config)
    checkpointer = DetectionCheckpointer(torch.nn.Module(), save_dir=config.output_dir)
    if config.weights and not (args.resume and checkpointer.has_checkpoint()):
        check_weights_file(config.weights, config.WEIGHTS_KEY)
    prepare_datasets(names)  # once per machine, not by every process at once
    if args.machine_rank == 0:
        claim_output_dir(config, force=args.force, classes=dataset_classes(config.train_datasets))
    else:  # the first machine claims the folder; the others refuse what it refuses
        check_output_dir(config, force=args.force)
    if checkpointer.has_checkpoint() and not (args.resume or args.force):
        raise OutputDirError(
            f"{config.output_dir} already holds a run of this config; pass --resume to continue "
            "it (or to evaluate it again once finished), or --force to delete it and start over."
        )
    return config


def check_process_count(num_gpus, num_machines):
    """Raise ValueError when this machine cannot run ``num_gpus`` processes: more than one
    process needs CUDA on Detectron2 0.6, and never more than the GPUs there are."""
    if torch.cuda.is_available():
        if num_gpus > torch.cuda.device_count():
            raise ValueError(
                f"--num-gpus {num_gpus}, but this machine has {torch.cuda.device_count()} GPUs"
            )
    elif num_gpus * num_machines > 1 and not LAUNCH_RUNS_ON_CPU:
        raise ValueError(
            f"--num-gpus {num_gpus} --num-machines {num_machines} needs CUDA, which is unavailable "
            "here: Detectron2 0.6 runs several processes only on GPUs (its git main runs them on "
            "the CPU too). Train with --num-gpus 1."
        )


def check_trainer_processes(config, num_gpus, num_machines):
    """Raise ValueError when the trainer of ``config`` cannot train in ``num_gpus`` processes on
    each of ``num_machines`` machines: Detectron2's DefaultTrainer (a YAML config's) gives DDP a
    GPU index, so it trains several processes on GPUs only; and every process takes an equal
    share of the batch."""
    processes = num_gpus * num_machines
    batch_key = config.BATCH_KEY
    if int(config.get(batch_key)) % processes:
        raise ValueError(
            f"{batch_key} = {config.get(batch_key)} is not divisible by the {processes} training "
            f"processes of --num-gpus {num_gpus} --num-machines {num_machines}: give a batch "
            "that is, or another process count"
        )
    several = processes > 1
    if config.kind == "yaml" and several and not config.device.startswith("cuda"):
        raise ValueError(
            f"--num-gpus {num_gpus} --num-machines {num_machines} with MODEL.DEVICE "
            f"{config.device}: Detectron2's DefaultTrainer gives DDP a GPU index, so a YAML "
            "config trains several processes on GPUs only. Train on CPU with --num-gpus 1, or "
            "use a LazyConfig (docs/cluster.md)."
        )


def check_weights_file(weights, key):
    """Raise WeightsError unless ``weights`` is a file that may hold weights: a PyTorch
    checkpoint or a pickle (a URL is downloaded first, into Detectron2's cache).

    Args:
        weights (str): a path or URL (not empty).
        key (str): the config key that names it, for the message.
    """
    local = weights
    if "://" in weights:
        try:
            local = PathManager.get_local_path(weights)
        except OSError as error:
            raise WeightsError(f"cannot download {key} {weights}: {error}") from error
    if os.path.isdir(local):
        raise WeightsError(
            f"{key} {weights} is a folder; name a checkpoint file in it, e.g. "
            f"{os.path.join(weights, 'model_final.pth')}"
        )
    if not os.path.isfile(local):
        raise WeightsError(f"{key} {weights} not found")
    with open(local, "rb") as f:
        start = f.read(2)
    if start != b"PK" and start[:1] != b"\x80":  # a zip (torch.save) or a pickle (protocol >= 2)
        raise WeightsError(
            f"{key} {weights} is not a checkpoint (neither a PyTorch file nor a pickle); name "
            "a .pth or .pkl file of weights"
        )


def check_model_classes(weights, dataset_names, head_classes=None, model=None):
    """Raise ValueError unless the model of ``weights`` predicts the classes of each dataset it
    is to be evaluated on (before any inference: another dataset's boxes would be scored as
    these classes).

    The model's classes are those recorded by the run that wrote ``weights`` (its ``run.json``);
    for weights without such a record, only ``head_classes``, the head's class count, is compared
    (if given).

    Args:
        weights (str): the checkpoint evaluated.
        dataset_names (Iterable[str]): registered datasets, e.g. ``cfg.DATASETS.TEST``.
        head_classes (int or None): the head's class count.
        model (str or None): how the message names the model (default: by ``weights``).

    Raises:
        ValueError: naming the model's classes (or count) and the dataset's classes.
    """
    trained = run_classes(weights)
    for name in dataset_names:
        classes = dataset_classes(name)
        if trained is not None and list(trained) != list(classes):
            found = f"was trained on the classes {', '.join(trained)}"
        elif trained is None and head_classes is not None and head_classes != len(classes):
            found = f"has {head_classes} classes (its head's class count)"
        else:
            continue
        raise ValueError(
            f"{model or f'the model of {weights}'} {found}, but dataset {name!r} has "
            f"{len(classes)}: {', '.join(classes)}. Use a dataset of the model's classes"
        )


def check_max_iter(config):
    """Raise ValueError unless the config trains for a positive whole number of iterations."""
    key = config.MAX_ITER_KEY
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a positive number of iterations, got {value!r}")


def check_eval_output_dir(config, args):
    """Raise OutputDirError when ``--eval-only`` cannot write into the output folder, or would
    write into another config's run (its ``inference/`` results).

    The run there counts as this config's when its recorded digest is this config's, with the
    initial weights the run recorded in its ``config.yaml`` (evaluating a run's
    ``model_final.pth`` changes only the weights).
    """
    folder = config.output_dir
    if not folder:
        return
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise OutputDirError(
            f"cannot use {folder} as output folder ({error.strerror}): choose a folder you can "
            "write to"
        ) from error
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("config_digest") == config.digest():
        return
    initial = _saved_value(os.path.join(folder, SAVED_CONFIG), config.WEIGHTS_KEY)
    if initial is not None:
        as_trained = _load_config(args, weights=initial, classes_from="train")
        if manifest.get("config_digest") == as_trained.digest():
            return
    elsewhere = " ".join(config.override(config.OUTPUT_KEY, os.path.normpath(folder) + "_eval"))
    raise OutputDirError(
        f"{folder} holds a run of a config that differs from this one (it trained "
        f"{manifest.get('config_file', '?')}, started {manifest.get('started', '?')}); "
        f"--eval-only would write its results among that run's. Evaluate into another folder, "
        f"e.g. {elsewhere}"
    )


def _load_config(args, **options):
    """The config of the command line; an unreadable config file is a ValueError."""
    options.setdefault("classes_from", "run" if args.eval_only else "train")
    try:
        return load_run_config(
            args.config_file, args.opts, coco_datasets=args.coco_datasets, **options
        )
    except yaml.YAMLError as error:
        problem = " ".join(str(error).split())
        raise ValueError(f"cannot read the config {args.config_file}: {problem}") from None


class _SavedConfigLoader(yaml.SafeLoader):
    """Reads a config saved by Detectron2 (a LazyConfig's holds Python objects: read as None)."""


_SavedConfigLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *_: None)


def _saved_value(path, key):
    """The value of dotted ``key`` in the saved config ``path``, or None."""
    try:
        with open(path) as f:
            node = yaml.load(f, Loader=_SavedConfigLoader)
        for part in key.split("."):
            node = node[part]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None
    return node
