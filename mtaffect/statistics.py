"""The study's statistics: paired per-seed differences with t-intervals, and the paper's three claims.

A study trains every setting once per seed, so two settings are compared *paired by seed*:
for each seed both ran on, ``d_s = x_setting,s − x_reference,s``; the report gives the mean
of the ``d_s``, its 95% t-interval ``mean ± t(0.975, n − 1) · sd / √n`` (scipy) and ``n``.
With 3–5 seeds the intervals are wide, which is the honest statement of what such a study
can show; a claim is called supported only when its intervals say so.

The claims of Dai et al. (arXiv 2104.11560) and how they are decided here (``assess_claims``),
each on the first headline metric of every corpus × task (``mtaffect.metrics.HEADLINE_METRICS``):

1. **Multi-task gain** — multi-tasking helps every task. Per multi-task setting against
   single-task: *supported* when every task has a corpus whose Δ interval lies above 0 and
   none lies below; *contradicted* when some Δ interval lies below 0 (a loss the seeds agree
   on); otherwise *inconclusive*.
2. **Stability across seeds** — multi-task results vary less from seed to seed. Per corpus ×
   task the log ratio ``ln(std_multi / std_single)`` of the seed standard deviations; over
   those, a t-interval of the mean log ratio: *supported* when it lies below 0,
   *contradicted* when above, otherwise *inconclusive*.
3. **Weak ≈ gold** — weak labels from teachers are about as good as gold ones. Δ
   (multi-task-weak − multi-task-gold) on each corpus' *primary* task where the two differ
   (a corpus whose gold auxiliary labels a teacher replaced; scored on the auxiliary task
   itself, weak labels lose by construction, which is not the claim): *supported* when every
   interval's lower end (oriented so that up is better) is above −``margin``
   (non-inferiority, default 1 point on a 0–1 scale), *contradicted* when some interval lies
   entirely below −``margin``, otherwise *inconclusive*.

A claim with nothing to decide it on (one seed, a setting that did not run) is *not testable*.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

logger = logging.getLogger(__name__)

#: Confidence level of every interval in the report.
CONFIDENCE = 0.95
#: Weak ≈ gold: how much worse than gold (in metric units, 0.01 = 1 point) still counts as "as good".
NONINFERIORITY_MARGIN = 0.01

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE = "supported", "contradicted", "inconclusive", "not testable"


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """``(mean, low, high)``: the t-interval of the mean of ``values`` (``nan`` bounds for n < 2).

    Examples:
        >>> mean, low, high = t_interval([0.1, 0.2, 0.3])
        >>> round(mean, 3), round(low, 3), round(high, 3)
        (0.2, -0.048, 0.448)
    """
    array = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    n = len(array)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(array.mean())
    if n < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * array.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class PairedDelta:
    """``setting − reference`` on one metric, paired by seed.

    ``mean``, ``low``, ``high`` are in the metric's own direction (for MAE a negative Δ is an
    improvement); ``improved`` counts the seeds where ``setting`` was better.
    """

    setting: str
    reference: str
    mean: float
    low: float
    high: float
    std: float
    n: int
    improved: int
    greater_is_better: bool = True

    @property
    def identical(self) -> bool:
        """Every paired difference is exactly 0: the two settings are the same runs here."""
        return self.n > 0 and self.mean == 0.0 and self.std == 0.0

    def oriented(self) -> tuple[float, float, float]:
        """``(mean, low, high)`` with improvements positive, whatever the metric's direction."""
        if self.greater_is_better:
            return self.mean, self.low, self.high
        return -self.mean, -self.high, -self.low

    @property
    def direction(self) -> str:
        """``"better"`` / ``"worse"`` when the interval excludes 0, else ``"unclear"`` (or ``"n/a"``)."""
        mean, low, high = self.oriented()
        if self.n < 2 or math.isnan(low):
            return "n/a"
        if low > 0:
            return "better"
        if high < 0:
            return "worse"
        return "unclear"

    def format(self, scale: float = 1.0, digits: int = 3) -> str:
        """``+0.012 [-0.004, +0.028]`` (``scale=100`` for points)."""
        if math.isnan(self.mean):
            return "–"
        if self.n < 2 or math.isnan(self.low):
            return f"{self.mean * scale:+.{digits}f} [n={self.n}]"
        return f"{self.mean * scale:+.{digits}f} [{self.low * scale:+.{digits}f}, {self.high * scale:+.{digits}f}]"


