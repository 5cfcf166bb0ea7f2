"""An output folder belongs to one run at a time, and to one config.

A training tool claims its output folder before any work (:func:`claim_output_dir`):

- **one run at a time**: it takes an exclusive lock on ``<folder>/.lock`` (``flock``), held until
  the process exits. The kernel releases it when the process is gone, killed or not, so a stale
  lock file never blocks a later run. A second process gets :class:`OutputDirError` naming the
  process that holds the folder. Where the filesystem has no ``flock`` (NFS without a lock
  daemon, Lustre mounted without ``-o flock``), a warning says so and the folder is claimed by
  creating ``<folder>/.lock.owner`` exclusively instead (see :func:`_claim_by_owner_file`).
- **one config**: ``<folder>/run.json`` records the digest of the config that trains there. A
  different config never overwrites that run: :class:`OutputDirError` says where the run is, and
  that ``--force`` (which lists what it deletes) or another folder starts afresh. A folder with
  run files but no ``run.json`` (for example one written by plain Detectron2) counts as another
  config's run.
"""

import atexit
import datetime
import errno
import fcntl
import json
import logging
import os
import shutil
import socket
import sys

logger = logging.getLogger(__name__)

MANIFEST = "run.json"
LOCK = ".lock"
# The lock where flock is not available: created exclusively, it names its host and process.
OWNER_FILE = ".lock.owner"
# What a run writes into its folder (Detectron2's trainer and this project's tools); --force
# deletes these and nothing else.
RUN_FILES = (
    "last_checkpoint",
    "metrics.json",
    "config.yaml",
    "log.txt",
    "quickstart_results.json",
    MANIFEST,
)
RUN_FILE_PREFIXES = ("model_", "events.out.tfevents.", "log.txt.rank")
RUN_FOLDERS = ("inference", "visualizations")
# What makes a run worth keeping: checkpoints and results (logs alone are not).
RESULT_FILES = ("last_checkpoint", "quickstart_results.json", "inference/")

# What flock raises on a filesystem that cannot lock (NFSv3 without lockd, Lustre without
# -o flock): these fall back to the owner file; any other error is reported.
NO_LOCKING = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}

_held_locks = {}


class OutputDirError(RuntimeError):
    """The output folder cannot be used by this run; the message says why and what to do."""


def run_files(folder):
    """The files and folders of a run in ``folder`` (what ``--force`` deletes), sorted."""
    if not os.path.isdir(folder):
        return []
    found = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            if name in RUN_FOLDERS:
                found.append(name + "/")
        elif name in RUN_FILES or name.startswith(RUN_FILE_PREFIXES):
            found.append(name)
    return found


def read_manifest(folder):
    """The ``run.json`` of ``folder``, or None if it has none (or an unreadable one)."""
    try:
        with open(os.path.join(folder, MANIFEST)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def lock_output_dir(folder):
    """Take the folder's lock for the rest of this process's life (idempotent in a process).

    Raises:
        OutputDirError: another process holds it, or it cannot be created or written.
    """
    folder = os.path.abspath(folder)
    if folder in _held_locks:
        return
    try:
        os.makedirs(folder, exist_ok=True)
        handle = open(os.path.join(folder, LOCK), "a+")
    except OSError as error:
        raise OutputDirError(
            f"cannot use {folder} as output folder ({error.strerror}): choose a folder you can "
            "write to"
        ) from error
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise OutputDirError(
            f"{folder} is in use by {holder}. Wait for that run to end, or choose another output "
            "folder."
        ) from None
    except OSError as error:
        handle.close()
        if error.errno not in NO_LOCKING:
            raise OutputDirError(
                f"cannot lock {folder} ({error.strerror}): choose a folder you can write to"
            ) from error
        logger.warning(
            "the filesystem of %s cannot lock files (flock: %s; NFS without a lock daemon, or "
            "Lustre without -o flock?): the folder is claimed with the file %s instead, which "
            "protects it from another run on this machine, and from another machine only while "
            "the file exists (docs/reliability.md)",
            folder,
            error.strerror,
            OWNER_FILE,
        )
        _held_locks[folder] = _claim_by_owner_file(folder)
        return
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()} (started {_now()}: {' '.join(sys.argv)})\n")
    handle.flush()
    _held_locks[folder] = handle


