"""The report of a ranking of box losses: per loss the COCO metrics over seeds, each loss's
difference to the baseline paired by seed with its 95 % confidence interval (Student t,
``focal_eiou_d2.evaluation.statistics``), the ranking by AP with what is resolved and what is
not, the seeds that would resolve what is not, and the config lines that switch a model to the
winner.

:func:`build_report` computes it from the result records of ``focal_eiou_d2.tools.run_store``,
:func:`write_report` writes ``report.md``, ``report.json`` and ``ap_vs_iou.png``.
"""

import json
import math
import os
from statistics import NormalDist

from focal_eiou_d2.evaluation import IOU_THRESHOLDS
from focal_eiou_d2.evaluation.statistics import CONFIDENCE, mean_std, paired_difference
from focal_eiou_d2.tools.protocol_tables import format_delta, plot_ap_vs_iou, summarize
from focal_eiou_d2.tools.run_store import Row

# The COCO metrics of the report, as the evaluation (``COCOEvaluator``) gives them.
METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
# The normal quantile of the confidence level (1.96 for 95 %).
Z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)


def seeds_to_resolve(difference, std, pairs):
    """The seeds that would resolve a paired difference, by the normal approximation
    n = (z s / |d|)^2 with the paired standard deviation s and the mean difference d, and at
    least one more than ``pairs``; None for d = 0 (nothing to resolve)."""
    if difference == 0 or math.isnan(difference):
        return None
    return max(math.ceil((Z * std / abs(difference)) ** 2), pairs + 1)


def compare(values, reference):
    """The difference of ``values`` to ``reference`` paired by seed.

    Args:
        values (dict[int, float]): by seed.
        reference (dict[int, float]): by seed.

    Returns:
        dict: ``difference`` (mean), ``half_width`` (of its 95 % interval, NaN for one pair),
        ``pairs``, ``std`` (sample std of the differences), ``resolved`` (the interval excludes
        0) and ``seeds_to_resolve`` (None when resolved, see :func:`seeds_to_resolve`).
    """
    seeds = sorted(set(values) & set(reference))
    ours, theirs = [values[s] for s in seeds], [reference[s] for s in seeds]
    difference, half_width, pairs = paired_difference(ours, theirs)
    std = mean_std([a - b for a, b in zip(ours, theirs, strict=True)])[1] if pairs else math.nan
    resolved = pairs >= 2 and abs(difference) > half_width
    return {
        "difference": difference,
        "half_width": half_width,
        "pairs": pairs,
        "std": std,
        "resolved": resolved,
        "seeds_to_resolve": (
            None if resolved or pairs < 2 else seeds_to_resolve(difference, std, pairs)
        ),
    }


def switch_lines(config, loss):
    """The config lines that switch ``config``'s kind of model to ``loss`` (the paper's weight):
    YAML keys for a YAML config, ``use_box_loss`` for a LazyConfig.

    Args:
        config (YamlRunConfig or LazyRunConfig): the ranked config.
        loss (str): the loss.

    Returns:
        tuple[str, str]: (language of the code block, its lines).
    """
    if config.kind == "lazy":
        return (
            "python",
            f'from focal_eiou_d2.lazy_config import use_box_loss\nuse_box_loss(model, "{loss}")',
        )
    overrides = config.loss_overrides(loss)
    lines, opened = [], []
    for key, value in zip(overrides[::2], overrides[1::2], strict=True):
        *parents, name = key.split(".")
        common = 0
        while common < min(len(opened), len(parents)) and opened[common] == parents[common]:
            common += 1
        opened = opened[:common]
        for parent in parents[common:]:
            lines.append("  " * len(opened) + f"{parent}:")
            opened.append(parent)
        text = value if _is_number(value) else f'"{value}"'
        lines.append("  " * len(opened) + f"{name}: {text}")
    return "yaml", "\n".join(lines)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _stats(values):
    mean, std = mean_std(values)
    return {"mean": mean, "std": std}


def by_loss_and_seed(runs, records):
    """{loss: {seed: record}} of the finished runs among ``runs``."""
    found = {}
    for run in runs:
        if run.name in records:
            found.setdefault(run.row.loss, {})[run.seed] = records[run.name]
    return found


def rank_by_ap(losses, results):
    """The losses by mean AP, best first, each with its AP difference to the baseline and to the
    loss ranked below it, paired by seed.

    Args:
        losses (list[dict]): the report's entries of the losses.
        results (dict[str, dict[int, dict]]): result records by loss and seed.

    Returns:
        list[dict]: ``rank``, ``loss``, ``AP`` (mean and std), ``vs_baseline`` and ``vs_next``
        (see :func:`compare`, with the next ``loss``; None for the last).
    """
    ranked = sorted(losses, key=lambda entry: -entry["metrics"]["AP"]["mean"])
    ap = {
        loss: {seed: r["bbox"]["AP"] for seed, r in found.items()}
        for loss, found in results.items()
    }
    ranking = []
    for place, entry in enumerate(ranked):
        below = ranked[place + 1]["loss"] if place + 1 < len(ranked) else None
        ranking.append(
            {
                "rank": place + 1,
                "loss": entry["loss"],
                "AP": entry["metrics"]["AP"],
                "vs_baseline": entry["vs_baseline"]["AP"],
                "vs_next": below and {"loss": below, **compare(ap[entry["loss"]], ap[below])},
            }
        )
    return ranking


