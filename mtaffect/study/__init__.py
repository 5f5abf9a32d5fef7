"""The study: single-task baselines, teachers, weak labels and multi-task models, over seeds.

For every seed:

0. **linear-probe** — per (corpus, task), logistic / ridge regression on the same pooled
   features (``mtaffect.probe``; regularisation chosen on validation): the simplest baseline,
   fitted once per study (it does not depend on the seed) and recorded for every seed.
1. **single-task** — one model per (corpus, task with gold labels), trained on that corpus.
2. **teachers** — those same single-task models. A corpus lacking a task gets weak labels
   from the single-task model of another corpus with that task and the same feature set
   (the largest such corpus; a teacher never labels the corpus it was trained on).
3. **multi-task** — one model, every task, on the union of corpora with gold labels only
   (λ = 0): the control that shows what sharing the encoder alone does.
4. **multi-task-weak** — the same on the union where teachers fill every missing label, and
   where a corpus has gold labels for two tasks, its *auxiliary* (non-primary) task's gold
   labels are replaced by teacher labels. λ (and the weak-label mode and confidence
   threshold, if several are given) is chosen on the validation splits.
5. **multi-task-gold** — the same grid, but corpora keep their gold auxiliary labels (run only
   when some corpus has a gold auxiliary task that a teacher could replace; otherwise it would
   be the very same model as multi-task-weak). Comparing 4 and 5 on those corpora's primary
   tasks tests "weak labels are nearly as good as gold ones".

In 4 and 5 each (corpus, task)'s numbers come from the grid point (λ, mode, threshold) whose
model scored best on *that task's* validation split, so λ is chosen on the target task, not on
a mean over corpora. A corpus' gold auxiliary labels are replaced by **cross-fitted
same-corpus teachers** (``cross_fit_folds``, default 5; ``mtaffect.teachers.cross_fit_teachers``):
K single-task models of that corpus and task, each trained and selected on the rows outside
one fold and labelling the rows inside it, so no row is labelled by a model that saw it and
the weak labels are in the corpus' own label space (MELD's 3 polarity classes for MELD's
sentiment). They are trained once per study (``cross_fit_seed``), each its own job.

A corpus given as **folds** (``folds: 5`` in its source: MUStARD's 5-fold protocol) is
cross-validated inside the one study: every model that reads it is trained once per fold, the
other corpora's single-task models and probes once per seed, and each seed's number is the
mean over folds (predicted-class counts: their sum; a model that predicts one class on one
fold is reported as a collapse of that fold).

Every model is trained with ``MultiTaskTrainer`` with one head per (task, label space) its
corpora use, evaluated on validation at every evaluation step of its Trainer arguments
(``training:`` in the study config; every argument set there is honoured), and each (corpus,
task)'s test numbers are read with the weights of *that task's* best validation step
(``mtaffect.training.selection.PerTaskSelection``; early stopping with ``patience``). Every
choice is made on validation, and the report's metadata lists them (``selected steps``).
A teacher whose label space differs from the corpus' (a [-3, 3] score teacher for MELD's
polarity classes) is converted by ``mtaffect.tasks``' documented rules and the weak-label
notes say so. ``mtaffect.report`` turns the numbers into
``report.json``, ``report.md`` and ``report.png``.

The study is one list of jobs (``mtaffect.study.plan.jobs``: each model above, with the jobs
it waits on), run by an executor (``mtaffect.study.executors``: this process, a pool of
processes, or a Ray cluster). It is resumable and append-only: each model's numbers are
appended to ``results.jsonl`` (one record per seed × setting × model,
``mtaffect.study.records.model_record``) the moment it is evaluated, by the driver only; the
models other jobs read are kept under ``teachers/`` until the study is done, and
``study.json`` holds the config. ``run_study(..., resume=True)`` skips every recorded model
(refusing a changed config), so a study killed mid-way resumes to the same report as an
uninterrupted one, on either backend; ``mtaffect report`` rebuilds a report from whatever is
recorded.

The package, one job per module: ``config`` (``StudyConfig``), ``plan`` (the jobs),
``records`` (``results.jsonl``), ``job`` (running one job), ``executors``, ``runner``
(``run_study``).
"""

from __future__ import annotations

from mtaffect.study.config import (
    BACKENDS,
    STUDY_OWNED_TRAINING,
    StudyConfig,
    config_record,
    corpus_tasks,
    job_resources,
    load_study_corpora,
    load_study_folds,
)
from mtaffect.study.job import STUDY_TRAINING_DEFAULTS, JobResult, run_job, train_and_evaluate
from mtaffect.study.plan import CANDIDATE, GOLD_CANDIDATE, Job, StudyPlan, critical_path, jobs
from mtaffect.study.records import (
    CONFIG_FILE,
    RESULTS_FILE,
    TEACHERS_DIR,
    TrainedModel,
    fold_means,
    model_record,
    read_records,
    recorded_choices,
    recorded_results,
    records_results,
)
from mtaffect.study.runner import StudyInterrupted, StudyProgress, run_study

__all__ = [
    "BACKENDS",
    "CANDIDATE",
    "CONFIG_FILE",
    "GOLD_CANDIDATE",
    "RESULTS_FILE",
    "STUDY_OWNED_TRAINING",
    "STUDY_TRAINING_DEFAULTS",
    "TEACHERS_DIR",
    "Job",
    "JobResult",
    "StudyConfig",
    "StudyInterrupted",
    "StudyPlan",
    "StudyProgress",
    "TrainedModel",
    "config_record",
    "corpus_tasks",
    "critical_path",
    "fold_means",
    "job_resources",
    "jobs",
    "load_study_corpora",
    "load_study_folds",
    "model_record",
    "read_records",
    "recorded_choices",
    "recorded_results",
    "records_results",
    "run_job",
    "run_study",
    "train_and_evaluate",
]
