"""A simulation experiment: one setup, several losses, one results.json."""

import json
import platform
from pathlib import Path

import torch

from .boxes import AlignedIoU
from .config import SimulationConfig
from .engine import regress
from .losses import SimulationLoss
from .metrics import QUANTILE_LEVELS, MetricRecorder, quantile_iterations
from .setups import SETUPS, PairSet, build_pairs

RESULTS_FILE = "results.json"
SUMMARY_STEPS = (50, 100)


def pairs_of(config: SimulationConfig) -> PairSet:
    """The anchor-target pairs a config describes."""
    return build_pairs(
        config.setup,
        target_area=config.target_area,
        points=config.points,
        num_points=config.num_points,
        seed=config.seed,
        dtype=config.torch_dtype,
        device=config.device,
    )


def run_experiment(config: SimulationConfig, progress: bool = True) -> dict:
    """Regress every pair of the setup under every loss of the config.

    Args:
        config (SimulationConfig): the run's options.
        progress (bool): show a tqdm bar per loss.

    Returns:
        dict: {"config", "setup", "environment", "quantile_levels", "losses": {name: result}};
        "setup" holds the number of pairs and the share of pairs whose anchor does not overlap
        its target; each result has "params", "error" (T + 1), "mean_iou" (T + 1),
        "quantile_iterations", "iou_quantiles" (one list of len(quantile_levels) per stored
        iteration), "final",
        "wall_time_s" and "first_step_s" (the first update alone, with any one-off cost of the
        first call).
    """
    pairs = pairs_of(config)
    initial_iou = AlignedIoU(pairs.targets)(pairs.anchors)
    results = {
        "config": config.to_dict(),
        "setup": {
            "description": SETUPS[config.setup].description,
            "num_pairs": len(pairs),
            "share_no_overlap_initial": float((initial_iou <= 0).double().mean()),
        },
        "environment": _environment(),
        "quantile_levels": list(QUANTILE_LEVELS),
        "losses": {},
    }
    for name in config.losses:
        results["losses"][name] = run_loss(name, pairs, config, progress)
    return results


def run_loss(name: str, pairs: PairSet, config: SimulationConfig, progress: bool) -> dict:
    """Run Algorithm 1 for one loss and return its JSON-serializable result."""
    loss = SimulationLoss(name, pairs.targets, config.loss_params.get(name))
    recorder = MetricRecorder(
        pairs.targets,
        config.iterations,
        quantile_iterations(config.iterations, config.quantile_every),
    )
    outcome = regress(
        loss,
        pairs.anchors,
        recorder,
        config.schedule,
        update=config.update,
        min_size=config.min_size,
        progress=name if progress else None,
    )
    return {
        "params": loss.params,
        **recorder.to_dict(),
        "final": recorder.final_stats(outcome.boxes, outcome.iou),
        "wall_time_s": outcome.wall_time_s,
        "first_step_s": outcome.first_step_s,
    }


def save_results(results: dict, output_dir: Path) -> Path:
    """Write ``results.json`` into ``output_dir`` (created if needed) and return its path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / RESULTS_FILE
    path.write_text(json.dumps(results, indent=1))
    return path


def load_results(path: Path) -> dict:
    """Read a results.json written by :func:`save_results` (ValueError if it is not JSON)."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not a results.json of a run: {error}") from error


def describe(results: dict) -> str:
    """One line naming the setup and every option that shapes the numbers."""
    config, setup = results["config"], results["setup"]
    return (
        f"{config['reading']} reading, {config['setup']}: {setup['num_pairs']:,} pairs, "
        f"target area {config['target_area']:g}, points {config['points']}, "
        f"update {config['update']}, T={config['iterations']}, lr={config['base_lr']}, "
        f"{config['dtype']}, seed {config['seed']}; "
        f"{setup['share_no_overlap_initial']:.3f} of the pairs start without overlap"
    )


def summary_table(results: dict, steps: tuple[int, ...] = SUMMARY_STEPS) -> str:
    """Markdown table: error at chosen t and at T, final mean IoU, share IoU > 0.9, time.

    The first step's time includes any one-off cost of the first call.
    """
    iterations = results["config"]["iterations"]
    steps = tuple(t for t in steps if t < iterations)
    header = ["loss", "E(0)"] + [f"E({t})" for t in steps] + [f"E({iterations})"]
    header += ["mean IoU", "IoU>0.9", "no overlap at T", "time (s)", "of which 1st step"]
    lines = [describe(results), "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, result in results["losses"].items():
        error, final = result["error"], result["final"]
        row = [name] + [f"{error[t]:.4g}" for t in (0,) + steps + (iterations,)]
        row += [f"{final['mean_iou']:.4f}", f"{final['share_iou_gt_0.9']:.3f}"]
        row += [f"{final['share_no_overlap']:.3f}", f"{result['wall_time_s']:.1f}"]
        row += [f"{result['first_step_s']:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _environment() -> dict:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "num_threads": torch.get_num_threads(),
    }
