"""The study as one list of jobs: ``jobs()`` is the only enumeration of what a study trains.

For every seed (see ``mtaffect.study`` for what each setting means):

* a **linear-probe** job per (corpus, task[, fold]): no seed of its own, fitted once and
  recorded for every seed;
* a **cross-fit teacher** job per (corpus, auxiliary task[, fold], part): once per study;
* a **single-task** job per (corpus, task[, fold]) and seed: a baseline and a teacher;
* per fold of the union: the **multi-task** control, a **multi-task-weak candidate** per grid
  point (λ, mode, threshold), the choice per task among them, and the same for
  **multi-task-gold** where some corpus has a gold auxiliary task to replace;
* with a ``context_grid``: a **single-task + context candidate** per single-task model and
  context option and a **multi-task + context candidate** per union fold and option (gold
  labels only, like the multi-task control), each followed by its choice per task.

Each ``Job`` has a key (a tuple) and the keys of the jobs it depends on: a weak candidate
waits for the teachers that weak-label its corpora (its seed's single-task models of the
other corpora and the cross-fitted teachers of its own), a choice for its grid's candidates.
The list is in a topological order (the order a single process trains it in); records,
resume, the ETA, the fold means, the report and ``mtaffect run --plan`` all read it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from datasets import DatasetDict

from mtaffect.data.context import ContextOptions, require_context
from mtaffect.data.schema import feature_dims
from mtaffect.recipes import model_encoders
from mtaffect.study.config import StudyConfig, corpus_tasks
from mtaffect.tasks import TASK_NAMES
from mtaffect.teachers import choose_teacher

#: The setting of the multi-task-weak candidates (one per λ / mode / threshold); the chosen
#: one is recorded again as ``multi-task-weak``.
CANDIDATE = "multi-task-weak candidate"
#: The setting of the multi-task-gold models (one per grid point some corpus' primary task chose).
GOLD_CANDIDATE = "multi-task-gold candidate"
#: The settings of the per-task choices, by the setting of the candidates they choose among.
#: The settings of a single-task / multi-task model with conversational context, one per
#: ``context_grid`` option; the one chosen per task is recorded again as ``single-task + context``
#: / ``multi-task + context``.
SINGLE_CONTEXT_CANDIDATE = "single-task + context candidate"
MULTI_CONTEXT_CANDIDATE = "multi-task + context candidate"
CONTEXT_CANDIDATES = (SINGLE_CONTEXT_CANDIDATE, MULTI_CONTEXT_CANDIDATE)
#: The settings of the per-task choices, by the setting of the candidates they choose among.
CHOICE_OF = {CANDIDATE: "multi-task-weak", GOLD_CANDIDATE: "multi-task-gold",
             SINGLE_CONTEXT_CANDIDATE: "single-task + context", MULTI_CONTEXT_CANDIDATE: "multi-task + context"}
#: Every candidate setting: its models are recorded for resuming, the report shows the choices.
CANDIDATES = tuple(CHOICE_OF)

GridPoint = tuple[float, str, "float | None"]
#: A ``context_grid`` option as (past, future, speakers): hashable, part of a candidate's key.
ContextPoint = tuple[int, int, bool]
#: (setting, seed, fold, corpus, task, grid point, part, context): what names a job.
JobKey = tuple[str, "int | None", "int | None", "str | None", "str | None", "GridPoint | None", "int | None",
               "ContextPoint | None"]


def fold_tag(fold: int | None) -> str:
    return "" if fold is None else f" [fold {fold}]"


def grid_name(weight: float, mode: str, threshold: float | None) -> str:
    return f"λ={weight} mode={mode} threshold={threshold}"


def context_name(point: ContextPoint) -> str:
    """``context past=2`` (``future=1``, ``no speakers`` where they differ from the defaults)."""
    past, future, speakers = point
    return f"context past={past}" + (f" future={future}" if future else "") + ("" if speakers else " no speakers")


def context_point(options: ContextOptions) -> ContextPoint:
    return (options.past, options.future, options.speakers)


@dataclass(frozen=True)
class Job:
    """One training (or one per-task choice) of the study.

    Args:
        setting: what it is (``linear-probe``, ``cross-fit teacher``, ``single-task``,
            ``multi-task``, ``CANDIDATE``, ``GOLD_CANDIDATE``, ``multi-task-weak``,
            ``multi-task-gold``: the last two are the choices per task).
        seed: its training seed (``None`` for a probe: it has none).
        fold: the fold of the cross-validated corpus it reads, if any.
        corpus: the one corpus of a probe, a single-task model or a cross-fit teacher.
        task: its one task.
        point: the grid point (λ, mode, threshold) of a candidate.
        part: which of the K cross-fitted teachers.
        context: the context option (past, future, speakers) of a context candidate.
        deps: keys of the jobs it needs first.
        seeds: the seeds its records are written for (a probe: every seed; others: their own).
        k: the number of cross-fitted teachers (names a cross-fit teacher's record).
    """

    setting: str
    seed: int | None = None
    fold: int | None = None
    corpus: str | None = None
    task: str | None = None
    point: GridPoint | None = None
    part: int | None = None
    context: ContextPoint | None = None
    deps: tuple[JobKey, ...] = ()
    seeds: tuple[int, ...] = ()
    k: int = 0

    @property
    def key(self) -> JobKey:
        return (self.setting, self.seed, self.fold, self.corpus, self.task, self.point, self.part, self.context)

    @property
    def choice_point(self) -> GridPoint | ContextPoint | None:
        """What a per-task choice picks this candidate by: its context option or its grid point."""
        return self.context if self.setting in CONTEXT_CANDIDATES else self.point

    @property
    def context_options(self) -> dict[str, Any] | None:
        """The model's ``context`` (``MTAffectConfig``) for a context candidate, else ``None``."""
        if self.context is None:
            return None
        past, future, speakers = self.context
        return {"past": past, "future": future, "speakers": speakers}

    @property
    def trains(self) -> bool:
        """Whether it trains a model (a per-task choice only reads its candidates' records)."""
        return self.setting not in CHOICE_OF.values()

    @property
    def teaches(self) -> bool:
        """Whether other jobs read its model (single-task models and cross-fitted teachers)."""
        return self.setting in ("single-task", "cross-fit teacher")

    @property
    def model(self) -> str:
        """The ``model`` field of its record (what ``results.jsonl`` has always called it)."""
        if self.setting in ("linear-probe", "single-task", CHOICE_OF[SINGLE_CONTEXT_CANDIDATE]):
            return f"{self.corpus}/{self.task}"
        if self.setting == SINGLE_CONTEXT_CANDIDATE:
            return f"{self.corpus}/{self.task} {context_name(self.context)}"
        if self.setting == MULTI_CONTEXT_CANDIDATE:
            return f"union, {context_name(self.context)}"
        if self.setting == "cross-fit teacher":
            return f"{self.corpus}/{self.task} {(self.part or 0) + 1}/{self.k}{fold_tag(self.fold)}"
        if self.setting == "multi-task":
            return "union"
        if self.setting == CANDIDATE:
            return grid_name(*self.point)
        if self.setting == GOLD_CANDIDATE:
            return f"gold auxiliary labels, {grid_name(*self.point)}"
        return "chosen per task"

    @property
    def shown(self) -> str:
        """Its setting as progress lines show it (a candidate belongs to the setting it is chosen for)."""
        return CHOICE_OF.get(self.setting, self.setting)

    @property
    def detail(self) -> str:
        """What progress lines say about it."""
        if self.setting == "multi-task":
            return f"union, gold labels only (λ = 0){fold_tag(self.fold)}"
        if self.setting == "cross-fit teacher":
            return self.model
        return self.model + fold_tag(self.fold)

    def record_keys(self) -> list[tuple[str, int, str, int | None]]:
        """(setting, seed, model, fold) of the model records it writes (none for a cross-fit teacher)."""
        if self.setting == "cross-fit teacher":
            return []
        return [(self.setting, seed, self.model, self.fold) for seed in self.seeds]


@dataclass
class StudyPlan:
    """What the study trains, derived once from the corpora and the config."""

    tasks: dict[str, list[str]]
    study_tasks: list[str]
    pairs: list[tuple[str, str]]
    grid: list[GridPoint]
    #: Some corpus has a gold auxiliary task a teacher can replace; without one, multi-task-gold
    #: would be the very same model as multi-task-weak, so it is not trained.
    replaces_gold: bool
    #: The linear probe runs (``StudyConfig.linear_probe``).
    probe: bool = True
    #: Folds of the cross-validated corpus (1: none).
    folds: int = 1
    #: The cross-validated corpus (``folds`` in its source), if any.
    fold_corpus: str | None = None
    #: (corpus, auxiliary task) pairs whose gold labels cross-fitted same-corpus teachers replace.
    cross_fit: list[tuple[str, str]] = field(default_factory=list)
    #: Per fold of the union: which corpus' single-task model weak-labels (corpus, task) where
    #: no cross-fit does (``choose_teacher``, which weighs the corpora of that fold).
    teachers: dict[tuple[int | None, str, str], str | None] = field(default_factory=dict)
    #: The ``context_grid`` options (none: the study has no context settings).
    contexts: list[ContextPoint] = field(default_factory=list)

    @classmethod
    def build(cls, corpora: Mapping[str, DatasetDict], config: StudyConfig,
              by_fold: Sequence[Mapping[str, DatasetDict]] | None = None) -> StudyPlan:
        """The plan of ``corpora`` (the first fold's, with ``by_fold`` every fold's: teachers are chosen per fold)."""
        tasks = corpus_tasks(corpora, config)
        folded = [source for source in config.corpora if source.folds is not None and source.name in tasks]
        cross_fit = [(name, task) for name, own in tasks.items() for task in own[1:]] if config.cross_fit_folds else []
        study_tasks = [t for t in TASK_NAMES if any(t in own for own in tasks.values())]
        versions = list(by_fold or [corpora])
        folds = list(range(len(versions))) if folded and len(versions) > 1 else [None]
        # A model with pretrained encoders reads the raw inputs of text-only corpora (any corpus' transcripts).
        raw = list(model_encoders(config.model))
        teachers = {(fold, name, task): choose_teacher(name, task, versions[fold or 0], tasks, raw_modalities=raw)
                    for fold in folds for name, own in tasks.items() for task in study_tasks if task not in own[:1]}
        contexts = [context_point(option) for option in config.context_options()]
        if contexts:
            require_context(corpora, f"context_grid {config.context_grid} compares models with conversational context",
                            among="no corpus of the study")
        return cls(
            tasks=tasks,
            study_tasks=study_tasks,
            pairs=[(name, task) for name, own in tasks.items() for task in own],
            grid=[
                (weight, mode, threshold)
                for weight in config.weak_loss_weights
                for mode in config.weak_label_modes
                for threshold in config.weak_thresholds
            ],
            contexts=contexts,
            replaces_gold=bool(cross_fit) or any(teachers.get((folds[0], name, task)) is not None
                                                 for name, own in tasks.items() for task in own[1:]),
            # The probe reads features: a study on text-only corpora (its models read the transcripts) has none.
            probe=config.linear_probe and all(feature_dims(next(iter(c.values())).features) for c in corpora.values()),
            folds=folded[0].num_folds if folded else 1,
            fold_corpus=folded[0].name if folded else None,
            cross_fit=cross_fit,
            teachers=teachers,
        )

    def corpus_folds(self, name: str) -> list[int | None]:
        """The folds a model of ``name`` alone is trained on: every fold for the cross-validated corpus."""
        return list(range(self.folds)) if name == self.fold_corpus else [None]

    @property
    def union_folds(self) -> list[int | None]:
        """The folds a model of the union is trained on (every fold when one corpus is cross-validated)."""
        return list(range(self.folds)) if self.fold_corpus else [None]

    def teacher_of(self, fold: int | None, name: str, task: str) -> str | None:
        """The corpus whose single-task model weak-labels ``task`` of ``name`` in the union of ``fold``."""
        return self.teachers.get((fold, name, task), self.teachers.get((None, name, task)))

    def own_fold(self, name: str, fold: int | None) -> int | None:
        """The fold of ``name``'s own models that a union model of ``fold`` reads."""
        return fold if name == self.fold_corpus else None

    @property
    def models_per_seed(self) -> int:
        """Models trained per seed: a probe per (corpus, task) when on, then every model."""
        alone = sum(len(self.corpus_folds(name)) for name, _ in self.pairs)
        union = 1 + len(self.grid) * (2 if self.replaces_gold else 1) + len(self.contexts)
        return (alone if self.probe else 0) + alone * (1 + len(self.contexts)) + union * len(self.union_folds)


def jobs(plan: StudyPlan, config: StudyConfig) -> list[Job]:
    """Every job of the study, in a topological order (the one a single process trains them in)."""
    seeds = tuple(config.seeds)
    k = int(config.cross_fit_folds or 0)
    alone = [(name, task, fold) for name, task in plan.pairs for fold in plan.corpus_folds(name)]
    out = [Job("linear-probe", None, f, n, t, seeds=seeds) for n, t, f in alone] if plan.probe else []
    out += [Job("cross-fit teacher", config.cross_fit_seed, f, n, t, part=j, seeds=seeds[:1], k=k)
            for n, t in plan.cross_fit for f in plan.corpus_folds(n) for j in range(k)]
    for seed in seeds:
        out += [Job("single-task", seed, f, n, t, seeds=(seed,)) for n, t, f in alone]
        for n, t, f in alone if plan.contexts else []:
            out += _choice(SINGLE_CONTEXT_CANDIDATE, [Job(SINGLE_CONTEXT_CANDIDATE, seed, f, n, t, context=c, seeds=(seed,))
                                                      for c in plan.contexts])
        for fold in plan.union_folds:
            out.append(Job("multi-task", seed, fold, seeds=(seed,)))
            out += _choice(MULTI_CONTEXT_CANDIDATE, [Job(MULTI_CONTEXT_CANDIDATE, seed, fold, context=c, seeds=(seed,))
                                                     for c in plan.contexts])
            for setting in (CANDIDATE, GOLD_CANDIDATE) if plan.replaces_gold else (CANDIDATE,):
                deps = tuple(_teacher_keys(plan, config, seed, fold, replace_auxiliary=setting == CANDIDATE))
                out += _choice(setting, [Job(setting, seed, fold, point=point, deps=deps, seeds=(seed,))
                                         for point in plan.grid])
    return out


def _choice(setting: str, candidates: list[Job]) -> list[Job]:
    """``candidates`` then the job choosing among them per task (none without candidates)."""
    if not candidates:
        return []
    first = candidates[0]
    return [*candidates, Job(CHOICE_OF[setting], first.seed, first.fold, first.corpus, first.task,
                             deps=tuple(c.key for c in candidates), seeds=first.seeds)]


def single_task_key(seed: int | None, fold: int | None, corpus: str, task: str) -> JobKey:
    """The key of the single-task job of (seed, fold, corpus, task): the teacher a weak-label job reads."""
    return Job("single-task", seed, fold, corpus, task).key


def cross_fit_key(seed: int, fold: int | None, corpus: str, task: str, part: int) -> JobKey:
    """The key of cross-fitted teacher ``part`` of (corpus, task) in ``fold`` (``seed``: the study's cross-fit seed)."""
    return Job("cross-fit teacher", seed, fold, corpus, task, part=part).key


def _teacher_keys(plan: StudyPlan, config: StudyConfig, seed: int, fold: int | None,
                  replace_auxiliary: bool) -> Iterable[JobKey]:
    """The teachers a union model of (seed, fold) reads (``weak_label_sources``), as job keys."""
    for name, task, source in weak_label_sources(plan, fold, replace_auxiliary):
        own = plan.own_fold(source or name, fold)
        if source == "":
            continue
        if source is None:  # its own cross-fitted teachers
            yield from (cross_fit_key(config.cross_fit_seed, own, name, task, j)
                        for j in range(int(config.cross_fit_folds or 0)))
        else:
            yield single_task_key(seed, own, source, task)


def weak_label_sources(plan: StudyPlan, fold: int | None, replace_auxiliary: bool) -> list[tuple[str, str, str | None]]:
    """(corpus, task, teacher corpus) of every weak label a union model's corpora get.

    A missing task, or a gold auxiliary task when ``replace_auxiliary``: by its cross-fitted
    teachers (teacher corpus ``None``) where there are some, else by another corpus'
    single-task model (``choose_teacher``): ``""`` where there is none (a note says so).
    """
    sources = []
    for name, own in plan.tasks.items():
        for task in plan.study_tasks:
            auxiliary = task in own[1:]
            if task in own and not (auxiliary and replace_auxiliary):
                continue
            if auxiliary and (name, task) in plan.cross_fit:
                sources.append((name, task, None))
            else:
                sources.append((name, task, plan.teacher_of(fold, name, task) or ""))
    return sources


# ------------------------------------------------------------------------------------------
# Cost: what a job weighs, the critical path, the fewest machines


def job_work(job: Job, rows: Mapping[str, int], config: StudyConfig) -> float:
    """A job's work in training rows × epochs (a probe: its rows; a choice: none).

    Models of one setting share a pace per unit of work, which is what the ETA and the plan
    scale recorded seconds by.
    """
    epochs = float(config.training.get("num_train_epochs") or 1)
    if not job.trains:
        return 0.0
    if job.setting == "linear-probe":
        return float(rows.get(job.corpus, 0))
    if job.setting in ("single-task", SINGLE_CONTEXT_CANDIDATE):
        return rows.get(job.corpus, 0) * epochs
    if job.setting == "cross-fit teacher":  # trained on (K-1)/K of the rows
        return rows.get(job.corpus, 0) * epochs * (1 - 1 / max(job.k, 2))
    return sum(rows.values()) * epochs


def critical_path(all_jobs: Sequence[Job], cost: Mapping[JobKey, float]) -> tuple[float, list[JobKey]]:
    """The longest chain of dependent jobs by ``cost``: no number of machines finishes sooner."""
    longest: dict[JobKey, tuple[float, list[JobKey]]] = {}
    for job in all_jobs:  # topological order: every dependency is seen first
        before = max((longest[d] for d in job.deps if d in longest), key=lambda item: item[0], default=(0.0, []))
        longest[job.key] = (before[0] + cost.get(job.key, 0.0), [*before[1], job.key])
    return max(longest.values(), key=lambda item: item[0], default=(0.0, []))


def upward_rank(all_jobs: Sequence[Job], cost: Mapping[JobKey, float]) -> dict[JobKey, float]:
    """Per job: its cost plus the longest chain of jobs that wait on it (who to start first)."""
    dependents: dict[JobKey, list[JobKey]] = {}
    for job in all_jobs:
        for dep in job.deps:
            dependents.setdefault(dep, []).append(job.key)
    rank: dict[JobKey, float] = {}
    for job in reversed(all_jobs):
        rank[job.key] = cost.get(job.key, 0.0) + max((rank[d] for d in dependents.get(job.key, [])), default=0.0)
    return rank


def fewest_machines(total: float, path: float) -> int:
    """Workers that could finish ``total`` seconds of work in critical-path time (a lower bound)."""
    return max(1, math.ceil(total / path)) if path > 0 else 1


def job_label(key: JobKey | Job) -> str:
    """A short readable name of a job (plan listings, log lines)."""
    job = key if isinstance(key, Job) else Job(*key)
    seed = "" if job.seed is None or job.setting == "cross-fit teacher" else f"seed {job.seed} "
    return f"{seed}{job.setting} {job.detail}".strip()
