"""Decisions that every training process must take alike.

A decision that gates a collective call (a checkpoint that all-gathers, a barrier) must be the
same on every process, or the processes that took the other branch wait forever. A process's view
of a shared filesystem is not enough for that: NFS caches file attributes per machine, so one
machine may see a checkpoint that another does not yet. Such decisions are taken on the main
process and broadcast (:func:`main_decides`); actions every process must complete alike report
their outcome to all (:func:`on_every_process`).
"""

import socket

from detectron2.utils import comm


def main_decides(decide):
    """Run ``decide`` on the main process and return its result on every process.

    A collective call when several processes train: every process must make it, and every
    process leaves it alike: with the result, or with an error when ``decide`` raised (the main
    process re-raises its own, the others raise a RuntimeError that quotes it).

    Args:
        decide (callable): takes no argument; returns a picklable value.

    Returns:
        what ``decide`` returned on the main process.
    """
    if comm.get_world_size() == 1:
        return decide()
    value, error = None, None
    if comm.is_main_process():
        try:
            value = decide()
        except Exception as raised:  # reported to every process below, then re-raised
            error = raised
    summary = None if error is None else f"{type(error).__name__}: {error}"
    value, summary = comm.all_gather((value, summary))[0]
    if error is not None:
        raise error
    if summary is not None:
        raise RuntimeError(f"the main training process failed to decide: {summary}")
    return value


def on_every_process(action, errors):
    """Run ``action`` on every process and tell every process where it failed.

    A collective call when several processes train: every process must make it.

    Args:
        action (callable): takes no argument.
        errors (type or tuple[type]): the exceptions that count as a failure. Any other
            exception is re-raised where it happened, after every process has heard of it, and
            the other processes raise a RuntimeError naming it: none waits in a collective.

    Returns:
        tuple: ``(result, error, failures)``: what ``action`` returned here (None if it failed),
        the error it raised here (or None), and ``[(rank, host, "Type: message"), ...]`` for
        every process where it failed.
    """
    result, error = None, None
    try:
        result = action()
    except Exception as raised:  # reported to every process below
        error = raised
    summary = None if error is None else f"{type(error).__name__}: {error}"
    expected = error is None or isinstance(error, errors)
    if comm.get_world_size() == 1:
        outcomes = [(socket.gethostname(), summary, expected)]
    else:
        outcomes = comm.all_gather((socket.gethostname(), summary, expected))
    if not expected:
        raise error
    unexpected = [
        (rank, host, problem) for rank, (host, problem, fine) in enumerate(outcomes) if not fine
    ]
    if unexpected:
        raise RuntimeError(f"another training process failed: {describe_failures(unexpected)}")
    failures = [
        (rank, host, problem)
        for rank, (host, problem, _) in enumerate(outcomes)
        if problem is not None
    ]
    return result, error, failures


def describe_failures(failures):
    """``failures`` of :func:`on_every_process` as "rank 1 (host): Type: message; ..."."""
    return "; ".join(f"rank {rank} ({host}): {problem}" for rank, host, problem in failures)
