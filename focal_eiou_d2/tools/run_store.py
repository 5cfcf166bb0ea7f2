"""The runs of an ablation and their results: planning (rows x grid values x seeds), training each
run through the quickstart job in its own process (in ``--num-gpus`` processes of its own, with
several), the loop that trains the runs without a result and skips the finished ones, the small
result file each finished run leaves, the fingerprints that keep results of other code,
protocols, torch versions, machines, process counts or backbones apart, and the shared backbone
the runs start from.

A results folder holds the runs of one fingerprint; a run is named after its row, grid values and
seed (``eiou__seed0``), and its result file is ``<results folder>/<run name>.json``.
"""

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from itertools import product

from focal_eiou_d2.engine import OutputDirError, load_run_config
from focal_eiou_d2.engine.checkpoint import export_weights
from focal_eiou_d2.engine.fingerprint import fingerprint, git_commit
from focal_eiou_d2.evaluation import IOU_THRESHOLDS
from focal_eiou_d2.layers import BOX_LOSSES
from focal_eiou_d2.tools.cli import CommandError
from focal_eiou_d2.tools.quickstart import FINAL_WEIGHTS, RESULTS_FILE, file_digest

# What --pretrain keeps of the pretraining run: the ResNet of the detector's backbone.
BACKBONE_PREFIX = "backbone.bottom_up."
# How a recorded protocol digest names its backbone: ``<protocol>+backbone:<16 hex digits>``.
BACKBONE_TAG = "+backbone:"
# The rows' names in tables and reports: the papers' names of the losses.
PAPER_NAMES = {
    "smooth_l1": "Smooth L1",
    "iou": "IoU",
    "giou": "GIoU",
    "diou": "DIoU",
    "ciou": "CIoU",
    "eiou": "EIoU",
    "focal_l1": "FocalL1",
    "balanced_l1": "BalancedL1",
    "focal_eiou_v1": "Focal-EIoU v1",
    "focal_eiou": "Focal-EIoU",
    "focal_eiou_star": "Focal-EIoU*",
    "siou": "SIoU",
    "shape_iou": "Shape-IoU",
    "wiou_v1": "Wise-IoU v1",
    "wiou_v3": "Wise-IoU v3",
    "alpha_iou": "Alpha-IoU",
    "mpdiou": "MPDIoU",
    "inner_iou": "Inner-IoU",
    "nwd": "NWD",
}


@dataclass(frozen=True)
class Row:
    """A row of the table: a loss, with overrides of its own (KEY, VALUE) pairs."""

    loss: str
    overrides: tuple = ()

    @property
    def label(self):
        name = PAPER_NAMES.get(self.loss, self.loss)
        extra = ", ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in self.overrides)
        return f"{name} ({extra})" if extra else name

    @property
    def text(self):
        """The command-line form, e.g. ``smooth_l1[MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT=0.25]``."""
        extra = ",".join(f"{key}={value}" for key, value in self.overrides)
        return f"{self.loss}[{extra}]" if extra else self.loss


def parse_row(text):
    """A :class:`Row` from ``LOSS`` or ``LOSS[KEY=VALUE,KEY=VALUE]``.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not of that form, or LOSS is not a known loss.
    """
    match = re.fullmatch(r"([a-z0-9_]+)(?:\[(.+)\])?", text)
    if not match or match.group(1) not in BOX_LOSSES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not LOSS or LOSS[KEY=VALUE,...] with LOSS among {', '.join(BOX_LOSSES)}"
        )
    overrides = []
    for item in (match.group(2) or "").split(",") if match.group(2) else []:
        key, _, value = item.partition("=")
        if not key or not value:
            raise argparse.ArgumentTypeError(f"{item!r} in {text!r} is not KEY=VALUE")
        overrides.append((key, value))
    return Row(match.group(1), tuple(overrides))


@dataclass
class Run:
    """One training: a row, one value of each grid setting, a seed."""

    row: Row
    setting: tuple  # ((KEY, VALUE), ...)
    seed: int
    name: str = field(init=False)

    def __post_init__(self):
        parts = [self.row.text, *(f"{key}={value}" for key, value in self.setting)]
        self.name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", "__".join(parts)) + f"__seed{self.seed}"

    def opts(self, base, output_dir):
        """Config overrides of this run in the syntax of ``base``'s kind (KEY VALUE for YAML,
        key=value for LazyConfig), after the base overrides: the loss of the model's box-loss
        node with the paper's weight, the row's and the grid's values, the seed, the folder."""
        opts = base.loss_overrides(self.row.loss)
        for key, value in (*self.row.overrides, *self.setting):
            opts += base.override(key, value)
        return (
            opts
            + base.override(base.SEED_KEY, self.seed)
            + base.override(base.OUTPUT_KEY, output_dir)
        )