def paired_delta(
    values: Mapping[int, float],
    reference: Mapping[int, float],
    greater_is_better: bool = True,
    setting: str = "",
    reference_name: str = "",
    confidence: float = CONFIDENCE,
) -> PairedDelta:
    """The paired per-seed difference ``values − reference`` with its t-interval.

    Args:
        values: seed -> metric value of the setting; only seeds in both mappings (with finite
            values) are paired.
        reference: seed -> metric value of the reference setting.
        greater_is_better: the metric's direction, for ``improved`` and ``direction``.
        setting: the setting's name, kept on the result.
        reference_name: the reference's name, kept on the result.
        confidence: the interval's confidence level.

    Examples:
        >>> d = paired_delta({0: 0.70, 1: 0.68, 2: 0.75}, {0: 0.60, 1: 0.70, 2: 0.65})
        >>> round(d.mean, 3), d.n, d.improved
        (0.06, 3, 2)
    """
    seeds = sorted(set(values) & set(reference))
    diffs = [values[s] - reference[s] for s in seeds if math.isfinite(values[s] - reference[s])]
    mean, low, high = t_interval(diffs, confidence)
    std = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else (0.0 if diffs else math.nan)
    improved = sum(1 for d in diffs if (d > 0 if greater_is_better else d < 0))
    return PairedDelta(setting, reference_name, mean, low, high, std, len(diffs), improved, greater_is_better)


@dataclass(frozen=True)
class Unit:
    """What a claim is decided on: one corpus × task's first headline metric, every setting's seeds."""

    corpus: str
    task: str
    metric: str
    label: str
    greater_is_better: bool
    values: Mapping[str, Mapping[int, float]]  # setting -> seed -> value

    @property
    def name(self) -> str:
        return f"{self.corpus} {self.task} {self.label}"

    def delta(self, setting: str, reference: str) -> PairedDelta | None:
        if setting not in self.values or reference not in self.values:
            return None
        return paired_delta(self.values[setting], self.values[reference], self.greater_is_better, setting, reference)


@dataclass
class ClaimVerdict:
    """One claim, one comparison: the verdict and the reason, in words a report can print."""

    claim: str
    comparison: str
    verdict: str
    reason: str
    evidence: list[str] = field(default_factory=list)

    def to_record(self) -> dict[str, object]:
        return {"claim": self.claim, "comparison": self.comparison, "verdict": self.verdict,
                "reason": self.reason, "evidence": list(self.evidence)}


GAIN = "multi-task gain"
STABILITY = "stability across seeds"
WEAK_GOLD = "weak ≈ gold"


