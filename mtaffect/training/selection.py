"""Model selection per task: each (corpus, task) keeps the weights of its own best validation step.

Tasks peak at different steps: on real corpora a large corpus' head may still improve when a
small one has long overfit, so one checkpoint picked on a mean over corpora serves every task
badly. ``PerTaskSelection`` is a ``TrainerCallback`` that, at every evaluation the Trainer
runs (``eval_strategy="steps"`` with ``eval_steps=N``, or ``"epoch"``), reads each
(corpus, task)'s primary validation metric (``mtaffect.metrics.PRIMARY_METRICS``: weighted F1,
or Non0 F1 for scores), keeps a CPU copy of the weights where it improved, and stops training
when no (corpus, task) improved for ``patience`` evaluations (early stopping on every task at
once: training goes on while any task still learns). ``MultiTaskTrainer.evaluate_per_task``
then scores each test corpus' task with the weights of that task's best validation step.

Every choice is made on validation only; ``PerTaskSelection.choices()`` says which step each
(corpus, task) took and its validation score, for the report.

Examples:
    >>> selection = PerTaskSelection(patience=2)
    >>> selection.observe({"eval_a_emotion_weighted_f1": 0.5, "eval_b_sarcasm_weighted_f1": 0.6}, step=10, corpora=["a", "b"])
    ['a/emotion', 'b/sarcasm']
    >>> selection.observe({"eval_a_emotion_weighted_f1": 0.4, "eval_b_sarcasm_weighted_f1": 0.7}, step=20, corpora=["a", "b"])
    ['b/sarcasm']
    >>> {key: choice["step"] for key, choice in selection.choices().items()}
    {'a/emotion': 10, 'b/sarcasm': 20}
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from transformers import TrainerCallback

from mtaffect.metrics import PRIMARY_METRICS, split_metric_key

logger = logging.getLogger(__name__)

__all__ = ["PerTaskSelection"]


class PerTaskSelection(TrainerCallback):
    """Track each (corpus, task)'s best validation step and its weights; stop when none improves.

    Args:
        patience: evaluations without any (corpus, task) improving before training stops;
            ``None`` never stops early.
        min_delta: an improvement must beat the best score by more than this.
        prefix: the metric prefix of the validation evaluations (``eval``).
        keep_weights: keep a CPU copy of the weights at each best step (needed by
            ``MultiTaskTrainer.evaluate_per_task``; ``False`` only records the steps).
    """

    def __init__(
        self, patience: int | None = None, min_delta: float = 0.0, prefix: str = "eval", keep_weights: bool = True
    ) -> None:
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1 (evaluations without improvement) or None, got {patience!r}.")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.prefix = prefix
        self.keep_weights = keep_weights
        self.best: dict[str, dict[str, Any]] = {}  # "corpus/task" -> {"step", "score", "metric"}
        self.snapshots: dict[int, dict[str, Any]] = {}  # step -> CPU state dict
        self.stale = 0
        self.history: list[dict[str, Any]] = []

    # ---- the selection itself (no Trainer needed) ---------------------------------------

    def observe(self, metrics: Mapping[str, float], step: int, corpora: Iterable[str] = ()) -> list[str]:
        """Read one evaluation's metrics; returns the (corpus, task) keys that improved."""
        corpora = list(corpora)
        scores: dict[str, tuple[float, str]] = {}
        for key, value in metrics.items():
            parts = split_metric_key(key, corpora)
            if parts is None or parts.prefix != self.prefix or parts.task is None or parts.corpus is None:
                continue
            candidates = [c.key for c in PRIMARY_METRICS.get(parts.task, ())]
            if parts.name not in candidates or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            name = f"{parts.corpus}/{parts.task}"
            rank = candidates.index(parts.name)
            previous = scores.get(name)
            if previous is None or rank < candidates.index(previous[1]):
                scores[name] = (float(value), parts.name)
        improved = []
        for name, (score, metric) in sorted(scores.items()):
            signed = score if _greater_is_better(metric) else -score
            best = self.best.get(name)
            if best is None or signed > best["signed"] + self.min_delta:
                self.best[name] = {"step": int(step), "score": score, "metric": metric, "signed": signed}
                improved.append(name)
        self.history.append({"step": int(step), **{name: score for name, (score, _) in scores.items()}})
        self.stale = 0 if improved else self.stale + 1
        return improved

    def choices(self) -> dict[str, dict[str, Any]]:
        """(corpus/task) -> ``{"step", "metric", "score"}`` of its best validation evaluation."""
        return {name: {k: v for k, v in best.items() if k != "signed"} for name, best in self.best.items()}

    def steps(self) -> set[int]:
        return {best["step"] for best in self.best.values()}

    # ---- TrainerCallback ----------------------------------------------------------------

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Mapping[str, float] | None = None, **kwargs: Any):
        metrics = metrics or {}
        if not any(key.startswith(self.prefix + "_") for key in metrics):
            return control  # an evaluation of another split (test): not a selection step
        model = kwargs.get("model")
        improved = self.observe(metrics, state.global_step, _corpora_of(metrics, self.prefix))
        if improved and self.keep_weights and model is not None:
            self.snapshots[state.global_step] = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            for step in [s for s in self.snapshots if s not in self.steps()]:
                del self.snapshots[step]  # no task's best any more
        if improved:
            logger.info("step %d: best validation so far for %s", state.global_step, ", ".join(improved))
        if self.patience is not None and self.stale >= self.patience:
            logger.info("No task improved for %d evaluations: stopping at step %d.", self.stale, state.global_step)
            control.should_training_stop = True
        return control


def _greater_is_better(metric: str) -> bool:
    for candidates in PRIMARY_METRICS.values():
        for candidate in candidates:
            if candidate.key == metric:
                return candidate.greater_is_better
    return True


def _corpora_of(metrics: Mapping[str, float], prefix: str) -> list[str]:
    """Corpus names of an evaluation: what precedes ``_loss`` in ``<prefix>_<corpus>_loss`` keys."""
    names = []
    for key in metrics:
        if key.startswith(prefix + "_") and key.endswith("_loss") and key != f"{prefix}_loss":
            names.append(key[len(prefix) + 1 : -len("_loss")])
    return names