def plan(rows, settings, seeds):
    """Every run, seed by seed (so that a partial ablation covers every row).

    Args:
        rows (list[Row]): the rows.
        settings (list[tuple[str, tuple[str, ...]]]): the grid: (KEY, values) per setting.
        seeds (list[int]): the seeds.

    Returns:
        list[Run]: one run per seed, row and grid point.
    """
    grid = list(product(*([(key, value) for value in values] for key, values in settings)))
    return [Run(row, setting, seed) for seed in seeds for row in rows for setting in grid]


def reserved_keys(base):
    """The keys that rows and grids must not set, each with the option that sets it instead.

    Returns:
        dict[str, str]: the seed's key and the box-loss type key(s) of ``base``'s model.
    """
    loss_opts = base.loss_overrides(next(iter(BOX_LOSSES)))  # the same keys for every loss
    keys = loss_opts[::2] if base.kind == "yaml" else [o.split("=")[0] for o in loss_opts]
    reserved = {key: "--losses" for key in keys if key.lower().endswith("loss_type")}
    return {base.SEED_KEY: "--seeds", **reserved}


def check_plan(base, rows, settings):
    """Raises ValueError if a row's overrides or a ``--set`` key set the seed or the row's loss
    (they would train another run than the one named and tabulated).

    Args:
        base (YamlRunConfig or LazyRunConfig): the config every run starts from.
        rows (list[Row]): the rows.
        settings (list[tuple[str, tuple[str, ...]]]): the grid.
    """
    reserved = reserved_keys(base)
    given = [(f"--losses {row.text}", key) for row in rows for key, _ in row.overrides]
    given += [(f"--set {key}", key) for key, _ in settings]
    for where, key in given:
        if key in reserved:
            raise ValueError(f"{where}: {key} is set by {reserved[key]}, not by a config value")


def check_runs(config_file, opts, base, runs, build_models=True):
    """Loads the config of every run, and builds the model of each distinct one, so
    that a key the config lacks or a value out of its range is an error before anything trains.

    Args:
        config_file (str): the config every run starts from.
        opts (list[str]): its overrides.
        base (YamlRunConfig or LazyRunConfig): that config, loaded with ``opts``.
        runs (list[Run]): the runs to check.
        build_models (bool): build the models too (their checks of the values' ranges).

    Raises:
        ValueError, KeyError: a key or value the config or the model refuses.
    """
    built = set()
    for run in runs:
        run_opts = [*opts, *run.opts(base, "unused")]
        config = load_run_config(config_file, run_opts, cpu_fallback=build_models)
        if build_models and config.digest() not in built:
            config.build_model()
            built.add(config.digest())


def run_config(config_file, opts, base, run):
    """The config ``run`` trains with (without its output folder)."""
    return load_run_config(config_file, [*opts, *run.opts(base, "unused")])


def config_digests(config_file, opts, base):
    """A :class:`Run` -> the digest of the config it trains with, seed included (see
    :func:`run_config`): what :func:`train_unfinished` compares."""
    return lambda run: run_config(config_file, opts, base, run).digest()


def protocol_digest(config_file, opts):
    """A hash of the config every run starts from, without the seed and the output folder."""
    base = load_run_config(config_file, opts)
    return load_run_config(config_file, [*opts, *base.override(base.SEED_KEY, -1)]).digest()


def coco_dataset_options(coco_datasets):
    """The ``--coco-dataset`` options that register ``coco_datasets`` in a training process."""
    options = []
    for dataset in coco_datasets:
        options += ["--coco-dataset", dataset.name, dataset.json_file, dataset.image_root]
    return options


def runs_fingerprint(protocol, device, num_gpus=1):
    """The fingerprint (``focal_eiou_d2.engine.fingerprint``) of the runs of ``protocol`` on
    ``device``, each trained in ``num_gpus`` processes: with several, ``processes`` too (the
    gradients are averaged over the processes, each with its share of the batch and BatchNorm
    statistics of its own: other numbers than one process's).
    """
    found = fingerprint(protocol, device)
    return {**found, "processes": num_gpus} if num_gpus > 1 else found