def _claim_by_owner_file(folder):
    """Claim ``folder`` by creating ``OWNER_FILE`` exclusively (``O_CREAT | O_EXCL``), naming this
    host and process; it is removed when this process exits normally.

    A file left by a killed process is stale, and taken over with a warning, only when it names
    this host and a process that no longer exists here. A file of another host is never taken as
    stale: that host's processes cannot be seen from here.

    Returns:
        str: the path of the owner file.

    Raises:
        OutputDirError: the file names a live process of this host, or another host.
    """
    path = os.path.join(folder, OWNER_FILE)
    owner = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": _now(),
        "command": " ".join(sys.argv),
    }
    for _ in range(2):  # a second try after removing a stale file
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_owner(path)
            if not _is_stale(holder):
                raise OutputDirError(
                    f"{folder} is in use by process {holder.get('pid', '?')} on host "
                    f"{holder.get('host', '?')} (started {holder.get('started', '?')}: "
                    f"{holder.get('command', '?')}), according to {path}. Wait for that run to "
                    "end, or choose another output folder; if that process is gone, delete "
                    f"{path}."
                ) from None
            logger.warning(
                "taking over %s from process %s of this host, which no longer runs",
                path,
                holder["pid"],
            )
            os.remove(path)
            continue
        with os.fdopen(descriptor, "w") as f:
            json.dump(owner, f)
        atexit.register(_release_owner_file, path, owner)
        return path
    raise OutputDirError(f"cannot claim {folder}: {path} keeps reappearing")


def _read_owner(path):
    """The owner recorded in an owner file ({} when it is empty or unreadable)."""
    try:
        with open(path) as f:
            owner = json.load(f)
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _is_stale(owner):
    """Whether ``owner`` names a process of this host that no longer exists."""
    if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return False
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # a live process of another user
        pass
    return False


def _release_owner_file(path, owner):
    """Remove the owner file at exit if it still names this process."""
    if _read_owner(path) == owner:
        os.remove(path)


def _now():
    return datetime.datetime.now().isoformat(timespec="seconds")


def claim_output_dir(config, *, force=False, classes=None):
    """Claim the output folder of ``config`` for training it: lock it, check it holds no other
    config's run, record this config.

    Args:
        config (YamlRunConfig or LazyRunConfig): the config to train (its ``output_dir``,
            ``digest()`` and ``config_file``).
        force (bool): delete the run in the folder (the files of :func:`run_files`, listed in
            the log), this config's or another's, instead of refusing or reusing it.
        classes (list[str] or None): the class names of the training data, recorded in
            ``run.json`` for the tools that load the trained weights.

    Returns:
        bool: True if the folder holds a run of this very config (to resume or reuse), False if
        the run starts afresh.

    Raises:
        OutputDirError: the folder is in use, or holds another config's run and not ``force``.
    """
    folder = config.output_dir
    lock_output_dir(folder)
    same_config, replaced = check_output_dir(config, force=force)
    if same_config:
        return True
    if replaced:
        logger.warning("--force: deleting the run in %s: %s", folder, ", ".join(replaced))
        for name in replaced:
            path = os.path.join(folder, name)
            shutil.rmtree(path) if name.endswith("/") else os.remove(path)
    write_manifest(folder, config.digest(), config.config_file, classes)
    return False


def check_output_dir(config, *, force=False):
    """The checks of :func:`claim_output_dir` that only read the folder: what the machines of a
    run that do not claim it make before they start, so that a refusal stops every machine.

    Returns:
        tuple[bool, list[str]]: whether the folder holds a run of this very config (and not
        ``force``), and the files and folders ``force`` deletes (empty when there is nothing to
        replace).

    Raises:
        OutputDirError: the folder holds another config's run and not ``force``.
    """
    folder = config.output_dir
    manifest = read_manifest(folder)
    existing = run_files(folder)
    if manifest is not None and manifest.get("config_digest") == config.digest() and not force:
        return True, []
    keep = [name for name in existing if name in RESULT_FILES or name.startswith("model_")]
    if keep and not force:
        what = (
            f"a run of another config (started {manifest.get('started', '?')} by: "
            f"{manifest.get('command', '?')})"
            if manifest
            else f"files of a run this tool did not start ({', '.join(existing[:4])}, ...)"
        )
        raise OutputDirError(
            f"{folder} holds {what}; it is not overwritten. Use another output folder for this "
            f"config, or --force to delete that run ({len(existing)} files and folders) and train "
            "this config there."
        )
    return False, existing if keep else []


def write_manifest(folder, digest, config_file=None, classes=None):
    """Record in ``run.json`` which config trains in ``folder`` (and on which classes)."""
    manifest = {
        "config_digest": digest,
        "config_file": config_file,
        "classes": list(classes) if classes is not None else None,
        "started": _now(),
        "command": " ".join(sys.argv),
    }
    partial = os.path.join(folder, MANIFEST + ".partial")
    with open(partial, "w") as f:
        json.dump(manifest, f, indent=2)
    os.replace(partial, os.path.join(folder, MANIFEST))


def run_classes(weights):
    """The class names recorded by the run that wrote ``weights`` (its folder's ``run.json``),
    or None when the weights come from elsewhere."""
    if not weights or "://" in weights:
        return None
    manifest = read_manifest(os.path.dirname(os.path.abspath(weights)))
    return None if manifest is None else manifest.get("classes")
