"""The study's report: aggregate per-seed results and write report.json, report.md and report.png.

Kept apart from ``mtaffect.study`` so a report can be rebuilt from saved per-seed results
(``results.jsonl``) without training anything. What it shows, for every corpus × task:

* the headline metrics first (``mtaffect.metrics.HEADLINE_METRICS``: the ones the literature
  reports for that kind of corpus), as mean ± std over seeds per setting, then every metric;
* each comparison of two settings (``COMPARISONS``: multi-task vs single-task, weak vs gold
  labels, ...) as a paired per-seed Δ with its 95% t-interval and the seed count
  (``mtaffect.statistics``);
* for each of the paper's three claims, whether these data support it, and why;
* how often each model predicted each class, with a warning for a model that predicted one;
* report.png: per headline metric, the absolute scores of every setting (each seed a dot,
  the mean ± std a bar) above the paired Δs with their intervals.

The report is generic over settings: any setting in the results gets a column, known ones
(``SETTINGS``) in their order first.
"""

from __future__ import annotations

import json
import logging
import math
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtaffect.metrics import (
    PREDICTED_COUNT,
    HeadlineMetric,
    greater_is_better,
    headline_metrics,
    is_predicted_count,
    metric_label,
    order_metrics,
)
from mtaffect.statistics import (
    NONINFERIORITY_MARGIN,
    ClaimVerdict,
    Collapse,
    PairedDelta,
    Unit,
    assess_claims,
    find_collapses,
    paired_delta,
)

logger = logging.getLogger(__name__)

#: The settings a study compares, in report order (others found in the results follow).
SETTINGS: tuple[str, ...] = ("linear-probe", "single-task", "multi-task", "multi-task-weak", "multi-task-gold",
                             "single-task + context", "multi-task + context")