def process_suffix(num_gpus):
    """What the folder of a training in ``num_gpus`` processes adds to its name ("" for one,
    "_x2" for two, ...), so that a training is never resumed with another process count (its
    numbers would be neither run's)."""
    return f"_x{num_gpus}" if num_gpus > 1 else ""


def quickstart(config_file, opts, output_dir, coco_options, log_file=None, num_gpus=1):
    """Train and evaluate one config in a fresh process (the quickstart job).

    Args:
        log_file (str or None): where the process's output goes (appended); None: to this
            process's output.
        num_gpus (int): the job's ``--num-gpus``: it trains in that many processes of its own.

    Returns:
        dict: its saved results (``quickstart_results.json``).

    Raises:
        CommandError: the process failed (its own output says why).
    """
    command = [sys.executable, "-m", "focal_eiou_d2.tools.quickstart", *coco_options]
    command += ["--config-file", config_file, "--output", output_dir]
    command += ["--num-visualizations", "0", "--num-gpus", str(num_gpus), *opts]
    try:
        if log_file is None:
            subprocess.run(command, check=True)
        else:
            os.makedirs(os.path.dirname(log_file) or ".", exist_ok=True)
            with open(log_file, "a") as log:
                subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    except subprocess.CalledProcessError as error:
        where = "above" if log_file is None else f"in {log_file}"
        raise CommandError(
            f"the training in {output_dir} failed (exit status {error.returncode}; its output "
            f"{where} says why)"
        ) from None
    with open(os.path.join(output_dir, RESULTS_FILE)) as f:
        return json.load(f)


def train(run, config_file, opts, base, output_dir, coco_options, log_file=None, num_gpus=1):
    """Train and evaluate one run in ``<output_dir>/runs/<run name>``.

    Args:
        run (Run): the run.
        config_file (str): the config every run starts from.
        opts (list[str]): its overrides (the shared backbone's included).
        base (YamlRunConfig or LazyRunConfig): that config, loaded with ``opts``.
        output_dir (str): the ablation's output folder.
        coco_options (list[str]): see :func:`coco_dataset_options`.
        log_file, num_gpus: see :func:`quickstart`.

    Returns:
        dict: the run's quickstart results.
    """
    run_dir = os.path.join(output_dir, "runs", run.name + process_suffix(num_gpus))
    run_opts = [*opts, *run.opts(base, run_dir)]
    return quickstart(config_file, run_opts, run_dir, coco_options, log_file, num_gpus)


def train_unfinished(runs, records, results_dir, wanted, digest_of, train_run, command):
    """Trains each run without a result, saves its result file and adds its record; says which
    runs finished earlier. A run whose config is that of a finished run reuses its result
    (:func:`finished_configs`).

    Args:
        runs (list[Run]): the planned runs, in order.
        records (dict[str, dict]): the records of the finished runs (those of the results folder
            with the fingerprint ``wanted``) by run name; completed here.
        results_dir (str): the results folder.
        wanted (dict): the fingerprint of the runs, which their records carry.
        digest_of (callable): a :class:`Run` -> the hash of its config, seed included.
        train_run (callable or None): a :class:`Run` -> its quickstart results, once trained;
            None: train nothing (the unfinished runs are left out).
        command (str): the command's name, which starts each line printed.
    """
    finished = finished_configs(records, {run.row.loss for run in runs}, digest_of)
    for run in runs:
        if run.name in records:
            print(f"[{command}] {run.name}: finished earlier, skipped", flush=True)
            continue
        digest = digest_of(run)
        if digest in finished:
            source, records[run.name] = finished[digest]
            print(f"[{command}] {run.name}: the config of {source}, finished earlier", flush=True)
        elif train_run is None:
            print(f"[{command}] {run.name}: not finished, left out", flush=True)
        else:
            record = result_record(run, train_run(run), wanted)
            save_result(results_dir, run.name, record)
            records[run.name], finished[digest] = record, (run.name, record)


