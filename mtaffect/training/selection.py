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

What a kept step costs: the parameters that do not train (a frozen encoder, the frozen part
of a ``top-K`` one) are the same at every step, so they are copied once and shared by every
snapshot; each step keeps only the trained parameters and the buffers. With
``snapshot_dir`` those go to disk (one safetensors file per kept step, deleted when no task
chooses that step any more), so a model that fine-tunes an encoder holds no copy of it per
task in memory.

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
import os
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from mtaffect.metrics import PRIMARY_METRICS, split_metric_key

logger = logging.getLogger(__name__)

__all__ = ["PerTaskSelection", "Snapshots"]


class Snapshots(MutableMapping):
    """Step -> the model's state dict at that step, storing only what can change between steps.

    ``take(step, model)`` records a step; ``snapshots[step]`` gives back the full state dict
    (loadable with ``model.load_state_dict``). Parameters without ``requires_grad`` are copied
    once (at the first step taken) and shared; per step only the trained parameters and the
    buffers are kept, in memory or, with ``folder``, in ``folder/step-<N>.safetensors``.

    Args:
        folder: where each step's part is written (created when needed); ``None`` keeps it in memory.
    """

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self._shared: dict[str, torch.Tensor] = {}
        self._steps: dict[int, dict[str, torch.Tensor] | Path] = {}
        self._order: list[str] = []

    def take(self, step: int, model: Any) -> None:
        """Record ``model``'s state at ``step``."""
        trained = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
        state = model.state_dict()
        if not self._order:
            self._order = list(state)
            self._shared = {k: v.detach().to("cpu", copy=True) for k, v in state.items()
                            if k not in trained and k in dict(model.named_parameters())}
        varying = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items() if k not in self._shared}
        if self.folder is None:
            self._steps[int(step)] = varying
            return
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"step-{int(step)}.safetensors"
        # Tied weights share storage; safetensors stores each name on its own.
        save_file({k: v.clone() for k, v in varying.items()}, str(path))
        self._steps[int(step)] = path

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        stored = self._steps[step]
        if isinstance(stored, Path):
            from safetensors.torch import load_file

            stored = load_file(str(stored))
        merged = {**self._shared, **stored}
        return {key: merged[key] for key in self._order}

    def __setitem__(self, step: int, state: dict[str, torch.Tensor]) -> None:
        self._order = self._order or list(state)
        self._steps[int(step)] = {k: v for k, v in state.items() if k not in self._shared}

    def __delitem__(self, step: int) -> None:
        stored = self._steps.pop(step)
        if isinstance(stored, Path):
            stored.unlink(missing_ok=True)

    def __iter__(self) -> Iterator[int]:
        return iter(self._steps)

    def __len__(self) -> int:
        return len(self._steps)

    def stored_bytes(self) -> int:
        """Bytes the kept steps take in memory (the shared part included; files on disk not)."""
        tensors = [*self._shared.values(), *(v for s in self._steps.values() if isinstance(s, dict) for v in s.values())]
        return sum(t.numel() * t.element_size() for t in tensors)


class PerTaskSelection(TrainerCallback):
    """Track each (corpus, task)'s best validation step and its weights; stop when none improves.

    Args:
        patience: evaluations without any (corpus, task) improving before training stops;
            ``None`` never stops early.
        min_delta: an improvement must beat the best score by more than this.
        prefix: the metric prefix of the validation evaluations (``eval``).
        keep_weights: keep the weights at each best step (needed by
            ``MultiTaskTrainer.evaluate_per_task``; ``False`` only records the steps).
        snapshot_dir: keep them on disk in this folder instead of in memory (``Snapshots``).
    """

    def __init__(
        self,
        patience: int | None = None,
        min_delta: float = 0.0,
        prefix: str = "eval",
        keep_weights: bool = True,
        snapshot_dir: str | os.PathLike | None = None,
    ) -> None:
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1 (evaluations without improvement) or None, got {patience!r}.")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.prefix = prefix
        self.keep_weights = keep_weights
        self.best: dict[str, dict[str, Any]] = {}  # "corpus/task" -> {"step", "score", "metric"}
        self.snapshots = Snapshots(snapshot_dir)  # step -> state dict (only what changes is stored per step)
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
            self.snapshots.take(state.global_step, model)
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