BASELINE = "single-task"
#: (setting, reference) pairs reported as paired Δs, where both ran.
COMPARISONS: tuple[tuple[str, str], ...] = (
    ("multi-task", "single-task"),
    ("multi-task-weak", "single-task"),
    ("multi-task-gold", "single-task"),
    ("multi-task-weak", "multi-task-gold"),
    ("single-task", "linear-probe"),
    # What conversational context is worth (a study with a context_grid), for each kind of model.
    ("single-task + context", "single-task"),
    ("multi-task + context", "multi-task"),
    ("multi-task + context", "single-task + context"),
)
#: Short names for narrow places (the terminal, the figure's axes).
SHORT_NAMES: dict[str, str] = {
    "linear-probe": "probe",
    "single-task": "single",
    "multi-task": "multi",
    "multi-task-weak": "weak",
    "multi-task-gold": "gold",
    "single-task + context": "single+ctx",
    "multi-task + context": "multi+ctx",
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


def setting_order(settings: Iterable[str]) -> list[str]:
    """Known settings in ``SETTINGS`` order, then any others in the order first seen."""
    seen = list(dict.fromkeys(settings))
    return [s for s in SETTINGS if s in seen] + [s for s in seen if s not in SETTINGS]


def aggregate(results: Iterable[Result]) -> list[Cell]:
    """Group results into cells, one per (corpus, task, metric, setting); headline metrics first."""
    cells: dict[tuple[str, str, str, str], Cell] = {}
    for r in results:
        key = (r.corpus, r.task, r.metric, r.setting)
        cell = cells.setdefault(key, Cell(r.corpus, r.task, r.metric, r.setting))
        if r.seed in cell.values:
            raise ValueError(f"Two results for {key} with seed {r.seed}.")
        cell.values[r.seed] = float(r.value)
    order = {s: i for i, s in enumerate(setting_order(c.setting for c in cells.values()))}
    metric_rank: dict[tuple[str, str], int] = {}
    for corpus in {c.corpus for c in cells.values()}:
        keys = order_metrics(c.metric for c in cells.values() if c.corpus == corpus)
        metric_rank.update({(corpus, key): i for i, key in enumerate(keys)})
    return sorted(
        cells.values(), key=lambda c: (c.corpus, metric_rank.get((c.corpus, c.metric), 0), order[c.setting])
    )


# --------------------------------------------------------------------------------------------
# What the report is made of


@dataclass
class Row:
    """One (corpus, task, metric) of the report: every setting's cell and the paired Δs."""

    corpus: str
    task: str
    metric: str
    label: str
    greater_is_better: bool
    headline: bool
    cells: dict[str, Cell]
    deltas: dict[tuple[str, str], PairedDelta]

    @property
    def unit(self) -> Unit:
        return Unit(self.corpus, self.task, self.metric, self.label, self.greater_is_better,
                    {s: c.values for s, c in self.cells.items()})


#: The baseline every trained setting has to beat, and the setting that must beat it first.
PROBE = "linear-probe"
#: The least gap (metric units) between single-task and the probe that the report calls a weak baseline.
BELOW_PROBE_MARGIN = 0.005


@dataclass
class BelowProbe:
    """A headline cell where single-task scores below the linear probe on the same features."""

    corpus: str
    task: str
    label: str
    single: float
    probe: float
    #: Whether the gap exceeds single-task's spread over seeds (a weak baseline, not noise).
    beyond_spread: bool = True

    def message(self) -> str:
        where = f"single-task scores below the linear probe on {self.corpus} {self.task} {self.label} "
        if not self.beyond_spread:
            return (where + f"({self.single:.3f} vs {self.probe:.3f}), by less than its spread over seeds: "
                    "within the noise of these seeds, but a multi-task gain there is no gain over the probe.")
        return (where + f"({self.single:.3f} vs {self.probe:.3f}, more than its spread over seeds): a logistic "
                "regression on the same features beats it, so it is undertrained or overfit there, and a multi-task "
                "gain over it overstates what multi-tasking adds; compare multi-task with the probe too, or give the "
                "models more steps (training.min_steps).")

    @property
    def kind(self) -> str:
        """``WARNING`` for a weak baseline, ``NOTE`` for a gap within the seeds' noise."""
        return "WARNING" if self.beyond_spread else "NOTE"


@dataclass
class Report:
    """Everything the three report files show."""

    settings: list[str]
    rows: list[Row]
    claims: list[ClaimVerdict]
    counts: dict[tuple[str, int, str, str], dict[str, float]]
    collapses: list[Collapse]
    seeds: list[int]
    below_probe: list[BelowProbe] = field(default_factory=list)

    @property
    def headline(self) -> list[Row]:
        return [row for row in self.rows if row.headline]

    @property
    def comparisons(self) -> list[tuple[str, str]]:
        return [c for c in COMPARISONS if c[0] in self.settings and c[1] in self.settings]


def primary_tasks_of(metadata: Mapping[str, Any] | None) -> dict[str, str]:
    """Corpus -> primary task, from a study's metadata (``corpora.<name>.primary_task``)."""
    corpora = (metadata or {}).get("corpora") or {}
    return {name: info["primary_task"] for name, info in corpora.items()
            if isinstance(info, Mapping) and isinstance(info.get("primary_task"), str)}


def build_report(
    results: Sequence[Result],
    margin: float = NONINFERIORITY_MARGIN,
    primary_tasks: Mapping[str, str] | None = None,
) -> Report:
    """Aggregate results, pair the settings, decide the claims, find collapsed models.

    Args:
        results: every per-seed number of the study.
        margin: the weak ≈ gold non-inferiority margin, in metric units.
        primary_tasks: corpus -> primary task (``primary_tasks_of(metadata)``): weak ≈ gold
            is decided on those tasks.
    """
    scores = [r for r in results if not is_predicted_count(r.metric)]
    counts: dict[tuple[str, int, str, str], dict[str, float]] = defaultdict(dict)
    for r in results:
        if is_predicted_count(r.metric):
            label = r.metric.split("_", 2)[2]
            counts[(r.setting, r.seed, r.corpus, r.task)][label] = float(r.value)
    cells = aggregate(scores)
    settings = setting_order(c.setting for c in cells)
    grouped: dict[tuple[str, str, str], dict[str, Cell]] = {}
    for cell in cells:
        grouped.setdefault((cell.corpus, cell.task, cell.metric), {})[cell.setting] = cell
    comparisons = [c for c in COMPARISONS if c[0] in settings and c[1] in settings]
    rows: list[Row] = []
    headline_keys: dict[tuple[str, str], dict[str, HeadlineMetric]] = {}
    for corpus in sorted({c.corpus for c in cells}):
        keys = [metric for (c, _, metric) in grouped if c == corpus]
        for metric in headline_metrics(keys):
            headline_keys.setdefault((corpus, metric.key.split("_", 1)[0]), {})[metric.key] = metric
    for (corpus, task, metric), by_setting in grouped.items():
        known = headline_keys.get((corpus, task), {}).get(metric)
        greater = known.greater_is_better if known else greater_is_better(metric)
        deltas = {
            (a, b): paired_delta(by_setting[a].values, by_setting[b].values, greater, a, b)
            for a, b in comparisons if a in by_setting and b in by_setting
        }
        rows.append(Row(corpus, task, metric, known.label if known else metric_label(metric), greater, known is not None,
                        dict(sorted(by_setting.items(), key=lambda kv: settings.index(kv[0]))), deltas))
    # First headline metric of each corpus × task: what the claims are decided on.
    first: dict[tuple[str, str], Row] = {}
    for row in rows:
        if row.headline:
            first.setdefault((row.corpus, row.task), row)
    claims = assess_claims([row.unit for row in first.values()], settings, BASELINE, margin, primary_tasks)
    seeds = sorted({r.seed for r in results})
    return Report(settings, rows, claims, dict(counts), find_collapses(counts), seeds, below_probe(rows))


def below_probe(rows: Sequence[Row]) -> list[BelowProbe]:
    """Headline cells where the single-task mean is worse than the linear probe's, each marked
    ``beyond_spread`` when the gap exceeds single-task's own spread over seeds (its sample std;
    half a point with one seed).

    The multi-task gain is measured against single-task; where a logistic regression on the same
    features beats single-task, that gain is measured against a baseline a reviewer would reject,
    so the report says where (``BelowProbe.message``).
    """
    found = []
    for row in rows:
        single, probe = row.cells.get(BASELINE), row.cells.get(PROBE)
        if not row.headline or single is None or probe is None or not (math.isfinite(single.mean)
                                                                         and math.isfinite(probe.mean)):
            continue
        gap = probe.mean - single.mean if row.greater_is_better else single.mean - probe.mean
        spread = single.std if single.n_seeds > 1 and math.isfinite(single.std) else 0.0
        if gap > 0:
            found.append(BelowProbe(row.corpus, row.task, row.label, single.mean, probe.mean,
                                    beyond_spread=gap > max(spread, BELOW_PROBE_MARGIN)))
    return found


# --------------------------------------------------------------------------------------------
# Files


def write_report(
    results: Sequence[Result],
    output_dir: str | Path,
    *,
    metadata: Mapping[str, Any] | None = None,
    margin: float = NONINFERIORITY_MARGIN,
    collapses: Sequence[Any] = (),
) -> dict[str, Path]:
    """Write report.json, report.md and report.png; return their paths.

    Args:
        results: every per-seed number of the study (scores and predicted-class counts).
        output_dir: folder to write into (created).
        metadata: what was run and chosen (seeds, settings chosen on validation, wall time),
            stored in report.json and listed at the end of report.md.
        margin: the weak ≈ gold non-inferiority margin, in metric units.
        collapses: collapses the per-seed numbers cannot show (a model that predicts one class
            on one fold of a cross-validated corpus), reported beside those found in ``results``.
    """
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    report = build_report(results, margin, primary_tasks_of(metadata))
    report.collapses.extend(collapses)
    for collapse in report.collapses:
        logger.info(collapse.message())  # the report files and terminal_summary carry the warning
    metadata = dict(metadata or {})
    payload = {
        "metadata": metadata,
        "settings": report.settings,
        "claims": [verdict.to_record() for verdict in report.claims],
        "collapses": [asdict(collapse) for collapse in report.collapses],
        "single_task_below_probe": [asdict(cell) for cell in report.below_probe],
        "headline": [{"corpus": r.corpus, "task": r.task, "metric": r.metric, "label": r.label,
                      "greater_is_better": r.greater_is_better} for r in report.headline],
        "records": [cell.to_record() for row in report.rows for cell in row.cells.values()],
        "deltas": [
            {"corpus": row.corpus, "task": row.task, "metric": row.metric, "setting": d.setting,
             "reference": d.reference, "mean": _finite_or_none(d.mean), "low": _finite_or_none(d.low),
             "high": _finite_or_none(d.high), "std": _finite_or_none(d.std), "n_seeds": d.n,
             "seeds_better": d.improved, "confidence": 0.95}
            for row in report.rows for d in row.deltas.values()
        ],
        "predicted_counts": [
            {"setting": s, "seed": seed, "corpus": c, "task": t, "counts": counts}
            for (s, seed, c, t), counts in sorted(report.counts.items())
        ],
    }
    paths = {"json": output / "report.json", "md": output / "report.md", "png": output / "report.png"}
    paths["json"].write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["md"].write_text(markdown_report(report, metadata, margin), encoding="utf-8")
    plot_report(report, paths["png"])
    return paths


def results_from_report(payload: Mapping[str, Any]) -> list[Result]:
    """The per-seed results a ``report.json`` payload was written from (scores and counts).

    What lets the CLI print ``terminal_summary`` of a report it just wrote, whatever format the
    study's own records file has.
    """
    results = [
        Result(record["setting"], int(seed), record["corpus"], record["task"], record["metric"], float(value))
        for record in payload.get("records", [])
        for seed, value in record["values"].items()
        if value is not None
    ]
    for entry in payload.get("predicted_counts", []):
        for label, count in entry["counts"].items():
            metric = f"{entry['task']}_{PREDICTED_COUNT}_{label}"
            results.append(Result(entry["setting"], int(entry["seed"]), entry["corpus"], entry["task"], metric, count))
    return results


def read_results(path: str | Path) -> list[Result]:
    """Per-seed results saved by the study as JSON lines."""
    with open(path, encoding="utf-8") as handle:
        return [Result(**json.loads(line)) for line in handle if line.strip()]


def append_results(path: str | Path, results: Iterable[Result]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        for result in results:
            handle.write(json.dumps(asdict(result)) + "\n")


# --------------------------------------------------------------------------------------------
# report.md


def _mean_std(cell: Cell | None) -> str:
    if cell is None or math.isnan(cell.mean):
        return "–"
    return f"{cell.mean:.3f} ± {cell.std:.3f}" if cell.n_seeds > 1 else f"{cell.mean:.3f}"


def _metric_cell(row: Row, code: bool = True) -> str:
    name = f"`{row.metric}`" if code else row.metric
    label = f"{row.label} ({name})" if row.label != row.metric else name
    return label + ("" if row.greater_is_better else " ↓")


def _table(header: list[str], lines: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(cells) + " |" for cells in lines)]


def markdown_report(report: Report, metadata: Mapping[str, Any] | None = None,
                    margin: float = NONINFERIORITY_MARGIN) -> str:
    """report.md: warnings, the claims, headline scores and Δs, every metric, predicted classes."""
    seeds = report.seeds
    out = ["# Study report", ""]
    out.append(f"{len(seeds)} seed(s) ({', '.join(map(str, seeds))}); settings: {', '.join(report.settings)}. "
               "Scores are on each corpus' test split; ↓ = lower is better.")
    out.append("")
    for collapse in report.collapses:
        out.append(f"> **Warning — class collapse**: {collapse.message()}")
        out.append("")
    for cell in report.below_probe:
        kind = "Warning — weak baseline" if cell.beyond_spread else "Note — baseline"
        out.append(f"> **{kind}**: {cell.message()}")
        out.append("")
    out += ["## The paper's claims", ""]
    for verdict in report.claims:
        where = f" ({verdict.comparison})" if verdict.comparison else ""
        out.append(f"- **{verdict.claim}**{where}: **{verdict.verdict}** — {verdict.reason}")
    out.append("")
    out.append(
        "Decided on the first headline metric of each corpus × task with paired 95% t-intervals over seeds "
        f"(see `mtaffect.statistics`); weak ≈ gold uses a non-inferiority margin of {margin:g}."
    )
    out.append("")
    out += ["## Headline metrics", "", "Mean ± std over seeds.", ""]
    out += _table(["corpus", "task", "metric", *report.settings],
                  [[r.corpus, r.task, _metric_cell(r), *(_mean_std(r.cells.get(s)) for s in report.settings)]
                   for r in report.headline])
    out.append("")
    comparisons = report.comparisons
    if comparisons:
        out += ["### Paired differences", "",
                "Δ = setting − reference per seed, mean [95% t-interval] over the seeds both ran "
                f"(n = {len(seeds)} unless marked); in brackets after it, the seeds where the setting was better.", ""]
        header = ["corpus", "task", "metric", *(f"{a} − {b}" for a, b in comparisons)]
        lines = []
        for row in report.headline:
            values = []
            for pair in comparisons:
                d = row.deltas.get(pair)
                if d is None:
                    values.append("–")
                    continue
                n = "" if d.n == len(seeds) else f", n={d.n}"
                values.append("same runs" if d.identical else f"{d.format()} ({d.improved}/{d.n}{n})")
            lines.append([row.corpus, row.task, _metric_cell(row), *values])
        out += _table(header, lines)
        out.append("")
    out += ["## Every metric", "", "Headline metrics first, then the rest; mean ± std over seeds.", ""]
    out += _table(["corpus", "task", "metric", *report.settings],
                  [[r.corpus, r.task, _metric_cell(r), *(_mean_std(r.cells.get(s)) for s in report.settings)]
                   for r in report.rows])
    out.append("")
    if report.counts:
        out += ["## Predicted classes", "", "How often each model predicted each class on the test split "
                "(mean over seeds; a model predicting one class is flagged above).", ""]
        grouped: dict[tuple[str, str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for (setting, _seed, corpus, task), counts in report.counts.items():
            for label, count in counts.items():
                grouped[(corpus, task, setting)][label].append(count)
        lines = []
        for (corpus, task, setting) in sorted(grouped, key=lambda k: (k[0], k[1], report.settings.index(k[2])
                                                                       if k[2] in report.settings else 99)):
            by_label = grouped[(corpus, task, setting)]
            text = ", ".join(f"{label} {np.mean(v):.0f}" for label, v in by_label.items())
            lines.append([corpus, task, setting, text])
        out += _table(["corpus", "task", "setting", "predicted (mean count)"], lines)
        out.append("")
    if metadata:
        out += ["## What ran", ""]
        for key, value in metadata.items():
            out.append(f"- **{key}**: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}")
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# The terminal


def terminal_summary(report: Report, width: int = 100) -> str:
    """What ``mtaffect run`` prints: headline means per setting, the claims, warnings; ≤ ``width`` columns."""
    short = [SHORT_NAMES.get(s, s[:7]) for s in report.settings]
    corpus_w = min(max((len(r.corpus) for r in report.headline), default=6), 20)
    task_w = 9
    column_w = 7
    metric_w = max(12, width - corpus_w - task_w - 3 - (column_w + 1) * len(short))
    lines = [f"{'corpus':<{corpus_w}} {'task':<{task_w}} {'metric':<{metric_w}} "
             + " ".join(f"{name:>{column_w}}" for name in short)]
    for row in report.headline:
        label = row.label + ("" if row.greater_is_better else " ↓")
        if len(label) > metric_w:
            label = label[: metric_w - 1] + "…"
        corpus = row.corpus if len(row.corpus) <= corpus_w else row.corpus[: corpus_w - 1] + "…"
        values = []
        for setting in report.settings:
            cell = row.cells.get(setting)
            values.append(f"{cell.mean:>{column_w}.3f}" if cell and math.isfinite(cell.mean) else f"{'–':>{column_w}}")
        lines.append(f"{corpus:<{corpus_w}} {row.task:<{task_w}} {label:<{metric_w}} " + " ".join(values))
    legend = ", ".join(f"{s} = {n}" for s, n in zip(short, report.settings) if s != n)
    lines.append(textwrap.fill(f"Means over {len(report.seeds)} seed(s) on the test splits ({legend}).", width,
                               break_on_hyphens=False))
    lines.append("")
    for verdict in report.claims:
        where = f" ({verdict.comparison})" if verdict.comparison else ""
        lines.append(textwrap.fill(f"{verdict.claim}{where}: {verdict.verdict.upper()} — {verdict.reason}", width,
                                   subsequent_indent="    ", break_on_hyphens=False))
    for collapse in report.collapses:
        lines.append(textwrap.fill("WARNING: " + collapse.message(), width, subsequent_indent="    ",
                                   break_on_hyphens=False))
    for cell in report.below_probe:
        lines.append(textwrap.fill(f"{cell.kind}: " + cell.message(), width, subsequent_indent="    ",
                                   break_on_hyphens=False))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# report.png


@dataclass
class Panel:
    """One figure panel: a headline metric, the settings to draw, what merged into it."""

    row: Row
    title: str
    settings: list[str]
    aliases: dict[str, list[str]]  # setting drawn -> settings with identical values (same runs)


def figure_panels(report: Report) -> list[Panel]:
    """One panel per corpus × task × headline metric, without duplicates.

    A metric whose per-seed values equal an earlier one's in every setting (on synthetic data
    ``Non0_acc_2`` and its F1, or MUStARD accuracy and weighted F1, can coincide) is merged into
    that panel's title; a setting with the same values as an earlier one (``multi-task-gold``
    where no gold label was replaced) is drawn once and named with it.
    """
    panels: list[Panel] = []
    for row in report.headline:
        signature = {s: tuple(sorted(c.values.items())) for s, c in row.cells.items()}
        duplicate = next((p for p in panels if p.row.corpus == row.corpus and p.row.task == row.task
                          and {s: tuple(sorted(c.values.items())) for s, c in p.row.cells.items()} == signature), None)
        if duplicate is not None:
            duplicate.title += f" = {row.label}"
            continue
        drawn: list[str] = []
        aliases: dict[str, list[str]] = {}
        for setting in report.settings:
            if setting not in row.cells:
                continue
            same = next((d for d in drawn if signature[d] == signature[setting]), None)
            if same is None:
                drawn.append(setting)
                aliases[setting] = []
            else:
                aliases[same].append(setting)
        panels.append(Panel(row, row.label, drawn, aliases))
    return panels


_COLORS = {"linear-probe": "#8c8c8c", "single-task": "#4c72b0", "multi-task": "#dd8452",
           "multi-task-weak": "#55a868", "multi-task-gold": "#c44e52"}
_VERDICT_COLORS = {"better": "#2e7d32", "worse": "#c62828", "unclear": "#616161", "n/a": "#9e9e9e"}


def plot_report(report: Report, path: Path) -> None:
    """report.png: per panel, absolute scores (seeds as dots, mean ± std) over the paired Δs (95% CI)."""
    import matplotlib.pyplot as plt

    figure = report_figure(report)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _draw_setting(axes: Any, x: int, cell: Cell, color: str, rng: np.random.Generator) -> None:
    """One setting over its tick ``x``: the mean as a bar-width line, ± std as a whisker, each seed a dot.

    A setting whose seeds all gave one value (the linear probe is deterministic: std 0) is one
    dot on the tick itself, not a row of jittered dots that reads as a dotted line.
    """
    values = np.array(list(cell.values.values()), dtype=float)
    # Honest on a cut axis: every seed is shown, the mean and std beside them.
    axes.hlines(cell.mean, x - 0.3, x + 0.3, color=color, linewidth=2.5)
    if len(np.unique(values[np.isfinite(values)])) <= 1:
        axes.scatter([x], [cell.mean], s=36, color=color, zorder=3, edgecolor="white", linewidth=0.5)
        return
    axes.errorbar(x, cell.mean, yerr=cell.std, color=color, capsize=5, linewidth=1.2)
    axes.scatter(x + rng.uniform(-0.2, 0.2, len(values)), values, s=16, color=color, zorder=3,
                 alpha=0.8, edgecolor="white", linewidth=0.5)


def _tick_label(panel: Panel, setting: str) -> str:
    names = [SHORT_NAMES.get(setting, setting), *(f"= {SHORT_NAMES.get(a, a)}" for a in panel.aliases[setting])]
    cell = panel.row.cells[setting]
    if cell.n_seeds > 1 and len(set(cell.values.values())) == 1:
        names.append("(1 value)")  # every seed gave the same number
    return "\n".join(names)


def report_figure(report: Report) -> Any:
    """The matplotlib figure of ``plot_report`` (Agg backend), for a caller to save or inspect."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpec

    panels = figure_panels(report)
    comparisons = report.comparisons
    if not panels:
        figure = plt.figure(figsize=(6, 2))
        figure.text(0.5, 0.5, "no headline metric in these results", ha="center", va="center")
        return figure
    columns = min(4, len(panels))
    grid_rows = math.ceil(len(panels) / columns)
    delta_height = max(1.0, 0.3 * len(comparisons) + 0.6)
    figure = plt.figure(figsize=(4.3 * columns, (3.0 + delta_height + 0.8) * grid_rows + 0.8), layout="constrained")
    outer = GridSpec(grid_rows, columns, figure=figure)
    rng = np.random.default_rng(0)
    for index, panel in enumerate(panels):
        row = panel.row
        inner = outer[index // columns, index % columns].subgridspec(
            2 if comparisons else 1, 1, height_ratios=[3.0, delta_height] if comparisons else None)
        scores = figure.add_subplot(inner[0])
        for x, setting in enumerate(panel.settings):
            _draw_setting(scores, x, row.cells[setting], _COLORS.get(setting, "#937860"), rng)
        everything = np.concatenate([list(row.cells[s].values.values()) for s in panel.settings]).astype(float)
        finite = everything[np.isfinite(everything)]
        if finite.size:
            low, high = float(finite.min()), float(finite.max())
            pad = max((high - low) * 0.2, 0.005)
            scores.set_ylim(low - pad, high + pad)
        scores.set_xlim(-0.6, len(panel.settings) - 0.4)
        scores.set_xticks(range(len(panel.settings)))
        # More than five settings (a study with context settings): slanted, so the names do not overlap.
        slanted = {"rotation": 30, "ha": "right"} if len(panel.settings) > 5 else {}
        scores.set_xticklabels([_tick_label(panel, s) for s in panel.settings], fontsize=8, **slanted)
        scores.tick_params(axis="y", labelsize=8)
        scores.grid(axis="y", alpha=0.3)
        arrow = "  (lower is better)" if not row.greater_is_better else ""
        scores.set_title(f"{row.corpus} · {row.task}\n{panel.title}{arrow}", fontsize=9)
        if not comparisons:
            continue
        deltas = figure.add_subplot(inner[1])
        aliased = {a: s for s, names in panel.aliases.items() for a in names}
        # A comparison with a setting drawn under another's name repeats that one's Δ: left out,
        # except the pair itself, which says "same runs".
        shown = [(a, b) for a, b in comparisons
                 if not (a in aliased or b in aliased) or aliased.get(a) == b or aliased.get(b) == a]
        labels = []
        for y, (a, b) in enumerate(shown):
            d = row.deltas.get((a, b))
            labels.append(f"{SHORT_NAMES.get(a, a)} − {SHORT_NAMES.get(b, b)}")
            if aliased.get(a) == b or aliased.get(b) == a:
                deltas.text(0, y, " same runs", fontsize=7, va="center", ha="left", color="#616161")
                continue
            if d is None or math.isnan(d.mean):
                deltas.text(0, y, " not run", fontsize=7, va="center", ha="left", color="#9e9e9e")
                continue
            mean, low, high = d.oriented()
            color = _VERDICT_COLORS[d.direction]
            if math.isnan(low):
                deltas.plot([mean], [y], "o", color=color, markersize=4)
            else:
                deltas.errorbar(mean, y, xerr=[[mean - low], [high - mean]], fmt="o", color=color,
                                markersize=4, capsize=3, linewidth=1.3)
        deltas.axvline(0.0, color="black", linewidth=0.8)
        deltas.set_yticks(range(len(shown)))
        deltas.set_yticklabels(labels, fontsize=7.5)
        deltas.set_ylim(len(shown) - 0.5, -0.5)
        deltas.tick_params(axis="x", labelsize=7.5)
        deltas.set_xlabel("paired Δ and 95% CI (right = better)", fontsize=7.5)
        deltas.grid(axis="x", alpha=0.3)
    legend = ", ".join(f"{SHORT_NAMES.get(s, s)} = {s}" for s in report.settings)
    title = (f"Test scores per setting: dots = {len(report.seeds)} seeds, line and whisker = mean ± std. "
             "Below: paired Δ per seed, mean and 95% t-interval (green / red: the interval excludes 0). "
             f"{legend}.")
    figure.suptitle(textwrap.fill(title, 52 * columns, break_on_hyphens=False), fontsize=9.5)
    return figure
