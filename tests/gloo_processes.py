"""Two (or more) gloo processes on the CPU for the multi-process tests, which join in bounded time.

gloo's collectives wait 30 minutes by default: processes that disagree about a collective would
hang the test suite. Here every process group times out after :data:`COLLECTIVE_TIMEOUT` and the
test fails after :data:`JOIN_TIMEOUT` at the latest, killing what is left.
"""

import datetime
import time

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

COLLECTIVE_TIMEOUT = datetime.timedelta(seconds=60)
JOIN_TIMEOUT = 120


def init_gloo(rank, world_size, init_file):
    """Join the gloo process group of ``world_size`` processes rendezvousing at ``init_file``."""
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world_size,
        timeout=COLLECTIVE_TIMEOUT,
    )


def finish_gloo():
    """Leave the process group once every process is done with it (a process that tears gloo
    down while another still uses it makes that one abort, rarely)."""
    dist.barrier()
    dist.destroy_process_group()


def run_processes(worker, args=(), nprocs=2, timeout=JOIN_TIMEOUT):
    """Run ``worker(rank, *args)`` in ``nprocs`` spawned processes.

    Raises:
        torch.multiprocessing.ProcessRaisedException: a process raised (the others are killed).
        Failed: the processes did not all finish within ``timeout`` seconds (they are killed).
    """
    context = mp.start_processes(worker, args=args, nprocs=nprocs, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not context.join(timeout=max(deadline - time.monotonic(), 0.1)):
        if time.monotonic() >= deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the {nprocs} processes did not finish within {timeout} s")