def closest_unresolved(ranking, baseline):
    """Of the ranking's unresolved differences of at least 2 pairs (to the next loss and to the
    baseline), the one of the smallest mean, as ``loss``, ``other`` and :func:`compare`'s
    entries; None if every difference is resolved."""
    pairs = [(i["loss"], i["vs_next"]["loss"], i["vs_next"]) for i in ranking if i["vs_next"]]
    pairs += [(i["loss"], baseline, i["vs_baseline"]) for i in ranking if i["loss"] != baseline]
    unresolved = [p for p in pairs if not p[2]["resolved"] and p[2]["pairs"] >= 2]
    closest = min(unresolved, key=lambda p: abs(p[2]["difference"]), default=None)
    if closest is None:
        return None
    return {**closest[2], "loss": closest[0], "other": closest[1]}


def build_report(runs, records, baseline, config, meta):
    """The report of the finished runs.

    Args:
        runs (list[focal_eiou_d2.tools.run_store.Run]): the planned runs (no grid).
        records (dict[str, dict]): finished result records by run name.
        baseline (str): the baseline loss.
        config (YamlRunConfig or LazyRunConfig): the ranked config (for the switch lines).
        meta (dict): what the report records beside the results (command, datasets, ...).

    Returns:
        dict: ``losses`` (per loss: ``metrics`` mean and std, ``ap_per_iou``, ``vs_baseline``
        per metric), ``ranking`` (by mean AP: ``vs_baseline`` and ``vs_next``),
        ``closest_unresolved`` and ``winner``, with ``meta``'s entries.
    """
    results = by_loss_and_seed(runs, records)
    losses = []
    for loss, by_seed in results.items():
        entry = {"loss": loss, "label": Row(loss).label, "seeds": sorted(by_seed)}
        entry["metrics"] = {
            metric: _stats([r["bbox"][metric] for r in by_seed.values()]) for metric in METRICS
        }
        per_iou = zip(*(r["ap_per_iou"] for r in by_seed.values()), strict=True)
        entry["ap_per_iou"] = [
            {"iou": iou, **_stats(values)}
            for iou, values in zip(IOU_THRESHOLDS, per_iou, strict=True)
        ]
        entry["vs_baseline"] = {
            metric: compare(
                {seed: r["bbox"][metric] for seed, r in by_seed.items()},
                {seed: r["bbox"][metric] for seed, r in results.get(baseline, {}).items()},
            )
            for metric in METRICS
        }
        losses.append(entry)
    ranking = rank_by_ap(losses, results)
    closest = closest_unresolved(ranking, baseline)
    winner = ranking[0]["loss"] if ranking else None
    language, lines = switch_lines(config, winner) if winner else (None, None)
    return {
        **meta,
        "baseline": baseline,
        "confidence": CONFIDENCE,
        "losses": losses,
        "ranking": ranking,
        "closest_unresolved": closest,
        "winner": {"loss": winner, "language": language, "config_lines": lines},
    }


def _cell(stats):
    mean, std = stats["mean"], stats["std"]
    return "-" if math.isnan(mean) else f"{mean:.2f} ± {std:.2f}"


def _delta(comparison):
    return format_delta((comparison["difference"], comparison["half_width"], comparison["pairs"]))


def verdict(comparison):
    """``resolved``, ``not resolved (about N seeds)`` or ``not resolved (1 pair)``."""
    if comparison["resolved"]:
        return "resolved"
    if comparison["pairs"] < 2:
        return f"not resolved ({comparison['pairs']} pair)"
    seeds = comparison["seeds_to_resolve"]
    return "not resolved" + (f" (about {seeds} seeds)" if seeds else " (equal means)")


