"""The study's report: aggregate per-seed results and write report.json, report.md and report.png.

Kept apart from ``mtaffect.study`` so a report can be rebuilt from saved per-seed
results (``results.jsonl``) without training anything.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: The settings the study compares, in report order.
SETTINGS: tuple[str, ...] = ("single-task", "multi-task", "multi-task-weak", "multi-task-gold")
BASELINE = "single-task"

#: Metrics shown in report.md per task (report.json keeps every metric).
REPORT_METRICS: dict[str, list[tuple[str, bool]]] = {
    "emotion": [("emotion_weighted_f1", True), ("emotion_accuracy", True), ("emotion_weighted_acc", True)],
    "sentiment": [
        ("sentiment_Has0_acc_2", True),
        ("sentiment_Non0_acc_2", True),
        ("sentiment_Non0_F1_score", True),
        ("sentiment_MAE", False),
        ("sentiment_weighted_f1", True),
    ],
    "sarcasm": [("sarcasm_weighted_f1", True), ("sarcasm_accuracy", True)],
}


@dataclass(frozen=True)
class Result:
    """One number: a metric of one model (setting, seed) on one corpus' test split and task."""

    setting: str
    seed: int
    corpus: str
    task: str
    metric: str
    value: float


@dataclass
class Cell:
    """All seeds of one (corpus, task, metric, setting)."""

    corpus: str
    task: str
    metric: str
    setting: str
    values: dict[int, float] = field(default_factory=dict)

    @property
    def n_seeds(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.values.values()))) if self.values else math.nan

    @property
    def std(self) -> float:
        # Sample std (ddof=1) as papers report over runs; 0 for a single seed.
        return float(np.std(list(self.values.values()), ddof=1)) if self.n_seeds > 1 else 0.0

    def to_record(self) -> dict[str, Any]:
        return {
            "corpus": self.corpus,
            "task": self.task,
            "metric": self.metric,
            "setting": self.setting,
            "mean": _finite_or_none(self.mean),
            "std": _finite_or_none(self.std),
            "n_seeds": self.n_seeds,
            "values": {str(seed): _finite_or_none(v) for seed, v in sorted(self.values.items())},
        }


def _finite_or_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def aggregate(results: Iterable[Result]) -> list[Cell]:
    """Group results into cells, one per (corpus, task, metric, setting)."""
    cells: dict[tuple[str, str, str, str], Cell] = {}
    for r in results:
        key = (r.corpus, r.task, r.metric, r.setting)
        cell = cells.setdefault(key, Cell(r.corpus, r.task, r.metric, r.setting))
        if r.seed in cell.values:
            raise ValueError(f"Two results for {key} with seed {r.seed}.")
        cell.values[r.seed] = float(r.value)
    order = {s: i for i, s in enumerate(SETTINGS)}
    return sorted(cells.values(), key=lambda c: (c.corpus, c.task, c.metric, order.get(c.setting, 99)))


@dataclass
class Delta:
    """A multi-task setting against single-task on one (corpus, task, metric)."""

    setting: str
    mean: float
    std: float
    improved: int
    n_paired: int


def delta(cell: Cell, baseline: Cell, greater_is_better: bool) -> Delta:
    """Mean ± std of the per-seed difference (setting − single-task) and how many seeds improved."""
    seeds = sorted(set(cell.values) & set(baseline.values))
    diffs = np.array([cell.values[s] - baseline.values[s] for s in seeds], dtype=float)
    finite = diffs[np.isfinite(diffs)]
    better = finite > 0 if greater_is_better else finite < 0
    return Delta(
        setting=cell.setting,
        mean=float(finite.mean()) if len(finite) else math.nan,
        std=float(finite.std(ddof=1)) if len(finite) > 1 else 0.0,
        improved=int(better.sum()),
        n_paired=len(finite),
    )


