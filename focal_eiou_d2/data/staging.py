"""Hidden work folders for atomic installs, owned by a process and removed once it is gone.

A work folder is named ``.<label>.<random>.<kind>-<pid>@<host>``: ``staging`` folders are built
and then renamed into place, ``old`` folders hold what an install replaces until it is deleted. A
process killed before it cleans up leaves its work folders behind; ``remove_stale`` deletes those
whose owner is a process of this host that no longer runs. Folders of other hosts (a shared
filesystem) are kept, since their owner cannot be checked from here.
"""

import os
import re
import shutil
import socket
import tempfile

STAGING, OLD = "staging", "old"
WORK_NAME = re.compile(r"^\..+\.(?P<kind>staging|old)-(?P<pid>\d+)@(?P<host>[^@/]+)$")


def make_work_dir(parent, label, kind):
    """Creates and returns an empty work folder of this process in ``parent``.

    Args:
        parent (str): existing folder; the work folder is its child (same filesystem).
        label (str): what the folder is for, e.g. the split it stages.
        kind (str): ``STAGING`` or ``OLD``.
    """
    suffix = f".{kind}-{os.getpid()}@{socket.gethostname()}"
    path = tempfile.mkdtemp(prefix=f".{label}.", suffix=suffix, dir=parent)
    os.chmod(path, 0o755)  # mkdtemp makes it private; what it becomes is not
    return path


def is_running(pid):
    """Whether a process with id ``pid`` exists on this host (zombies included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def stale_work_dirs(parent):
    """Returns the paths of work folders in ``parent`` whose owner process is gone."""
    host = socket.gethostname()
    stale = []
    for name in os.listdir(parent):
        match = WORK_NAME.match(name)
        if match and match["host"] == host and not is_running(int(match["pid"])):
            stale.append(os.path.join(parent, name))
    return stale


def remove_stale(parent):
    """Deletes the work folders in ``parent`` left by processes of this host that are gone.

    Returns:
        list[str]: the deleted folders.
    """
    stale = stale_work_dirs(parent) if os.path.isdir(parent) else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def install(staging, target, is_current):
    """Renames the complete folder ``staging`` to ``target``, replacing an outdated ``target``.

    If ``target`` already exists and ``is_current(target)`` holds (another process installed the
    same content meanwhile), it is kept and ``staging`` is left for the caller to delete.

    Args:
        staging (str): complete folder, a sibling of ``target``.
        target (str): final path.
        is_current (callable): ``is_current(path) -> bool``.
    """
    if is_current(target):
        return
    parent = os.path.dirname(target)
    old = make_work_dir(parent, os.path.basename(target), OLD)
    try:
        if os.path.isdir(target):
            os.replace(target, old)
        os.replace(staging, target)
    except OSError:
        if not is_current(target):
            raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