def assess_gain(units: Sequence[Unit], setting: str, baseline: str = "single-task") -> ClaimVerdict:
    """Claim 1 for one multi-task ``setting`` (see the module doc)."""
    comparison = f"{setting} vs {baseline}"
    deltas = [(unit, unit.delta(setting, baseline)) for unit in units]
    deltas = [(u, d) for u, d in deltas if d is not None and d.direction != "n/a"]
    if not deltas:
        return ClaimVerdict(GAIN, comparison, NOT_TESTABLE, f"no corpus has {setting} and {baseline} on 2+ seeds.")
    evidence = [f"{u.name}: Δ {d.format()} (n={d.n}, {d.direction})" for u, d in deltas]
    worse = [u.name for u, d in deltas if d.direction == "worse"]
    if worse:
        return ClaimVerdict(GAIN, comparison, CONTRADICTED,
                            f"the 95% interval of Δ lies below 0 on {', '.join(worse)}.", evidence)
    tasks = sorted({u.task for u, _ in deltas})
    helped = {u.task for u, d in deltas if d.direction == "better"}
    if helped == set(tasks):
        return ClaimVerdict(GAIN, comparison, SUPPORTED,
                            f"every task ({', '.join(tasks)}) has a corpus whose Δ interval lies above 0, "
                            "and no interval lies below 0.", evidence)
    missing = [t for t in tasks if t not in helped]
    return ClaimVerdict(GAIN, comparison, INCONCLUSIVE,
                        f"no Δ interval lies above 0 for {', '.join(missing)} (they contain 0), none below.", evidence)


def assess_stability(
    units: Sequence[Unit], setting: str, baseline: str = "single-task", confidence: float = CONFIDENCE
) -> ClaimVerdict:
    """Claim 2 for one multi-task ``setting``: the mean log ratio of seed stds, t-interval over units."""
    comparison = f"{setting} vs {baseline}"
    ratios, evidence, skipped = [], [], []
    for unit in units:
        a, b = unit.values.get(setting), unit.values.get(baseline)
        if not a or not b or len(a) < 2 or len(b) < 2:
            continue
        std_a, std_b = float(np.std(list(a.values()), ddof=1)), float(np.std(list(b.values()), ddof=1))
        if not (std_a > 0 and std_b > 0):
            skipped.append(unit.name)
            continue
        ratios.append(math.log(std_a / std_b))
        evidence.append(f"{unit.name}: seed std {std_a:.4f} vs {std_b:.4f} (ratio {std_a / std_b:.2f})")
    if len(ratios) < 2:
        return ClaimVerdict(STABILITY, comparison, NOT_TESTABLE,
                            f"fewer than 2 corpus × task pairs with 2+ seeds and non-zero spread in both "
                            f"settings{' (zero spread: ' + ', '.join(skipped) + ')' if skipped else ''}.", evidence)
    mean, low, high = t_interval(ratios, confidence)
    summary = (f"mean std ratio {math.exp(mean):.2f} (95% interval {math.exp(low):.2f}–{math.exp(high):.2f}) "
               f"over {len(ratios)} corpus × task pairs")
    if high < 0:
        return ClaimVerdict(STABILITY, comparison, SUPPORTED, f"{summary}: below 1, {setting} varies less.", evidence)
    if low > 0:
        return ClaimVerdict(STABILITY, comparison, CONTRADICTED, f"{summary}: above 1, {setting} varies more.", evidence)
    return ClaimVerdict(STABILITY, comparison, INCONCLUSIVE, f"{summary}: the interval contains 1.", evidence)


