"""Weak labels: a single-task teacher fills a task's labels where a corpus has no gold label.

Each corpus is annotated for some tasks only (MOSEI: sentiment + emotion, IEMOCAP: emotion,
MUStARD: sarcasm). A *teacher* (an ``MTAffectForMultiTaskAffect``
trained on the corpora that carry a task's gold label, see ``mtaffect.teachers``)
predicts that task on the other corpora; ``add_weak_labels`` writes its predictions into the
schema's weak columns with ``datasets.map``:

==========================  =============================================================
column                      written value
==========================  =============================================================
``emotion_weak`` [7]        soft: teacher probabilities over the union labels, restricted to
                            the labels the teacher was trained on (0 elsewhere): softmax over
                            those labels for a single-label teacher, sigmoid per label for a
                            multi-label one. hard: one-hot argmax (single-label) or
                            ``p >= 0.5`` per label (multi-label).
``emotion_weak_mask`` [7]   the teacher's known labels (all off below the threshold)
``emotion_weak_multilabel`` whether the teacher is multi-label
``sentiment_weak``          soft: the predicted score, clipped to [-3, 3]; hard: rounded to the
                            nearest integer (the 7-class view ``Mult_acc_7`` scores)
``sarcasm_weak``            soft: P(sarcastic); hard: ``P >= 0.5`` as 0/1
``<task>_weak_mask``        on where the teacher labelled the row and its confidence reached
                            ``threshold``
``<task>_weak_confidence``  see below, always in [0, 1], computed from the soft prediction
==========================  =============================================================

Confidence (what the ``threshold`` option compares against):

* emotion, single-label teacher: the top probability (softmax over the known labels), so
  ``1/k`` for a teacher torn between its ``k`` labels and 1 for a certain one;
* emotion, multi-label teacher: mean over known labels of ``|2p - 1|`` (0 when every label
  sits at p = 0.5, 1 when every label is decided);
* sarcasm: ``|2p - 1|``;
* sentiment, ``sentiment_confidence="boundary"`` (default, free): how far the score is from the
  nearest boundary of the three-class view (``±0.5``, see
  ``mtaffect.tasks.sentiment_score_to_class``), ``min(1, 2 * distance)``. It says how stable
  the *class* the score implies is, not how close the score is to the truth: a regression head
  has no likelihood, so a confidently wrong score still gets 1.
* sentiment, ``sentiment_confidence="mc_dropout"``: the fraction of ``mc_samples`` forward passes
  with dropout on whose three-class view agrees with the deterministic prediction's class, a
  real (if crude) model-uncertainty estimate that costs ``mc_samples`` extra forwards.

Where the teacher writes: only on rows whose gold label for ``task`` is missing (emotion:
no label of ``emotion_mask`` set) unless ``label_gold=True`` (also label gold rows, keeping
the gold, so ``weak_label_quality`` can compare them) or an ablation is asked for:

* ``ablation="replace"``: hide the gold labels of ``task`` (value 0, mask off, class -1) and
  write the teacher's labels on every row: "weak instead of gold" for the paper's claim that
  weak labels are as good as gold ones when the tasks correlate;
* ``ablation="hide"``: hide the gold labels of ``task`` and write nothing (no teacher needed):
  the "no auxiliary labels" control.

Rows below the threshold keep the teacher's prediction and confidence for inspection, with
their mask off, so no loss uses them. Gold columns are never modified outside an ablation,
and every call returns a new dataset: the input is left as it was, and no file of it is
rewritten (the cache file below is a new file next to them).

Caching: the labels are computed by ``datasets.map(batched=True)`` over the columns the
teacher reads, and only the label columns it writes come out of it; the result joins them
to the untouched columns (``concatenate_datasets(axis=1)``, no copy of the features). The
``map`` is cached by a fingerprint of (the dataset's fingerprint, a sha256 of the teacher's
weights and config, the options) passed as ``new_fingerprint``, in a ``cache-weak-*.arrow``
file next to the dataset's Arrow files (or under ``HF_DATASETS_CACHE`` if that folder is
read-only) holding just those few label columns. Re-running the same call reloads it without
running the teacher; another teacher, other weights or another option recomputes.
``cache=False`` computes in memory and writes nothing. Datasets that live in memory (built
with ``from_dict``, not loaded from disk) have no cache folder: they are labelled again on
every call (``datasets`` behaves the same way for every ``map``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import torch
from datasets import Dataset, DatasetDict, Features, concatenate_datasets

from mtaffect.configuration_mtaffect import WEAK_LABEL_MODES
from mtaffect.data.arrow import column_values, pad_rows, read_columns
from mtaffect.data.collator import mask_key
from mtaffect.data.context import (
    CONTEXT_POSITION,
    CONTEXT_SAME_SPEAKER,
    CONTEXT_SPEAKER,
    CONTEXT_TEXT,
    RAW_CONTEXT_COLUMNS,
    context_feature_column,
)
from mtaffect.data.schema import (
    NUM_EMOTIONS,
    SchemaError,
    corpus_label_spaces,
    corpus_name,
    feature_column,
    feature_dims,
    get_corpus_info,
    labelled_rows,
    unknown_labels,
)
from mtaffect.metrics import (
    emotion_multiclass_metrics,
    emotion_multilabel_metrics,
    sarcasm_metrics,
    sentiment_class_metrics,
    sentiment_regression_metrics,
)
from mtaffect.tasks import (
    GOLD_COLUMNS,
    LABEL_SPACES,
    MAX_POLARITY_CLASSES,
    SENTIMENT_RANGE,
    WEAK_COLUMNS,
    LabelSpace,
    check_task,
    convert_emotion,
    label_space,
    polarity_to_score,
    score_to_polarity,
)
from mtaffect.teachers import (
    CrossFittedTeachers,
    TeacherError,
    TeacherRecord,
    check_teacher_for_dataset,
    conversion,
    get_teacher_record,
    load_teacher,
    teacher_space,
)

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)

#: Bumped whenever the labelling arithmetic changes, so old cache files are not reused.
WEAK_LABELS_VERSION = "2"

WeakMode = Literal["soft", "hard"]
Ablation = Literal["replace", "hide"]
SentimentConfidence = Literal["boundary", "mc_dropout"]




# --------------------------------------------------------------------------------------------
# Fingerprints.
# --------------------------------------------------------------------------------------------


def teacher_fingerprint(model: nn.Module) -> str:
    """sha256 of a model's weights (every tensor of its state dict, by name) and its config."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{data.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())
    config = {k: v for k, v in model.config.to_dict().items() if not k.startswith("_") and k != "transformers_version"}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _weak_fingerprint(dataset: Dataset, teacher_hash: str, options: dict[str, Any]) -> str:
    payload = json.dumps(
        {"version": WEAK_LABELS_VERSION, "dataset": dataset._fingerprint, "teacher": teacher_hash, **options},
        sort_keys=True,
    )
    return "weak-" + hashlib.sha256(payload.encode()).hexdigest()[:40]


