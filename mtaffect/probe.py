"""The linear probe: the simplest baseline a reviewer would try, on the very same features.

Per corpus and task, each example's feature sequences are mean-pooled over frames (every
modality the corpus has, concatenated), standardised on the training split, and fit by
scikit-learn: ``LogisticRegression`` for single-label classes (polarity, MELD's emotions) and
binary tasks (sarcasm), one logistic regression per label for multi-label emotion (MOSEI),
``Ridge`` for [-3, 3] scores. The regularisation strength is chosen on the validation split
(the task's primary metric, ``mtaffect.metrics.PRIMARY_METRICS``), and the test metrics are
computed by ``mtaffect.metrics.compute_corpus_metrics`` from the probe's outputs, so they are
the same numbers, on the same rows, as the neural models'.

Examples:
    >>> from mtaffect.data.corpora.synthetic import make_synthetic_corpus
    >>> corpus = make_synthetic_corpus("synthetic_mustard", size_scale=0.2)
    >>> result = linear_probe(corpus, "sarcasm")
    >>> sorted(result.test_metrics)[:2], result.parameter
    (['primary_score', 'sarcasm_accuracy'], 'C')
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict

from mtaffect.data.schema import MODALITIES, corpus_label_spaces, feature_column, labelled_rows
from mtaffect.metrics import GOLD_LABEL_COLUMNS, PRIMARY_METRICS, compute_corpus_metrics
from mtaffect.tasks import LabelSpace

logger = logging.getLogger(__name__)

#: Regularisation grid: ``C`` of the logistic regressions, ``alpha`` of the ridge regression.
PROBE_GRID: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)

__all__ = ["PROBE_GRID", "ProbeResult", "linear_probe", "pooled_features"]


@dataclass
class ProbeResult:
    """A probe's choice and numbers for one (corpus, task).

    Args:
        space: the label space it predicts (the corpus' own).
        parameter: ``"C"`` (logistic) or ``"alpha"`` (ridge).
        value: the value chosen on validation.
        validation: validation primary score per grid value.
        test_metrics: ``compute_corpus_metrics`` of the test split (``<task>_<metric>`` keys).
    """

    space: str
    parameter: str
    value: float
    validation: dict[float, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)


def pooled_features(split: Dataset) -> np.ndarray:
    """``[N, sum of dims]``: each modality's frames averaged (zeros for an empty sequence), concatenated."""
    parts = []
    for modality in MODALITIES:
        column = feature_column(modality)
        if column not in split.column_names:
            continue
        table = split.with_format("arrow", columns=[column])[:]
        chunked = table.column(column)
        values = chunked.combine_chunks()
        storage = values.storage if hasattr(values, "storage") else values
        lengths = storage.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        frames = storage.flatten().flatten().to_numpy(zero_copy_only=False).astype(np.float64)
        dim = int(split.features[column].shape[1])
        frames = frames.reshape(-1, dim)
        sums = np.add.reduceat(frames, np.r_[0, np.cumsum(lengths)[:-1]], axis=0) if len(frames) else np.zeros((len(lengths), dim))
        sums[lengths == 0] = 0.0
        parts.append(sums / np.maximum(lengths, 1)[:, None])
    if not parts:
        raise ValueError("The split has no feature column: nothing to probe.")
    return np.concatenate(parts, axis=1)


def _labels(split: Dataset) -> dict[str, np.ndarray]:
    table = split.with_format("numpy", columns=[c for c in GOLD_LABEL_COLUMNS if c in split.column_names])[:]
    return {name: np.asarray(table[name]) for name in table}


def _fit_predict(space: LabelSpace, x_train: np.ndarray, labels: dict[str, np.ndarray], rows: np.ndarray,
                 x_eval: Sequence[np.ndarray], value: float) -> list[np.ndarray]:
    """Fit on the labelled train rows; the head-style output (logits / score) for each ``x_eval``."""
    from sklearn.linear_model import LogisticRegression, Ridge

    if space.kind == "score":
        model = Ridge(alpha=value).fit(x_train[rows], labels["sentiment"][rows])
        low, high = space.score_range
        return [np.clip(model.predict(x), low, high) for x in x_eval]
    if space.kind == "binary":
        model = LogisticRegression(C=value, max_iter=2000).fit(x_train[rows], labels["sarcasm"][rows].astype(int))
        return [model.decision_function(x) for x in x_eval]
    if space.task == "sentiment":
        target = labels["sentiment_class"][rows]
        model = LogisticRegression(C=value, max_iter=2000).fit(x_train[rows], target)
        return [_full_logits(model, x, len(space.labels)) for x in x_eval]
    index = space.union_index()
    truth = labels["emotion"][rows][:, index]
    if space.kind == "multilabel":
        outputs = [np.zeros((len(x), len(index))) for x in x_eval]
        for j in range(len(index)):
            y = (truth[:, j] > 0).astype(int)
            if y.min() == y.max():  # one class only: a constant logit
                for out in outputs:
                    out[:, j] = 10.0 if y[0] else -10.0
                continue
            model = LogisticRegression(C=value, max_iter=2000).fit(x_train[rows], y)
            for out, x in zip(outputs, x_eval):
                out[:, j] = model.decision_function(x)
        return outputs
    model = LogisticRegression(C=value, max_iter=2000).fit(x_train[rows], truth.argmax(1))
    return [_full_logits(model, x, len(index)) for x in x_eval]


def _full_logits(model: Any, x: np.ndarray, num_classes: int) -> np.ndarray:
    """Log-probabilities over all ``num_classes`` (a class absent from training gets -inf-ish)."""
    logits = np.full((len(x), num_classes), -1e9)
    logits[:, model.classes_.astype(int)] = model.predict_log_proba(x)
    return logits


def _primary(metrics: dict[str, float], task: str) -> float:
    for candidate in PRIMARY_METRICS[task]:
        value = metrics.get(candidate.key)
        if value is not None and math.isfinite(value):
            return value if candidate.greater_is_better else -value
    return float("nan")


def linear_probe(corpus: DatasetDict, task: str, grid: Sequence[float] = PROBE_GRID) -> ProbeResult:
    """Fit the probe of ``task`` on ``corpus["train"]``, choose on validation, score on test."""
    for split in ("train", "validation", "test"):
        if split not in corpus:
            raise ValueError(f"The linear probe needs train, validation and test splits; the corpus has {list(corpus)}.")
    space = corpus_label_spaces(corpus).get(task)
    if space is None:
        raise ValueError(f"The corpus has no gold {task} labels to probe.")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # BLAS threads only fight each other on small problems and shared cores
        return _linear_probe(corpus, task, space, grid)


def _linear_probe(corpus: DatasetDict, task: str, space: LabelSpace, grid: Sequence[float]) -> ProbeResult:
    from sklearn.preprocessing import StandardScaler

    x = {split: pooled_features(corpus[split]) for split in ("train", "validation", "test")}
    scaler = StandardScaler().fit(x["train"])
    x = {split: scaler.transform(values) for split, values in x.items()}
    labels = {split: _labels(corpus[split]) for split in x}
    rows = labelled_rows(labels["train"], task)
    if not rows.any():
        raise ValueError(f"The train split has no gold {task} label to fit the probe on.")
    head = {"key": space.key, "space": space.to_dict()}
    scores: dict[float, float] = {}
    outputs: dict[float, np.ndarray] = {}
    for value in grid:
        validation, test = _fit_predict(space, x["train"], labels["train"], rows, [x["validation"], x["test"]], value)
        metrics = compute_corpus_metrics({head["key"]: validation}, labels["validation"], include_primary=False,
                                         label_spaces={head["key"]: head["space"]})
        scores[value] = _primary(metrics, task)
        outputs[value] = test
    finite = {v: s for v, s in scores.items() if math.isfinite(s)}
    chosen = max(finite, key=finite.get) if finite else grid[len(grid) // 2]
    test_metrics = compute_corpus_metrics({head["key"]: outputs[chosen]}, labels["test"],
                                          label_spaces={head["key"]: head["space"]})
    logger.info("Linear probe %s: %s=%g chosen on validation (%s).", space.key, _parameter(space), chosen, scores)
    return ProbeResult(space.key, _parameter(space), chosen, scores, test_metrics)


def _parameter(space: LabelSpace) -> str:
    return "alpha" if space.kind == "score" else "C"