def write_report(
    results: Sequence[Result],
    output_dir: str | Path,
    primary_metrics: Mapping[str, Sequence[tuple[str, bool]]],
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write report.json, report.md and report.png; return their paths.

    Args:
        results: every per-seed number of the study.
        output_dir: folder to write into (created).
        primary_metrics: task -> [(metric name, greater_is_better)] shown in the markdown
            table and the plot; report.json holds every metric regardless.
        metadata: what was run and chosen (seeds, settings chosen on validation, wall time),
            stored in report.json and printed under the table.
    """
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    cells = aggregate(results)
    metadata = dict(metadata or {})
    payload = {"metadata": metadata, "settings": list(SETTINGS), "records": [c.to_record() for c in cells]}
    paths = {
        "json": output / "report.json",
        "md": output / "report.md",
        "png": output / "report.png",
    }
    paths["json"].write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    table = markdown_table(cells, primary_metrics, metadata)
    paths["md"].write_text(table)
    plot_deltas(cells, primary_metrics, paths["png"])
    return paths


def _primary_cells(
    cells: Sequence[Cell], primary_metrics: Mapping[str, Sequence[tuple[str, bool]]]
) -> dict[tuple[str, str, str], dict[str, Cell]]:
    wanted = {(task, metric) for task, pairs in primary_metrics.items() for metric, _ in pairs}
    grouped: dict[tuple[str, str, str], dict[str, Cell]] = defaultdict(dict)
    for cell in cells:
        if (cell.task, cell.metric) in wanted:
            grouped[(cell.corpus, cell.task, cell.metric)][cell.setting] = cell
    return grouped


def _direction(primary_metrics: Mapping[str, Sequence[tuple[str, bool]]], task: str, metric: str) -> bool:
    return dict(primary_metrics.get(task, ())).get(metric, True)


def markdown_table(
    cells: Sequence[Cell],
    primary_metrics: Mapping[str, Sequence[tuple[str, bool]]],
    metadata: Mapping[str, Any] | None = None,
) -> str:
    """The paper-style table: mean ± std per setting, Δ over single-task with seeds improved."""
    grouped = _primary_cells(cells, primary_metrics)
    settings = [s for s in SETTINGS if any(s in by_setting for by_setting in grouped.values())]
    header = ["corpus", "task", "metric"]
    for setting in settings:
        header.append(setting)
        if setting != BASELINE:
            header.append(f"Δ {setting}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    stability: dict[str, list[float]] = defaultdict(list)
    for (corpus, task, metric), by_setting in sorted(grouped.items()):
        greater = _direction(primary_metrics, task, metric)
        row = [corpus, task, metric + ("" if greater else " (↓)")]
        base = by_setting.get(BASELINE)
        for setting in settings:
            cell = by_setting.get(setting)
            row.append(f"{cell.mean:.3f} ± {cell.std:.3f}" if cell else "–")
            if cell and cell.n_seeds > 1:
                stability[setting].append(cell.std)
            if setting == BASELINE:
                continue
            if cell and base:
                d = delta(cell, base, greater)
                row.append(f"{d.mean:+.3f} ({d.improved}/{d.n_paired} seeds better)")
            else:
                row.append("–")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Δ = setting − single-task, mean over seeds (paired by seed); (↓) = lower is better.")
    if stability:
        lines.append("")
        lines.append("Stability (mean std over seeds of the metrics above, lower = more stable): " + ", ".join(
            f"{setting} {np.mean(values):.4f}" for setting, values in stability.items()
        ))
    if metadata:
        lines.append("")
        for key, value in metadata.items():
            lines.append(f"- **{key}**: {json.dumps(value) if not isinstance(value, str) else value}")
    return "\n".join(lines) + "\n"


def plot_deltas(
    cells: Sequence[Cell], primary_metrics: Mapping[str, Sequence[tuple[str, bool]]], path: Path
) -> None:
    """Bar chart of each multi-task setting's Δ over single-task, error bars = std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grouped = _primary_cells(cells, primary_metrics)
    rows = sorted(grouped)
    settings = [s for s in SETTINGS if s != BASELINE]
    figure, axis = plt.subplots(figsize=(max(6.0, 1.2 * len(rows) + 2), 4.5))
    width = 0.8 / len(settings)
    for i, setting in enumerate(settings):
        means, errors = [], []
        for key in rows:
            by_setting = grouped[key]
            if setting in by_setting and BASELINE in by_setting:
                d = delta(by_setting[setting], by_setting[BASELINE], _direction(primary_metrics, key[1], key[2]))
                # Plot improvements upwards even for lower-is-better metrics.
                sign = 1.0 if _direction(primary_metrics, key[1], key[2]) else -1.0
                means.append(sign * d.mean)
                errors.append(d.std)
            else:
                means.append(np.nan)
                errors.append(0.0)
        positions = np.arange(len(rows)) + (i - (len(settings) - 1) / 2) * width
        axis.bar(positions, means, width, yerr=errors, capsize=3, label=setting)
    axis.axhline(0.0, color="black", linewidth=0.8)
    axis.set_xticks(np.arange(len(rows)))
    axis.set_xticklabels([f"{c}\n{t}\n{m}" for c, t, m in rows], fontsize=7)
    axis.set_ylabel("Δ over single-task (improvement ↑)")
    axis.set_title("Multi-task settings vs single-task (mean ± std over seeds)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def read_results(path: str | Path) -> list[Result]:
    """Per-seed results saved by the study as JSON lines."""
    with open(path, encoding="utf-8") as handle:
        return [Result(**json.loads(line)) for line in handle if line.strip()]


def append_results(path: str | Path, results: Iterable[Result]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        for result in results:
            handle.write(json.dumps(asdict(result)) + "\n")
