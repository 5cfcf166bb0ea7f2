"""How long a ranking of box losses takes: a short timed warm-up of a config, the estimate of a
full run from it, the largest seed count that fits a time budget, and the progress line.

The warm-up trains the config for a few iterations through the quickstart job, in its own
process, and evaluates it as a run does: its wall time is what a run costs besides its
iterations (process start, data, model, evaluation); the iteration time Detectron2 logs in its
``metrics.json`` prices the remaining iterations. A warm-up is kept in
``<folder>/<config digest>x<processes>.json``, so a resumed ranking does not time it again.
"""

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass

from focal_eiou_d2.engine import load_run_config
from focal_eiou_d2.tools.run_store import quickstart

# Where Detectron2's trainers log their iteration times.
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class Timing:
    """A timed warm-up: its wall time, its iterations and the time of one iteration."""

    seconds: float
    iterations: int
    seconds_per_iteration: float

    def estimate(self, max_iter):
        """Seconds of a run of the warmed-up config with ``max_iter`` iterations."""
        return self.seconds + max(0, max_iter - self.iterations) * self.seconds_per_iteration


def schedule(config):
    """The iterations and the images per batch of a loaded config.

    Returns:
        tuple[int, int]: (iterations, images per batch).
    """
    return int(config.get(config.MAX_ITER_KEY)), int(config.get(config.BATCH_KEY))


def logged_iteration_time(run_dir):
    """The last iteration time (seconds, Detectron2's windowed median) in ``run_dir``'s
    ``metrics.json``, or None if none was logged (too few iterations)."""
    path = os.path.join(run_dir, METRICS_FILE)
    if not os.path.isfile(path):
        return None
    times = []
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if "time" in record:
                times.append(float(record["time"]))
    return times[-1] if times else None


def warm_up(config_file, opts, folder, coco_options, iterations, log_file, num_gpus):
    """Times ``iterations`` iterations (at most the config's own) of ``config_file`` with
    ``opts``, evaluation included, in ``num_gpus`` processes, or reads the timing of an earlier
    warm-up of that config and process count.

    Args:
        config_file (str): the config.
        opts (list[str]): its overrides (seed and loss included).
        folder (str): where warm-ups and their timings are kept.
        coco_options (list[str]): ``--coco-dataset`` options of the training process.
        iterations (int): iterations to time.
        log_file (str): where the training process's output goes.
        num_gpus (int): the quickstart job's ``--num-gpus``.

    Returns:
        Timing: the warm-up's timing.
    """
    config = load_run_config(config_file, opts)
    iterations = min(iterations, schedule(config)[0])
    warm_opts = [*opts, *config.override(config.MAX_ITER_KEY, iterations)]
    name = f"{load_run_config(config_file, warm_opts).digest()}x{num_gpus}"
    timing_file = os.path.join(folder, f"{name}.json")
    if os.path.isfile(timing_file):
        with open(timing_file) as f:
            return Timing(**json.load(f))
    run_dir = os.path.join(folder, name)
    shutil.rmtree(run_dir, ignore_errors=True)  # an untimed earlier warm-up would be reused
    print(f"[rank] timing a warm-up: {iterations} iterations (log: {log_file})", flush=True)
    start = time.monotonic()
    quickstart(config_file, warm_opts, run_dir, coco_options, log_file, num_gpus)
    seconds = time.monotonic() - start
    per_iteration = logged_iteration_time(run_dir) or seconds / iterations
    timing = Timing(seconds, iterations, per_iteration)
    with open(timing_file + ".partial", "w") as f:
        json.dump(asdict(timing), f)
    os.replace(timing_file + ".partial", timing_file)
    return timing


def largest_seed_count(budget, fixed, per_run, runs_to_train):
    """The largest seed count n >= 2 whose remaining work fits ``budget``.

    Args:
        budget (float): seconds available.
        fixed (float): seconds spent whatever the seed count (e.g. a pretraining).
        per_run (float): seconds of one run (> 0).
        runs_to_train (callable): n -> the number of runs of n seeds not finished yet.

    Returns:
        int or None: the seed count; None if 2 seeds do not fit.
    """
    count = 1
    while fixed + per_run * runs_to_train(count + 1) <= budget:
        count += 1
    return count if count >= 2 else None


def format_duration(seconds):
    """``1 h 05 min``, ``4 min 10 s`` or ``45 s``."""
    seconds = int(math.ceil(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def progress_line(done, total, elapsed, left, width=20):
    """``[#####---------------] 1/4 runs, 3 min 10 s so far, about 9 min 30 s left``."""
    filled = round(width * done / total) if total else width
    bar = "#" * filled + "-" * (width - filled)
    return (
        f"[{bar}] {done}/{total} runs, {format_duration(elapsed)} so far, "
        f"about {format_duration(left)} left"
    )