# --------------------------------------------------------------------------------------------
# Turning teacher outputs into weak labels.
# --------------------------------------------------------------------------------------------


@dataclass
class _Labeller:
    """Everything the ``map`` function needs: built once per call, reused for every batch."""

    model: nn.Module
    record: TeacherRecord
    task: str
    mode: WeakMode
    threshold: float | None
    ablation: Ablation | None
    label_gold: bool
    modalities: list[str]
    device: torch.device
    sentiment_confidence: SentimentConfidence
    mc_samples: int
    feature_dims: dict[str, int]
    encoder_inputs: Any = None  # EncoderInputCollator of a teacher with pretrained encoders
    context_columns: tuple[str, ...] = ()  # the context columns a teacher with config.context reads
    source: LabelSpace | None = None
    target: LabelSpace | None = None
    forward_calls: int = 0

    def __call__(self, table: pa.Table) -> dict[str, Any]:
        context = [c for c in self.context_columns if c in table.column_names]
        batch = read_columns(table.drop_columns(context), self.feature_dims)
        for column in context:  # ragged lists per row (turns): read as rows, collated like the trainer's
            batch[column] = [np.asarray(value) for value in table.column(column).to_pylist()]
        if self.encoder_inputs is not None:
            for column in ("text", "audio"):
                if column in table.column_names:
                    batch[column] = table.column(column).to_pylist()
        n = table.num_rows
        out = {name: np.asarray(batch[name]).copy() for name in WEAK_COLUMNS[self.task]}
        gold = labelled_rows(batch, self.task)
        if self.ablation is not None:
            out.update(_hidden_gold(self.task, n))
        if self.ablation == "hide":
            return out
        target = np.ones(n, dtype=bool) if (self.ablation == "replace" or self.label_gold) else ~gold
        if target.any():
            rows = np.flatnonzero(target)
            predictions = self.predict(batch, rows)
            for name, values in predictions.items():
                out[name][rows] = values
        return out

    def predict(self, batch: dict[str, Any], rows: np.ndarray) -> dict[str, np.ndarray]:
        """Weak-label columns for ``rows`` of ``batch`` (one teacher forward, or more for MC dropout)."""
        inputs = self.model_inputs(batch, rows)
        self.forward_calls += 1
        output = self.model(**inputs).head_outputs[self.source.key]
        if self.task == "emotion":
            return self._emotion(output)
        if self.task == "sarcasm":
            return self._sarcasm(output)
        if self.source.kind == "score":
            return self._sentiment(output, inputs)
        return self._polarity(output)

    def model_inputs(self, batch: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
        """Padded feature tensors and masks of ``rows``: the keys and values ``MTAffectCollator`` gives."""
        feature_sets = set(batch["feature_set"][rows].tolist())
        if len(feature_sets) != 1:
            raise ValueError(f"A batch mixes feature sets {sorted(feature_sets)}; label each corpus separately.")
        inputs: dict[str, Any] = {"feature_set": feature_sets.pop()}
        if self.context_columns:
            from mtaffect.data.collator import MTAffectCollator

            turns = [{c: batch[c][i] for c in self.context_columns if c in batch} for i in rows]
            for key, value in MTAffectCollator(feature_dims=dict(self.feature_dims))._context(turns).items():
                inputs[key] = value.to(self.device)
        if self.encoder_inputs is not None:
            raw = [{c: batch[c][i] for c in ("id", "text", "audio", *RAW_CONTEXT_COLUMNS) if c in batch} for i in rows]
            for key, value in self.encoder_inputs(raw).items():
                inputs[key] = value.to(self.device)
        for modality in self.modalities:
            values, lengths = batch[feature_column(modality)]
            features, mask = pad_rows(values, lengths, rows)
            inputs[feature_column(modality)] = features.to(self.device, non_blocking=True)
            inputs[mask_key(modality)] = mask.to(self.device, non_blocking=True)
        return inputs

    def _emotion(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        source, target = self.source, self.target
        logits = logits.float()
        probs = (torch.sigmoid(logits) if source.kind == "multilabel" else torch.softmax(logits, dim=1)).cpu().numpy()
        known = np.ones(len(target.labels), dtype=bool)
        if target.key != source.key:
            probs, known = convert_emotion(probs, source, target)
        n = probs.shape[0]
        multilabel = target.kind == "multilabel"
        if multilabel:
            confidence = (np.abs(2 * probs - 1) * known).sum(1) / known.sum()
            hard = (probs >= 0.5).astype(np.float64) * known
        else:
            confidence = probs.max(1)
            hard = np.zeros_like(probs)
            hard[np.arange(n), probs.argmax(1)] = 1.0
        values = hard if self.mode == "hard" else probs
        confidence = np.clip(confidence, 0, 1).astype(np.float32)
        union_index = target.union_index()
        vector = np.zeros((n, NUM_EMOTIONS), dtype=np.float32)
        vector[:, union_index] = values
        mask = np.zeros((n, NUM_EMOTIONS), dtype=bool)
        mask[:, union_index] = known[None, :]
        mask &= self._passes(confidence)[:, None]
        return {
            "emotion_weak": vector,
            "emotion_weak_mask": mask,
            "emotion_weak_multilabel": np.full(n, multilabel),
            "emotion_weak_confidence": confidence,
        }

    def _polarity_columns(self, probs: np.ndarray, confidence: np.ndarray) -> dict[str, np.ndarray]:
        """Weak columns of class probabilities ``[N, K]`` in the target polarity space."""
        n, k = probs.shape
        if self.mode == "hard":
            hard = np.zeros_like(probs)
            hard[np.arange(n), probs.argmax(1)] = 1.0
            probs = hard
        padded = np.zeros((n, MAX_POLARITY_CLASSES), dtype=np.float32)
        padded[:, :k] = probs
        confidence = np.clip(confidence, 0, 1).astype(np.float32)
        return {
            "sentiment_weak": np.zeros(n, dtype=np.float32),
            "sentiment_weak_mask": self._passes(confidence),
            "sentiment_weak_confidence": confidence,
            "sentiment_weak_probs": padded,
            "sentiment_weak_num_classes": np.full(n, k, dtype=np.int64),
        }

    def _polarity(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        """A polarity teacher: its class probabilities, or (converted) their expected score."""
        probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
        confidence = probs.max(1)
        if self.target.key == self.source.key:
            return self._polarity_columns(probs, confidence)
        low, high = SENTIMENT_RANGE
        scores = np.clip(polarity_to_score(probs, self.source), low, high)
        if self.target.kind == "score":
            values = np.round(scores) if self.mode == "hard" else scores
            n = len(scores)
            return {
                "sentiment_weak": values.astype(np.float32),
                "sentiment_weak_mask": self._passes(confidence),
                "sentiment_weak_confidence": confidence.astype(np.float32),
                "sentiment_weak_probs": np.zeros((n, MAX_POLARITY_CLASSES), dtype=np.float32),
                "sentiment_weak_num_classes": np.zeros(n, dtype=np.int64),
            }
        return self._score_as_polarity(scores, confidence)

    def _score_as_polarity(self, scores: np.ndarray, confidence: np.ndarray) -> dict[str, np.ndarray]:
        classes = score_to_polarity(scores, self.target)
        probs = np.zeros((len(scores), len(self.target.labels)))
        probs[np.arange(len(scores)), classes] = 1.0
        return self._polarity_columns(probs, confidence)

    def _sarcasm(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        probs = torch.sigmoid(logits.float().reshape(-1)).cpu().numpy().astype(np.float32)
        confidence = np.abs(2 * probs - 1).astype(np.float32)
        values = (probs >= 0.5).astype(np.float32) if self.mode == "hard" else probs
        return {"sarcasm_weak": values, "sarcasm_weak_mask": self._passes(confidence), "sarcasm_weak_confidence": confidence}

    def _sentiment(self, score: torch.Tensor, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        low, high = SENTIMENT_RANGE
        scores = score.float().reshape(-1).clamp(low, high).cpu().numpy()
        if self.sentiment_confidence == "mc_dropout":
            confidence = self._mc_agreement(scores, inputs)
        else:
            thresholds = np.asarray(self.target.thresholds if self.target.kind == "classes" else (-0.5, 0.5))
            distance = np.abs(scores[:, None] - thresholds[None, :]).min(1)
            confidence = np.minimum(1.0, 2.0 * distance)
        confidence = confidence.astype(np.float32)
        if self.target.kind == "classes":
            return self._score_as_polarity(scores, confidence)
        values = np.round(scores) if self.mode == "hard" else scores
        n = len(scores)
        return {
            "sentiment_weak": values.astype(np.float32),
            "sentiment_weak_mask": self._passes(confidence),
            "sentiment_weak_confidence": confidence,
            "sentiment_weak_probs": np.zeros((n, MAX_POLARITY_CLASSES), dtype=np.float32),
            "sentiment_weak_num_classes": np.zeros(n, dtype=np.int64),
        }

    def _mc_agreement(self, scores: np.ndarray, inputs: dict[str, Any]) -> np.ndarray:
        reference = _three_class(scores)
        agree = np.zeros(len(scores), dtype=np.float64)
        with _dropout_on(self.model):
            for _ in range(self.mc_samples):
                self.forward_calls += 1
                sample = self.model(**inputs).head_outputs[self.source.key].float().reshape(-1).cpu().numpy()
                agree += _three_class(sample) == reference
        return agree / self.mc_samples

    def _passes(self, confidence: np.ndarray) -> np.ndarray:
        if self.threshold is None:
            return np.ones(len(confidence), dtype=bool)
        return confidence >= self.threshold


def _three_class(scores: np.ndarray) -> np.ndarray:
    return np.round(np.clip(scores, -1.0, 1.0)).astype(np.int64)


@contextmanager
def _dropout_on(model: nn.Module):
    """Train mode for everything but batch norm (MC dropout), restored afterwards."""
    from torch.nn.modules.batchnorm import _BatchNorm

    states = {module: module.training for module in model.modules()}
    try:
        for module in model.modules():
            module.train(not isinstance(module, _BatchNorm))
        yield
    finally:
        for module, training in states.items():
            module.training = training


def _has_dropout(model: nn.Module) -> bool:
    return any(
        isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules()
    )


def _hidden_gold(task: str, n: int) -> dict[str, np.ndarray]:
    """Gold columns of ``task`` set to "unknown" (the schema's value 0 / class -1, mask off)."""
    unknown = unknown_labels()
    out = {}
    for name in GOLD_COLUMNS[task]:
        value = np.asarray(unknown[name])
        out[name] = np.repeat(value[None], n, 0) if value.ndim else np.full(n, value)
    return out


# --------------------------------------------------------------------------------------------
# The public entry points.
# --------------------------------------------------------------------------------------------


def add_weak_labels(
    dataset: Dataset | DatasetDict,
    teacher: nn.Module | str | os.PathLike | None,
    task: str,
    mode: WeakMode = "soft",
    threshold: float | None = None,
    ablation: Ablation | None = None,
    label_gold: bool = False,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    cache: bool = True,
    sentiment_confidence: SentimentConfidence = "boundary",
    mc_samples: int = 8,
    seed: int = 0,
    desc: str | None = None,
    convert: bool = False,
) -> Dataset | DatasetDict:
    """Write ``teacher``'s labels for ``task`` into the weak columns where gold is missing.

    Weak labels are written in the label space of the corpus' own gold labels for ``task``
    (``mtaffect.data.schema.corpus_label_spaces``), or, for a corpus without gold labels for
    it, in the teacher's space. A teacher of another space (a [-3, 3] score teacher for MELD's
    polarity classes, an EmoryNLP teacher for MELD's emotion set) is refused with a
    ``TeacherError`` unless ``convert=True``, which converts its output by the rules of
    ``mtaffect.tasks`` (score -> polarity by thresholds, polarity -> expected score, emotion
    set -> set through the union labels they share) and records the conversion in the
    corpus' notes (``notes["weak_labels"][task]["conversion"]``).

    Args:
        dataset: a unified-schema ``Dataset`` or ``DatasetDict`` (every split is labelled).
        teacher: a model or a ``save_pretrained`` folder predicting ``task`` (``None`` only
            with ``ablation="hide"``).
        task: ``"emotion"``, ``"sentiment"`` or ``"sarcasm"``.
        mode: ``"soft"`` (probabilities / score) or ``"hard"`` (argmax or ``>= 0.5`` / 0-1 /
            score rounded to an integer); see the module docstring.
        threshold: confidence in [0, 1] below which the weak mask is left off.
        ablation: ``"replace"`` (hide gold, label every row) or ``"hide"`` (hide gold only).
        label_gold: also label rows that have a gold label (gold kept), for
            ``weak_label_quality``.
        batch_size: rows per ``map`` batch and teacher forward.
        device: where the teacher runs (default: CUDA if available, else CPU). The model is
            moved back to its original device and train/eval mode afterwards.
        cache: reuse / write the ``datasets`` cache file (datasets loaded from disk only);
            ``False`` recomputes in memory and writes nothing.
        sentiment_confidence: ``"boundary"`` or ``"mc_dropout"`` (see the module docstring).
        mc_samples: forward passes for ``"mc_dropout"``.
        seed: seeds the dropout masks of ``"mc_dropout"``.
        desc: progress-bar text.
        convert: convert a teacher of another label space than the corpus' (see above).

    Returns:
        A new dataset of the same type with the weak columns (and, in an ablation, the gold
        columns) of ``task`` rewritten; the input is not modified.

    Examples:
        >>> labelled = add_weak_labels(meld, "teachers/sarcasm", "sarcasm", threshold=0.5)  # doctest: +SKIP
        >>> labelled["train"]["sarcasm_weak_mask"][:3]  # doctest: +SKIP
        [True, False, True]
    """
    check_task(task)
    if mode not in WEAK_LABEL_MODES:
        raise ValueError(f"mode must be 'soft' or 'hard', got {mode!r}.")
    if ablation not in (None, "replace", "hide"):
        raise ValueError(f"ablation must be None, 'replace' or 'hide', got {ablation!r}.")
    if threshold is not None and not (isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold must be a confidence in [0, 1] or None, got {threshold!r}.")
    if sentiment_confidence not in ("boundary", "mc_dropout"):
        raise ValueError(f"sentiment_confidence must be 'boundary' or 'mc_dropout', got {sentiment_confidence!r}.")
    if batch_size < 1 or mc_samples < 1:
        raise ValueError("batch_size and mc_samples must be >= 1.")
    if ablation == "hide" and teacher is not None:
        logger.info("ablation='hide' hides the gold %s labels; the teacher is not used.", task)
    if ablation != "hide" and teacher is None:
        raise ValueError("A teacher is required unless ablation='hide'.")
    splits = dataset.items() if isinstance(dataset, DatasetDict) else [(None, dataset)]
    for split_name, split in splits:
        _check_columns(split, task, split_name)

    model = None if ablation == "hide" else load_teacher(teacher, task)
    options: dict[str, Any] = {"task": task, "ablation": ablation}
    if model is not None:
        options.update(mode=mode, threshold=threshold, label_gold=label_gold, convert=bool(convert))
        if task == "sentiment":
            options.update(sentiment_confidence=sentiment_confidence)
            if sentiment_confidence == "mc_dropout":
                options.update(mc_samples=mc_samples, seed=seed)
                if not _has_dropout(model):
                    raise TeacherError(
                        "sentiment_confidence='mc_dropout' needs a teacher with dropout > 0; this one "
                        "has none, every pass would agree. Use 'boundary'."
                    )
    teacher_hash = teacher_fingerprint(model) if model is not None else "none"

    def run(split: Dataset, name: str | None) -> Dataset:
        return _label_split(split, name, model, task, options, teacher_hash, batch_size, device, cache, desc)

    if model is None:
        return _map_splits(dataset, run)
    with _teacher_ready(model, device) as ready_device:
        device = ready_device
        # MC dropout draws from the global RNG: seed it for repeatable confidences, then put
        # the caller's RNG state back.
        cuda = [ready_device.index or 0] if ready_device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            return _map_splits(dataset, run)


def add_cross_fitted_weak_labels(
    corpus: DatasetDict,
    cross_fitted: CrossFittedTeachers,
    mode: WeakMode = "soft",
    threshold: float | None = None,
    ablation: Ablation | None = "replace",
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> DatasetDict:
    """Weak labels for a corpus' *own* rows, each row labelled by the teacher blind to its fold.

    The rows of fold ``j`` (of every split ``cross_fitted.folds`` covers) are labelled by
    ``cross_fitted.teachers[j]`` with ``add_weak_labels`` (same options, same columns, in the
    corpus' own label space), then put back in their original order. The default
    ``ablation="replace"`` hides the gold labels of the task, which is what "weak instead of
    gold" compares: a corpus' gold auxiliary task replaced by out-of-fold teacher labels.
    The corpus notes record ``cross_fitted: k`` beside the usual weak-label provenance.

    Args:
        corpus: the corpus the teachers were cross-fitted on (same rows, same order).
        cross_fitted: from ``mtaffect.teachers.cross_fit_teachers``.
        mode: as for ``add_weak_labels``.
        threshold: as for ``add_weak_labels``.
        ablation: as for ``add_weak_labels`` (default ``"replace"``: weak instead of gold).
        batch_size: as for ``add_weak_labels``.
        device: as for ``add_weak_labels``.

    Returns:
        A new ``DatasetDict``; splits the cross-fit has no folds for are returned unchanged.
    """
    task = cross_fitted.task
    teacher_hash = hashlib.sha256(
        " ".join(teacher_fingerprint(teacher) for teacher in cross_fitted.teachers).encode()
    ).hexdigest()
    out = {}
    for split, dataset in corpus.items():
        folds = cross_fitted.folds.get(split)
        if folds is None:
            out[split] = dataset
            continue
        if len(folds) != dataset.num_rows:
            raise ValueError(f"split {split!r} has {dataset.num_rows} rows but the cross-fit dealt {len(folds)} to folds: "
                             "label the corpus the teachers were cross-fitted on.")
        parts, order = [], []
        for j, teacher in enumerate(cross_fitted.teachers):
            rows = np.flatnonzero(folds == j)
            if len(rows) == 0:
                continue
            parts.append(add_weak_labels(dataset.select(rows), teacher, task, mode=mode, threshold=threshold,
                                         ablation=ablation, batch_size=batch_size, device=device, cache=False))
            order.append(rows)
        # Back to the original row order: position p of the concatenation holds row order[p].
        position = np.empty(dataset.num_rows, dtype=np.int64)
        position[np.concatenate(order)] = np.arange(dataset.num_rows)
        labelled = concatenate_datasets(parts, info=parts[0].info.copy(), split=dataset.split)
        labelled = labelled.select(position).flatten_indices()
        options = dict(get_corpus_info(parts[0]).notes.get("weak_labels", {}).get(task, {}))
        options.pop("teacher_sha256", None)
        _note_provenance(labelled, task, {**options, "cross_fitted": cross_fitted.k, "fold_seed": cross_fitted.seed},
                         teacher_hash)
        out[split] = labelled
    return DatasetDict(out)


def _map_splits(dataset: Dataset | DatasetDict, run: Any) -> Dataset | DatasetDict:
    if isinstance(dataset, DatasetDict):
        return DatasetDict({name: run(split, name) for name, split in dataset.items()})
    return run(dataset, None)


@contextmanager
def _teacher_ready(model: nn.Module, device: str | torch.device | None):
    """Teacher in eval mode on ``device`` under ``inference_mode``; restored afterwards."""
    target = torch.device(device) if device is not None else _default_device()
    parameter = next(model.parameters(), None)
    original = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    model.to(target)
    model.eval()
    try:
        with torch.inference_mode():
            yield target
    finally:
        model.to(original)
        model.train(was_training)


def _default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _label_split(
    split: Dataset,
    split_name: str | None,
    model: nn.Module | None,
    task: str,
    options: dict[str, Any],
    teacher_hash: str,
    batch_size: int,
    device: torch.device | str | None,
    cache: bool,
    desc: str | None,
) -> Dataset:
    if split.num_rows == 0:
        return split  # nothing to label (map would not even produce the output columns)
    record = get_teacher_record(model, task) if model is not None else TeacherRecord(task=task)
    modalities = check_teacher_for_dataset(model, record, split) if model is not None else []
    encoder_inputs, raw_columns = None, []
    if model is not None and (getattr(model.config, "pretrained_encoders", None) or {}):
        from mtaffect.data.raw_inputs import RAW_COLUMNS, EncoderInputCollator

        # A teacher with pretrained encoders reads the raw columns through its own processors.
        encoder_inputs = EncoderInputCollator.for_model(model, base=lambda rows: {})
        encoder_inputs.processors = {
            m: p for m, p in encoder_inputs.processors.items() if RAW_COLUMNS[m] in split.column_names
        }
        raw_columns = [RAW_COLUMNS[m] for m in encoder_inputs.processors]
    context_columns: list[str] = []
    context = getattr(getattr(model, "config", None), "context", None) or {}
    if context.get("past") or context.get("future"):
        # A teacher with context reads the rows' context turns (pooled features, or text for its encoder).
        wanted = [context_feature_column(m) for m in model.config.context_modalities]
        wanted += [CONTEXT_POSITION, CONTEXT_SAME_SPEAKER]
        if encoder_inputs is not None and "text" in encoder_inputs.processors:
            wanted += [CONTEXT_TEXT, CONTEXT_SPEAKER]
        context_columns = [c for c in dict.fromkeys(wanted) if c in split.column_names]
        if not context_columns:
            logger.warning("The %s teacher reads conversational context, which %s lacks: it labels without it.",
                           task, corpus_name(split))
    source = target = None
    if model is not None:
        source = teacher_space(model, task)
        target = corpus_label_spaces(split).get(task, source)
        rule = conversion(source, target)
        if rule != "none" and _rows_to_label(split, task, options):
            if not options.get("convert"):
                raise TeacherError(
                    f"The {task} teacher predicts {source.key} but corpus {corpus_name(split)!r} uses {target.key}: "
                    f"its labels do not fit. Pass convert=True to convert them ({rule}), or use a teacher "
                    f"trained in {target.key}."
                )
            logger.warning("Weak %s labels for %s converted: %s.", task, corpus_name(split), rule)
        options = {**options, "teacher_space": source.key, "target_space": target.key, "conversion": rule}
    labeller = _Labeller(
        model=model,  # type: ignore[arg-type]
        record=record,
        task=task,
        mode=options.get("mode", "soft"),
        threshold=options.get("threshold"),
        ablation=options["ablation"],
        label_gold=options.get("label_gold", False),
        modalities=modalities,
        device=torch.device(device) if device is not None else torch.device("cpu"),
        sentiment_confidence=options.get("sentiment_confidence", "boundary"),
        mc_samples=options.get("mc_samples", 1),
        feature_dims=feature_dims(split.features),
        encoder_inputs=encoder_inputs,
        context_columns=tuple(context_columns),
        source=source,
        target=target,
    )
    fingerprint = _weak_fingerprint(split, teacher_hash, options)
    outputs = [*WEAK_COLUMNS[task], *(GOLD_COLUMNS[task] if options["ablation"] else ())]
    inputs = ["feature_set", *GOLD_COLUMNS[task][1:2], *WEAK_COLUMNS[task]]
    inputs += [feature_column(m) for m in modalities] + raw_columns + context_columns
    # Only the columns the teacher reads go through map, and only the label columns it writes
    # come out: the cache file holds a few label columns, not a copy of the features. Arrow
    # batches (not the numpy format) because the numpy formatter converts ragged [T, D]
    # sequences row by row, which costs more than the teacher's forward (see mtaffect.data.arrow).
    source = split.select_columns(list(dict.fromkeys(inputs + outputs))).with_format("arrow")
    kwargs: dict[str, Any] = {"new_fingerprint": fingerprint}
    if not cache:
        kwargs.update(keep_in_memory=True, load_from_cache_file=False)
    elif split.cache_files:
        kwargs["cache_file_name"] = _cache_file(split, fingerprint)
    where = f" ({split_name})" if split_name else ""
    all_features = split.features  # a deep copy per access
    labels = source.map(
        labeller,
        batched=True,
        batch_size=batch_size,
        features=Features({name: all_features[name] for name in outputs}),
        remove_columns=[name for name in source.column_names if name not in outputs],
        desc=desc or f"weak {task} labels{where}",
        **kwargs,
    )
    logger.info(
        "%s weak labels for %s%s: %d teacher forward calls (0 = cache hit).",
        task, corpus_name(split), where, labeller.forward_calls,
    )
    # Every datasets transform deep-copies the dataset: only the needed ones (a fixed cost per split).
    result = concatenate_datasets(
        [split.remove_columns(outputs), labels], axis=1, info=split.info.copy(), split=split.split
    )
    if result.column_names != split.column_names:
        result = result.select_columns(split.column_names)
    original_format = split.format
    if result.format != original_format:
        result = result.with_format(
            type=original_format["type"],
            columns=original_format["columns"],
            output_all_columns=original_format["output_all_columns"],
            **original_format["format_kwargs"],
        )
    _note_provenance(result, task, options, teacher_hash)
    return result


def _rows_to_label(split: Dataset, task: str, options: Mapping[str, Any]) -> bool:
    """Whether the teacher will label any row of ``split`` (rows without gold, unless every row)."""
    if options["ablation"] == "replace" or options.get("label_gold"):
        return split.num_rows > 0
    return not labelled_rows(split.with_format("numpy", columns=[f"{task}_mask"])[:], task).all()


def _cache_file(split: Dataset, fingerprint: str) -> str:
    """``cache-<fingerprint>.arrow`` next to the dataset's files, or in the HF cache if read-only."""
    folder = Path(split.cache_files[0]["filename"]).parent
    if not os.access(folder, os.W_OK):
        from datasets import config

        folder = Path(config.HF_DATASETS_CACHE) / "mtaffect_weak_labels"
        folder.mkdir(parents=True, exist_ok=True)
    return str(folder / f"cache-{fingerprint}.arrow")


def _note_provenance(dataset: Dataset, task: str, options: dict[str, Any], teacher_hash: str) -> None:
    """Record in the corpus metadata which teacher and options produced the weak labels."""
    info = get_corpus_info(dataset)
    if info.corpus == "unknown":
        return
    info.notes.setdefault("weak_labels", {})[task] = {**options, "teacher_sha256": teacher_hash}
    if options["ablation"] is not None and task in info.tasks:
        info.tasks = [t for t in info.tasks if t != task]
    dataset.info.description = info.to_json()


def _check_columns(split: Dataset, task: str, split_name: str | None) -> None:
    missing = [c for c in (*GOLD_COLUMNS[task], *WEAK_COLUMNS[task], "feature_set") if c not in split.column_names]
    if missing:
        where = f"split {split_name!r}" if split_name else "dataset"
        raise SchemaError(
            f"{where} lacks the unified-schema columns {missing}; convert the corpus with an "
            "mtaffect loader (mtaffect.data.corpora) first."
        )



# --------------------------------------------------------------------------------------------
# Teacher quality: weak vs gold where both exist.
# --------------------------------------------------------------------------------------------


def weak_label_quality(
    dataset: Dataset | DatasetDict,
    task: str,
    gold: Dataset | DatasetDict | None = None,
) -> dict[str, Any]:
    """How well the weak labels of ``task`` agree with the gold ones, where both exist.

    Compares rows whose weak mask is on (confident enough) and whose gold label is known, read
    from ``dataset`` itself (label it with ``add_weak_labels(..., label_gold=True)``) or from
    ``gold``, the same rows before an ``ablation="replace"`` (ids must match). Metrics come
    from ``mtaffect.metrics``, chosen by the gold annotation's kind:

    * emotion, single-label gold: ``accuracy``, ``weighted_f1``, ``macro_f1`` of the weak
      argmax over the labels both the teacher and the corpus know (rows whose gold class the
      teacher does not know are left out and counted in ``n_gold_label_unknown_to_teacher``);
      multi-label gold: per-label ``weighted_acc`` / ``weighted_f1`` of ``p > 0.5``, averaged;
    * sentiment: ``Corr`` (Pearson r) and ``MAE`` against the gold score, the MMSA binary and
      7-class accuracies for score-labelled rows, and 3-class ``accuracy`` / ``weighted_f1``
      for class-labelled rows (MELD);
    * sarcasm: ``accuracy``, ``weighted_f1`` (and precision / recall).

    Every metric also comes as ``majority_<metric>``: the same metric for a constant
    prediction of the gold majority class (the gold mean for MAE), the chance level to beat.
    Also ``n_compared``, ``n_gold``, ``coverage`` (``n_compared / n_gold``) and
    ``mean_confidence``. A ``DatasetDict`` gives one report per split.
    """
    check_task(task)
    if isinstance(dataset, DatasetDict):
        if gold is not None and not isinstance(gold, DatasetDict):
            raise TypeError("gold must be a DatasetDict when dataset is one.")
        return {
            name: weak_label_quality(split, task, None if gold is None else gold[name])
            for name, split in dataset.items()
        }
    if isinstance(gold, DatasetDict):
        raise TypeError("gold must be a Dataset when dataset is one.")
    _check_columns(dataset, task, None)
    weak = dataset.with_format("numpy", columns=["id", *WEAK_COLUMNS[task]])[:]
    if gold is not None:
        _check_columns(gold, task, None)
        if gold.num_rows != dataset.num_rows or not np.array_equal(column_values(gold, "id"), column_values(dataset, "id")):
            raise ValueError("gold must hold the same rows (same ids, same order) as dataset.")
    truth = (gold if gold is not None else dataset).with_format("numpy", columns=list(GOLD_COLUMNS[task]))[:]
    gold_rows = labelled_rows(truth, task)
    weak_rows = labelled_rows(weak, f"{task}_weak")
    rows = gold_rows & weak_rows
    report: dict[str, Any] = {
        "task": task,
        "n_gold": int(gold_rows.sum()),
        "n_compared": int(rows.sum()),
    }
    report["coverage"] = report["n_compared"] / report["n_gold"] if report["n_gold"] else float("nan")
    if not rows.any():
        logger.warning(
            "No row has both a gold and a weak %s label: label the gold rows with "
            "add_weak_labels(..., label_gold=True) or pass gold= (the dataset before ablation='replace').",
            task,
        )
        return report
    report["mean_confidence"] = float(np.mean(weak[f"{task}_weak_confidence"][rows]))
    if task == "emotion":
        report.update(_emotion_quality(weak, truth, rows))
    elif task == "sentiment":
        report.update(_sentiment_quality(weak, truth, rows))
    else:
        probs, labels = weak["sarcasm_weak"][rows].astype(np.float64), truth["sarcasm"][rows]
        majority = float(np.mean(labels) > 0.5)
        report.update(sarcasm_metrics(probs, labels))
        report.update(_majority(sarcasm_metrics(np.full(len(labels), majority), labels)))
    return report


def _majority(metrics: Mapping[str, float]) -> dict[str, float]:
    return {f"majority_{name}": value for name, value in metrics.items()}


def _emotion_quality(weak: Mapping[str, Any], truth: Mapping[str, Any], rows: np.ndarray) -> dict[str, Any]:
    probs = np.asarray(weak["emotion_weak"], dtype=np.float64)[rows]
    known = np.asarray(weak["emotion_weak_mask"], dtype=bool)[rows]
    labels = np.asarray(truth["emotion"], dtype=np.float64)[rows]
    shared = known & np.asarray(truth["emotion_mask"], dtype=bool)[rows]
    multilabel = np.asarray(truth["emotion_multilabel"], dtype=bool)[rows]
    if multilabel.any() != multilabel.all():
        raise ValueError("The gold rows mix multi-label and single-label emotion: compare each corpus separately.")
    if not shared.any():
        raise ValueError("The teacher's emotion labels and the corpus' gold labels have no label in common.")
    if multilabel.all():
        majority = np.broadcast_to((labels * shared).sum(0) > shared.sum(0) / 2, labels.shape).astype(np.float64)
        return {
            **emotion_multilabel_metrics(probs, labels, shared),
            **_majority(emotion_multilabel_metrics(majority, labels, shared)),
        }
    inside = (labels * shared).sum(1) > 0
    out: dict[str, Any] = {"n_gold_label_unknown_to_teacher": int((~inside).sum())}
    if not inside.any():
        raise ValueError("No gold emotion of these rows is a label the teacher knows.")
    probs, labels, shared = probs[inside], labels[inside], shared[inside]
    counts = labels.sum(0)
    majority = np.zeros_like(labels)
    majority[:, int(np.argmax(counts))] = 1.0
    out.update(emotion_multiclass_metrics(probs, labels, shared))
    out.update(_majority(emotion_multiclass_metrics(majority, labels, shared)))
    return out


def _sentiment_quality(weak: Mapping[str, Any], truth: Mapping[str, Any], rows: np.ndarray) -> dict[str, Any]:
    scores = np.asarray(weak["sentiment_weak"], dtype=np.float64).copy()
    gold_scores = np.asarray(truth["sentiment"], dtype=np.float64)
    classes = np.asarray(truth["sentiment_class"], dtype=np.int64)
    # Polarity weak labels (class probabilities) are compared on the scale through their
    # expected score, and on the classes through their arg-max.
    weak_counts = np.asarray(weak.get("sentiment_weak_num_classes", np.zeros(len(scores))), dtype=np.int64)
    weak_classes = np.full(len(scores), -1)
    for k in set(weak_counts[weak_counts > 0].tolist()):
        space = next(s for s in LABEL_SPACES.values() if s.task == "sentiment" and len(s.labels) == k and s.kind == "classes")
        if k == 3:
            space = label_space("sentiment/polarity")
        chosen = weak_counts == k
        probs = np.asarray(weak["sentiment_weak_probs"], dtype=np.float64)[chosen][:, :k]
        scores[chosen] = polarity_to_score(probs, space)
        weak_classes[chosen] = probs.argmax(1)
    out: dict[str, Any] = {}
    regression = rows & (classes < 0)
    if regression.any():
        pred, labels = scores[regression], gold_scores[regression]
        out.update(sentiment_regression_metrics(pred, labels))
        out.update(_majority(sentiment_regression_metrics(np.full(len(labels), labels.mean()), labels)))
    labelled = rows & (classes >= 0)
    if labelled.any():
        pred, labels = scores[labelled], classes[labelled]
        on_scale = sentiment_regression_metrics(pred, gold_scores[labelled])
        if (weak_classes[labelled] >= 0).all():
            out.update(sentiment_class_metrics(weak_classes[labelled], labels, prediction_type="class"))
        else:
            out.update(sentiment_class_metrics(pred, labels, prediction_type="score"))
        majority = np.full(len(labels), int(np.bincount(labels, minlength=3).argmax()))
        out.update(_majority(sentiment_class_metrics(majority, labels, prediction_type="class")))
        if not regression.any():
            out.update(Corr=on_scale["Corr"], MAE=on_scale["MAE"])
    return out