def pretrained_backbone(
    pretrain, output_dir, coco_options, train_it, opts=(), log_file=None, num_gpus=1
):
    """The backbone every run starts from: the ``.pth`` file ``pretrain``, or the pretraining
    config ``pretrain`` trained once, in <output_dir>/pretrain, and exported as
    <output_dir>/pretrain/backbone.pth.

    Args:
        pretrain (str): an exported backbone (``.pth``) or the pretraining config.
        output_dir (str): the ablation's output folder.
        coco_options (list[str]): see :func:`coco_dataset_options`.
        train_it (bool): train the pretraining if it has not finished (else raise).
        opts (list[str]): overrides of the pretraining config.
        log_file, num_gpus: of the pretraining (see :func:`quickstart`).

    Returns:
        tuple[str, str]: the backbone file and its sha256 (the runs' fingerprint includes it).

    Raises:
        FileNotFoundError: ``pretrain`` names a ``.pth`` file that does not exist.
        OutputDirError: the pretraining has not finished and ``train_it`` is False.
    """
    if pretrain.endswith(".pth"):
        if not os.path.isfile(pretrain):
            raise FileNotFoundError(
                f"--pretrain {pretrain}: no such backbone file (give an exported "
                "backbone.pth, or the pretraining config to train it)"
            )
        return pretrain, file_digest(pretrain)
    folder = os.path.join(output_dir, "pretrain" + process_suffix(num_gpus))
    final = os.path.join(folder, FINAL_WEIGHTS)
    if not os.path.isfile(os.path.join(folder, RESULTS_FILE)):
        if not train_it:
            raise OutputDirError(f"the pretraining in {folder} has not finished")
        print(f"[ablate] {folder}: pretraining the backbone", flush=True)
    if train_it:  # a finished pretraining is reused by the quickstart job
        quickstart(pretrain, list(opts), folder, coco_options, log_file, num_gpus)
    backbone = os.path.join(folder, "backbone.pth")
    if not os.path.isfile(backbone):
        export_weights(final, backbone, BACKBONE_PREFIX)
    return backbone, file_digest(backbone)


def base_protocol(digest):
    """A recorded protocol digest without its backbone part (``<protocol>+backbone:<digest>``)."""
    return digest.split(BACKBONE_TAG)[0]


def recorded_backbones(results_dir, protocol):
    """The backbone digests (16 hexadecimal digits) of the result files of ``protocol`` (the
    protocol digest without its backbone part) in ``results_dir``, as a set."""
    recorded = (
        r.get("fingerprint", {}).get("protocol", "") for r in read_results(results_dir).values()
    )
    return {
        digest.split(BACKBONE_TAG)[1]
        for digest in recorded
        if BACKBONE_TAG in digest and base_protocol(digest) == protocol
    }


def check_one_fingerprint(results_dir, wanted, backbone_known=True):
    """Refuse to train into a results folder that holds a result file of another fingerprint (or
    of none): its runs could never be tabulated with these, and a run of the same name would
    replace it. A results folder holds the runs of one fingerprint.

    Args:
        results_dir (str): the folder of the result files.
        wanted (dict): this machine's fingerprint of the runs.
        backbone_known (bool): False before the pretraining: the protocols are compared without
            their backbone part.

    Raises:
        OutputDirError: the folder has such a result file; the message names what differs.
    """
    for name, record in sorted(read_results(results_dir).items()):
        recorded = record.get("fingerprint") if isinstance(record, dict) else None
        if not isinstance(recorded, dict):
            differs = "no fingerprint"
        else:
            if not backbone_known:
                recorded = {**recorded, "protocol": base_protocol(str(recorded.get("protocol")))}
            if recorded == wanted:
                continue
            differs = "; ".join(
                f"{key} {recorded.get(key)} (here: {wanted.get(key)})"
                for key in sorted(set(recorded) | set(wanted))
                if recorded.get(key) != wanted.get(key)
            )
        backbone_hint = ""
        if BACKBONE_TAG in differs:
            backbone_hint = " (or, for the backbone, give the kept file: --pretrain FILE.pth)"
        raise OutputDirError(
            f"{results_dir} holds runs of another fingerprint ({name}: {differs}); "
            "runs of other code, protocol, torch, hardware, process count or backbone are never "
            "tabulated together: train into another results folder (ablate's --results-dir, "
            f"rank's --output){backbone_hint}"
        )


def recorded_backbone(results_dir, protocol, missing):
    """The shared backbone the result files of ``protocol`` were trained from, for tabulating
    without the pretraining (``--finished-only`` in a fresh clone, whose ``output/`` is empty).

    Args:
        results_dir (str): the folder of the result files.
        protocol (str): the protocol digest without its backbone part.
        missing (Exception): why the pretraining's backbone cannot be read.

    Returns:
        str: the backbone digest (16 hexadecimal digits) of every result file of ``protocol``.

    Raises:
        OutputDirError: no result file of ``protocol``, or files of several backbones.
    """
    digests = recorded_backbones(results_dir, protocol)
    if len(digests) != 1:
        found = f"backbones {', '.join(sorted(digests))}" if digests else "no result file"
        raise OutputDirError(
            f"{missing}, and {results_dir} has {found} of this protocol; train "
            "the pretraining (run without --finished-only) to tabulate against its backbone"
        )
    (digest,) = digests
    print(
        f"[ablate] {missing}: tabulating the result files of backbone {digest} found in "
        f"{results_dir}",
        flush=True,
    )
    return digest