def format_report(report):
    """``report.md``: the ranking, the switch lines, the metrics and the differences."""
    label = {entry["loss"]: entry["label"] for entry in report["losses"]}
    base = label.get(report["baseline"], report["baseline"])
    lines = [
        f"# Box losses ranked on {', '.join(report['test_datasets'])}",
        "",
        f"Model: {report['model']}, trained on {', '.join(report['train_datasets'])}; "
        f"{report['schedule']}. Runs paired by seed (seeds {report['seeds_text']}). "
        "Fingerprint: "
        + ", ".join(f"{k} {v}" for k, v in sorted(report["fingerprint"].items()))
        + ".",
        "",
        f"Command: `{report['command']}`",
        "",
        "## Ranking by AP",
        "",
        f"| rank | loss | AP | ΔAP vs {base} | vs {base} | ΔAP vs the next | vs the next |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in report["ranking"]:
        cells = [str(item["rank"]), label[item["loss"]], _cell(item["AP"])]
        if item["loss"] == report["baseline"]:
            cells += ["baseline", ""]
        else:
            cells += [_delta(item["vs_baseline"]), verdict(item["vs_baseline"])]
        below = item["vs_next"]
        if below:
            cells += [f"{_delta(below)} over {label[below['loss']]}", verdict(below)]
        else:
            cells += ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *_conclusions(report, label)]
    winner = report["winner"]
    if winner["loss"]:
        lines += [
            "",
            f"## Switching a model to the first: {label[winner['loss']]}",
            "",
            f"In a config of this model ({report['model']}), with the paper's box-loss weight:",
            "",
            f"```{winner['language']}",
            winner["config_lines"],
            "```",
        ]
    lines += ["", "## Per loss", "", "| loss | seeds | " + " | ".join(METRICS) + " |"]
    lines.append("|---" * (2 + len(METRICS)) + "|")
    for entry in report["losses"]:
        cells = [entry["label"], str(len(entry["seeds"]))]
        lines.append(
            "| " + " | ".join(cells + [_cell(entry["metrics"][m]) for m in METRICS]) + " |"
        )
    lines += ["", f"## Difference to {base}, paired by seed", ""]
    lines.append("| loss | " + " | ".join(f"Δ{m}" for m in METRICS) + " |")
    lines.append("|---" * (1 + len(METRICS)) + "|")
    for entry in report["losses"]:
        if entry["loss"] != report["baseline"]:
            cells = [_delta(entry["vs_baseline"][m]) for m in METRICS]
            lines.append("| " + " | ".join([entry["label"], *cells]) + " |")
    lines += ["", "## AP per IoU threshold", ""]
    lines.append("| loss | " + " | ".join(f"{t:.2f}" for t in IOU_THRESHOLDS) + " |")
    lines.append("|---" * (1 + len(IOU_THRESHOLDS)) + "|")
    for entry in report["losses"]:
        cells = ["-" if math.isnan(v["mean"]) else f"{v['mean']:.2f}" for v in entry["ap_per_iou"]]
        lines.append("| " + " | ".join([entry["label"], *cells]) + " |")
    lines += [
        "",
        "![AP per IoU threshold, and its difference to the baseline](ap_vs_iou.png)",
        "",
        f"Mean ± sample std over seeds; - where the evaluation gives no value (e.g. no object of "
        f"that size). Δ: the mean difference paired by seed ± the half width of its "
        f"{CONFIDENCE:.0%} confidence interval (Student t); bold, and resolved, where the "
        "interval excludes 0. Seeds to resolve: the normal approximation n = (1.96 s / |d|)² "
        "from the paired standard deviation s and the mean difference d, if both stay as "
        "measured.",
    ]
    return "\n".join(lines) + "\n"


def _conclusions(report, label):
    """The winner's sentence and the closest unresolved pair's."""
    ranking = report["ranking"]
    if not ranking:
        return ["No finished run."]
    first = ranking[0]
    text = f"First: {label[first['loss']]}"
    if first["loss"] == report["baseline"]:
        text += ", the baseline."
    else:
        against = first["vs_baseline"]
        text += (
            f", {_delta(against)} AP over {label.get(report['baseline'], report['baseline'])} "
            f"({verdict(against)})."
        )
    if first["vs_next"]:
        below = first["vs_next"]
        if below["resolved"]:
            text += f" Its lead over {label[below['loss']]} is resolved."
        else:
            seeds = below["seeds_to_resolve"]
            need = f" (about {seeds} seeds would resolve it)" if seeds else ""
            text += f" Its lead over {label[below['loss']]} is not resolved{need}."
    lines = [text]
    closest = report["closest_unresolved"]
    if closest:
        seeds = closest["seeds_to_resolve"]
        need = f"about {seeds} seeds would resolve it" if seeds else "the means are equal"
        lines.append(
            f"The closest unresolved pair: {label[closest['loss']]} and "
            f"{label.get(closest['other'], closest['other'])}, {_delta(closest)} AP "
            f"({closest['pairs']} seeds, paired std {closest['std']:.2f}); {need}."
        )
    return lines


def _json_safe(value):
    """``value`` with NaN as None (report.json stays standard JSON)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def write_report(report, runs, records, output_dir):
    """Writes ``report.md``, ``report.json`` and ``ap_vs_iou.png`` (AP per IoU threshold, and
    its difference to the baseline paired by seed) to ``output_dir``.

    Args:
        report (dict): what :func:`build_report` returned.
        runs (list[focal_eiou_d2.tools.run_store.Run]): the runs it was built from.
        records (dict[str, dict]): their result records by run name.
        output_dir (str): the folder.

    Returns:
        str: the markdown report.
    """
    markdown = format_report(report)
    with open(os.path.join(output_dir, "report.md"), "w") as f:
        f.write(markdown)
    with open(os.path.join(output_dir, "report.json"), "w") as f:
        json.dump(_json_safe(report), f, indent=2)
    baseline = Row(report["baseline"])
    summary = summarize(runs, records, baseline)
    plot_ap_vs_iou(summary, baseline.label, os.path.join(output_dir, "ap_vs_iou.png"))
    return markdown