def assess_weak_vs_gold(
    units: Sequence[Unit],
    weak: str = "multi-task-weak",
    gold: str = "multi-task-gold",
    margin: float = NONINFERIORITY_MARGIN,
    primary_tasks: Mapping[str, str] | None = None,
) -> ClaimVerdict:
    """Claim 3: non-inferiority of weak to gold labels where they differ (see the module doc).

    Args:
        primary_tasks: corpus -> its primary task; when given, only those corpus × task units
            decide (a corpus not in it counts with every task).
    """
    comparison = f"{weak} vs {gold}"
    if primary_tasks:
        units = [u for u in units if primary_tasks.get(u.corpus, u.task) == u.task]
    deltas = [(unit, unit.delta(weak, gold)) for unit in units]
    deltas = [(u, d) for u, d in deltas if d is not None]
    if not deltas:
        return ClaimVerdict(WEAK_GOLD, comparison, NOT_TESTABLE,
                            f"{gold} did not run (no corpus has a gold auxiliary task a teacher could replace).")
    same = [u.name for u, d in deltas if d.identical]
    differing = [(u, d) for u, d in deltas if not d.identical and d.n >= 2 and not math.isnan(d.low)]
    if not differing:
        return ClaimVerdict(WEAK_GOLD, comparison, NOT_TESTABLE,
                            "the two settings are the same runs on every corpus (no gold label was replaced)"
                            if same else "fewer than 2 paired seeds.")
    evidence = [f"{u.name}: Δ {d.format()} (n={d.n})" for u, d in differing]
    if same:
        evidence.append(f"identical runs, left out: {', '.join(same)}")
    worse = [u.name for u, d in differing if d.oriented()[2] < -margin]
    unclear = [u.name for u, d in differing if d.oriented()[1] < -margin and d.oriented()[2] >= -margin]
    if worse:
        return ClaimVerdict(WEAK_GOLD, comparison, CONTRADICTED,
                            f"weak labels are worse than gold by more than {margin:g} on {', '.join(worse)} "
                            "(the whole interval).", evidence)
    if unclear:
        return ClaimVerdict(WEAK_GOLD, comparison, INCONCLUSIVE,
                            f"the interval reaches below −{margin:g} on {', '.join(unclear)}: weak may be worse "
                            "than gold by more than the margin.", evidence)
    where = "primary task" if primary_tasks else "corpus × task"
    return ClaimVerdict(WEAK_GOLD, comparison, SUPPORTED,
                        f"on every {where} where they differ, weak is at most {margin:g} worse than gold "
                        "(the interval's lower end).", evidence)


def assess_claims(
    units: Sequence[Unit],
    settings: Sequence[str],
    baseline: str = "single-task",
    margin: float = NONINFERIORITY_MARGIN,
    primary_tasks: Mapping[str, str] | None = None,
) -> list[ClaimVerdict]:
    """The three claims for the settings a study ran (claims 1 and 2 once per multi-task setting).

    Args:
        primary_tasks: corpus -> primary task, for claim 3 (see ``assess_weak_vs_gold``).
    """
    verdicts: list[ClaimVerdict] = []
    multi = [s for s in ("multi-task", "multi-task-weak") if s in settings]
    if baseline not in settings or not multi:
        verdicts.append(ClaimVerdict(GAIN, "", NOT_TESTABLE, f"the study ran no {baseline} and multi-task pair."))
        verdicts.append(ClaimVerdict(STABILITY, "", NOT_TESTABLE, f"the study ran no {baseline} and multi-task pair."))
    else:
        verdicts.extend(assess_gain(units, s, baseline) for s in multi)
        verdicts.extend(assess_stability(units, s, baseline) for s in multi)
    if "multi-task-weak" in settings:
        verdicts.append(assess_weak_vs_gold(units, margin=margin, primary_tasks=primary_tasks))
    else:
        verdicts.append(ClaimVerdict(WEAK_GOLD, "", NOT_TESTABLE, "the study ran no multi-task-weak setting."))
    return verdicts


@dataclass(frozen=True)
class Collapse:
    """A model that predicted one class for every scored row of a corpus."""

    setting: str
    seed: int
    corpus: str
    task: str
    label: str
    rows: int

    def message(self) -> str:
        return (f"{self.setting} seed {self.seed} predicts only '{self.label}' on {self.corpus} {self.task} "
                f"({self.rows}/{self.rows} test rows): a collapsed model, whatever its scores say.")


def find_collapses(counts: Mapping[tuple[str, int, str, str], Mapping[str, float]]) -> list[Collapse]:
    """Models that predicted a single class: ``(setting, seed, corpus, task) -> class -> count``."""
    found = []
    for (setting, seed, corpus, task), by_class in sorted(counts.items()):
        total = sum(by_class.values())
        nonzero = [label for label, count in by_class.items() if count > 0]
        if total > 0 and len(by_class) > 1 and len(nonzero) == 1:
            found.append(Collapse(setting, seed, corpus, task, nonzero[0], int(total)))
    return found