def tabulated_fingerprint(results_dir, wanted):
    """The fingerprint whose result files ``--finished-only`` tabulates: this machine's when it
    has result files of the protocol, else the only one they have (results trained with other
    code, torch or hardware are still one consistent table; they are never mixed).

    Args:
        results_dir (str): the folder of the result files.
        wanted (dict): this machine's fingerprint of the protocol.

    Raises:
        OutputDirError: the protocol's result files have several fingerprints, none of them this
            machine's.
    """
    found = {
        json.dumps(record["fingerprint"], sort_keys=True)
        for record in read_results(results_dir).values()
        if record.get("fingerprint", {}).get("protocol") == wanted["protocol"]
    }
    if not found or json.dumps(wanted, sort_keys=True) in found:
        return wanted
    if len(found) > 1:
        raise OutputDirError(
            f"{results_dir} has result files of this protocol under "
            f"{len(found)} fingerprints, none of them this machine's ({wanted}): tabulate them "
            "on the machine and code that trained them"
        )
    (recorded,) = found
    print(f"[ablate] tabulating the result files of another machine or code: {recorded}")
    return json.loads(recorded)


def result_record(run, saved, print_fingerprint):
    """The small result file of a finished run."""
    ap_per_iou = dict(zip(IOU_THRESHOLDS, saved["ap_per_iou"], strict=True))
    metrics = {"AP": saved["bbox"]["AP"]}
    metrics.update({f"AP{round(t * 100)}": ap_per_iou[t] for t in (0.5, 0.75, 0.85, 0.95)})
    return {
        "row": run.row.text,
        "setting": [list(item) for item in run.setting],
        "seed": run.seed,
        "metrics": metrics,
        "bbox": saved["bbox"],
        "ap_per_iou": saved["ap_per_iou"],
        "fingerprint": print_fingerprint,
        "commit": git_commit(),
    }


def save_result(results_dir, name, record):
    """Writes ``record`` as ``<results_dir>/<name>.json``, whole or not at all."""
    partial = os.path.join(results_dir, name + ".json.partial")
    with open(partial, "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
    os.replace(partial, os.path.join(results_dir, name + ".json"))


def read_results(results_dir):
    """Every result file of ``results_dir`` (none if it does not exist), by run name."""
    records = {}
    if os.path.isdir(results_dir):
        for name in sorted(os.listdir(results_dir)):
            if name.endswith(".json"):
                with open(os.path.join(results_dir, name)) as f:
                    records[name[: -len(".json")]] = json.load(f)
    return records


def load_results(results_dir, wanted):
    """The result files of ``results_dir`` whose fingerprint is ``wanted``, by run name; and the
    names of those of another fingerprint."""
    found, other = {}, []
    for name, record in read_results(results_dir).items():
        if record.get("fingerprint") == wanted:
            found[name] = record
        else:
            other.append(name)
    return found, other


def finished_configs(records, losses, digest_of):
    """The finished runs by the hash of their config, so that a planned run with the config of a
    finished one (e.g. ``--set MODEL.FOCAL_EIOU.GAMMA=0.5`` and the ``focal_eiou`` row, when 0.5
    is the default) reuses its result instead of training again.

    Args:
        records (dict[str, dict]): finished result records by run name (each has ``row``,
            ``setting`` and ``seed``).
        losses (set[str]): the planned rows' losses (records of other losses cannot match).
        digest_of (callable): a :class:`Run` -> the hash of its config, seed included.

    Returns:
        dict[str, tuple[str, dict]]: by config hash, the name and record of a finished run.
        Records this runner can no longer read as a run are left out, with one line each.
    """
    found = {}
    for name, record in records.items():
        if record["row"].split("[")[0] not in losses:
            continue
        try:
            setting = tuple(tuple(item) for item in record["setting"])
            finished = Run(parse_row(record["row"]), setting, record["seed"])
            found.setdefault(digest_of(finished), (name, record))
        except (argparse.ArgumentTypeError, KeyError, ValueError) as error:
            print(f"[ablate] {name}: not a run of this config ({error}), not reused", flush=True)
    return found
