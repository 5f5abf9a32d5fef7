"""The literature's affect metrics, as pure functions of numpy arrays.

Each function computes one metric family exactly as the field does, so mtaffect numbers can
be put next to published ones:

* ``sentiment_regression_metrics`` — CMU-MOSI/MOSEI, named as MMSA (``metricsTop.py``)
  names them: ``Has0_acc_2`` / ``Has0_F1_score`` (negative vs non-negative, ``>= 0`` on both
  sides), ``Non0_acc_2`` / ``Non0_F1_score`` (negative vs positive, examples whose truth is
  exactly 0 dropped, ``> 0``), ``Mult_acc_5`` / ``Mult_acc_7`` (clip to [-2, 2] / [-3, 3],
  then ``np.round``, which rounds halves to even as MMSA does), ``MAE`` and ``Corr`` (Pearson
  r). F1 is scikit-learn's weighted F1. Unlike MMSA we do not round results to 4 decimals.
* ``sentiment_class_metrics`` — 3-class corpora (MELD): accuracy, weighted and macro F1
  on the class view ``mtaffect.tasks.sentiment_score_to_class``.
* ``emotion_multilabel_metrics`` — CMU-MOSEI emotions (Zadeh et al. 2018; MulT; Dai et
  al.): per label, the weighted accuracy ``(TP * N / P + TN) / (2 * N)`` of Tong et al.
  (ACL 2017, P17-1142), which equals balanced accuracy ``(TP / P + TN / N) / 2``, and the
  weighted F1 of that label's binary problem; both also averaged over labels.
* ``emotion_multiclass_metrics`` — single-label corpora: accuracy, macro and weighted F1
  over classes (MELD reports weighted F1) and, IEMOCAP style (MulT, Dai et al.), per class
  the binary class-vs-rest accuracy and weighted F1, plus their means.
* ``sarcasm_metrics`` — MUStARD: accuracy and weighted precision / recall / F1.

``compute_corpus_metrics`` maps model outputs plus the unified schema's label columns to
all of these (only rows whose mask is on), and ``make_compute_metrics`` wraps it as a
Trainer ``compute_metrics``.

Edge cases are defined, not left to warnings:

* empty input, mismatched lengths, non-finite values -> ``ValueError``;
* ``Corr`` is ``0.0`` when it is undefined (a constant prediction or truth, or one example):
  a collapsed regressor carries no linear information, and a number keeps seed averages and
  JSON reports valid (MMSA's ``np.corrcoef`` gives ``nan`` there);
* ``Non0_acc_2`` / ``Non0_F1_score`` are ``nan`` when no truth is non-zero: the metric is
  defined on an empty set, and 0 or 1 would be a made-up score;
* a class absent from the truth has zero weight in weighted F1 (scikit-learn), and weighted
  (balanced) accuracy is the mean recall over the classes present in the truth, i.e. the
  recall of the only class when one is absent (scikit-learn's ``balanced_accuracy_score``);
* F1 terms that divide by zero are 0 (``zero_division=0``, scikit-learn's default value,
  without its warning).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from scipy.special import expit
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from mtaffect.tasks import EMOTION_LABELS, GOLD_COLUMNS, TASK_NAMES, sentiment_score_to_class

logger = logging.getLogger(__name__)

#: Metric families, also the config names of the ``evaluate`` module.
METRIC_FAMILIES: tuple[str, ...] = (
    "sentiment",
    "sentiment_class",
    "emotion_multilabel",
    "emotion_multiclass",
    "sarcasm",
)

#: Model output names ``compute_corpus_metrics`` reads (``MTAffectOutput`` fields).
OUTPUT_NAMES: tuple[str, ...] = ("emotion_logits", "sentiment_score", "sarcasm_logits")

#: Gold label columns of the unified schema ``compute_corpus_metrics`` reads, in schema order.
GOLD_LABEL_COLUMNS: tuple[str, ...] = tuple(column for task in TASK_NAMES for column in GOLD_COLUMNS[task])


@dataclass(frozen=True)
class PrimaryMetric:
    """A metric used to rank models: its key in ``compute_corpus_metrics`` output."""

    key: str
    greater_is_better: bool = True


#: Per task, the metric that ranks models, in order of preference: the first one present (and
#: not nan) in a corpus' metrics is used. Regression sentiment uses the negative-vs-positive F1
#: (``Non0_F1_score``, the "F1" most MOSI/MOSEI papers headline); 3-class sentiment (MELD),
#: emotion (both families) and sarcasm use weighted F1, the metric those corpora report.
PRIMARY_METRICS: dict[str, tuple[PrimaryMetric, ...]] = {
    "emotion": (PrimaryMetric("emotion_weighted_f1"),),
    "sentiment": (PrimaryMetric("sentiment_Non0_F1_score"), PrimaryMetric("sentiment_weighted_f1")),
    "sarcasm": (PrimaryMetric("sarcasm_weighted_f1"),),
}

#: Key ``compute_corpus_metrics`` stores ``primary_score`` under.
PRIMARY_SCORE_KEY = "primary_score"

# Metric names (suffixes) where a smaller value is better; everything else is higher-better.
_LOWER_IS_BETTER = ("MAE",)


def greater_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` (any key, prefixed or not) is better.

    Examples:
        >>> greater_is_better("sentiment_MAE"), greater_is_better("eval_meld_emotion_weighted_f1")
        (False, True)
    """
    return not any(metric == name or metric.endswith("_" + name) for name in _LOWER_IS_BETTER)


# --------------------------------------------------------------------------------------------
# Metric keys: the one codec of ``<prefix>_<corpus>_<task>_<metric>``

#: What a metric-key prefix of ``Trainer.evaluate`` says about the split it scored.
SPLIT_OF_PREFIX: dict[str, str] = {"eval": "validation", "test": "test", "predict": "test"}


class MetricKey(NamedTuple):
    """A ``Trainer.evaluate`` metric key, split into its parts (see ``split_metric_key``)."""

    prefix: str
    corpus: str | None
    name: str

    @property
    def split(self) -> str:
        """The split the prefix names (``eval`` -> ``validation``)."""
        return SPLIT_OF_PREFIX.get(self.prefix, self.prefix)

    @property
    def task(self) -> str | None:
        """The task of a per-task metric (``sentiment`` of ``sentiment_MAE``), else ``None``."""
        return next((task for task in TASK_NAMES if self.name.startswith(task + "_")), None)

    @property
    def metric(self) -> str:
        """The metric without its task (``MAE`` of ``sentiment_MAE``)."""
        task = self.task
        return self.name[len(task) + 1 :] if task else self.name


def metric_key(prefix: str, name: str, corpus: str | None = None) -> str:
    """The key ``Trainer.evaluate`` logs a metric under: ``<prefix>[_<corpus>]_<name>``.

    Examples:
        >>> metric_key("eval", "sentiment_MAE", corpus="mosei"), metric_key("test", "combined_score")
        ('eval_mosei_sentiment_MAE', 'test_combined_score')
    """
    return f"{prefix}_{corpus}_{name}" if corpus else f"{prefix}_{name}"


def split_metric_key(key: str, corpora: Iterable[str] = ()) -> MetricKey | None:
    """Split a ``Trainer.evaluate`` key into (prefix, corpus, name); ``None`` without a prefix.

    Keys look like ``eval_<corpus>_<task>_<metric>`` (one eval dataset per corpus),
    ``eval_<task>_<metric>`` (a single eval dataset) or ``eval_<corpus>_loss``. Corpus names
    may contain underscores, so the known names are matched first (longest first); an
    unknown corpus is found by the task its metric starts with.

    Examples:
        >>> split_metric_key("eval_synthetic_mosei_sentiment_Non0_F1_score", ["synthetic_mosei"])
        MetricKey(prefix='eval', corpus='synthetic_mosei', name='sentiment_Non0_F1_score')
        >>> key = split_metric_key("test_my_corpus_sarcasm_weighted_f1")
        >>> key.split, key.corpus, key.task, key.metric
        ('test', 'my_corpus', 'sarcasm', 'weighted_f1')
        >>> split_metric_key("eval_a_b_loss", ["a", "a_b"]).corpus
        'a_b'
    """
    prefix, sep, rest = key.partition("_")
    if not sep:
        return None
    for name in sorted(set(corpora), key=len, reverse=True):
        if rest.startswith(name + "_"):
            return MetricKey(prefix, name, rest[len(name) + 1 :])
    for task in TASK_NAMES:
        if rest.startswith(task + "_"):
            break
        marker = f"_{task}_"
        if marker in rest:
            corpus, metric = rest.split(marker, 1)
            return MetricKey(prefix, corpus, f"{task}_{metric}")
    return MetricKey(prefix, None, rest)


# --------------------------------------------------------------------------------------------
# Input checks


def _as_array(values: Any, name: str, ndim: int | tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    values = _tensor_to_numpy(values)
    try:
        array = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: cannot read as a numeric array ({error}).") from None
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if array.ndim == 2 and 1 in allowed and array.shape[1] == 1:
        array = array[:, 0]  # [N, 1] column vectors (a regression head's raw output)
    if array.ndim not in allowed:
        raise ValueError(
            f"{name}: expected a {' or '.join(f'{d}-D' for d in allowed)} array, got shape {array.shape}."
        )
    if array.shape[0] == 0:
        raise ValueError(f"{name}: no examples to score (empty array).")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.isfinite(array)))
        raise ValueError(f"{name}: {bad} non-finite value(s) (nan/inf); metrics need finite numbers.")
    return array


def _tensor_to_numpy(values: Any) -> Any:
    """A torch tensor as numpy (bf16/fp16 as float32), without importing torch; anything else as is."""
    if hasattr(values, "detach") and hasattr(values, "is_floating_point"):
        values = values.detach().cpu()
        return (values.float() if values.is_floating_point() else values).numpy()
    return values


def _same_length(first: np.ndarray, second: np.ndarray, names: str) -> None:
    if first.shape[0] != second.shape[0]:
        raise ValueError(f"{names}: different numbers of examples ({first.shape[0]} vs {second.shape[0]}).")


def _check_probabilities(probs: np.ndarray, name: str) -> None:
    if probs.min() < 0.0 or probs.max() > 1.0:
        raise ValueError(
            f"{name}: values outside [0, 1] (min {probs.min():.3g}, max {probs.max():.3g}); these look like "
            "logits. Apply a sigmoid first (scipy.special.expit) or use compute_corpus_metrics, which does."
        )


def _check_binary(truth: np.ndarray, name: str) -> None:
    if not np.all((truth == 0) | (truth == 1)):
        raise ValueError(f"{name}: gold labels must be 0 or 1, got values {np.unique(truth)[:10].tolist()}.")


# --------------------------------------------------------------------------------------------
# Building blocks


def weighted_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """scikit-learn's support-weighted F1 (``average='weighted'``), 0 where a term divides by zero."""
    return float(f1_score(truth, pred, average="weighted", zero_division=0.0))


def weighted_accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    """Weighted accuracy of a binary problem (Tong et al. 2017), i.e. balanced accuracy.

    ``(TP * N / P + TN) / (2 * N) == (TP / P + TN / N) / 2``: the mean of the recalls of the
    positive and the negative class, so a rare emotion is not won by always predicting
    "absent". With one class absent from ``truth`` it is that present class' recall.

    Examples:
        >>> weighted_accuracy(np.array([1, 0, 0, 0]), np.array([1, 1, 0, 0]))  # (1/1 + 2/3) / 2
        0.8333333333333333
    """
    truth = np.asarray(truth).astype(bool)
    pred = np.asarray(pred).astype(bool)
    recalls = []
    if truth.any():
        recalls.append(np.sum(pred & truth) / np.sum(truth))
    if (~truth).any():
        recalls.append(np.sum(~pred & ~truth) / np.sum(~truth))
    return float(np.mean(recalls))


def pearson_r(pred: np.ndarray, truth: np.ndarray) -> float:
    """Pearson correlation; ``0.0`` where undefined (constant input or a single example)."""
    x = np.asarray(pred, dtype=np.float64) - np.mean(pred)
    y = np.asarray(truth, dtype=np.float64) - np.mean(truth)
    denominator = math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)))
    if denominator == 0.0:
        return 0.0
    return float(np.clip(np.dot(x, y) / denominator, -1.0, 1.0))


def _multiclass_accuracy(pred: np.ndarray, truth: np.ndarray, bound: float) -> float:
    # MMSA's Acc-k: clip both sides to [-bound, bound], round to integers, compare.
    pred_classes = np.round(np.clip(pred, -bound, bound))
    truth_classes = np.round(np.clip(truth, -bound, bound))
    return float(np.mean(pred_classes == truth_classes))


# --------------------------------------------------------------------------------------------
# Metric families


def sentiment_regression_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """MOSI/MOSEI sentiment metrics of predicted vs gold scores on the [-3, 3] scale.

    Returns ``Has0_acc_2``, ``Has0_F1_score``, ``Non0_acc_2``, ``Non0_F1_score``,
    ``Mult_acc_5``, ``Mult_acc_7``, ``MAE``, ``Corr`` (see the module docstring for the
    definitions and the edge cases).

    Examples:
        >>> m = sentiment_regression_metrics(np.array([1.2, -0.4, 0.0, 2.6]), np.array([1.0, -1.0, 0.0, 3.0]))
        >>> m["Has0_acc_2"], m["Non0_acc_2"], m["Mult_acc_7"], round(m["MAE"], 2)
        (1.0, 1.0, 0.75, 0.3)
    """
    pred = _as_array(pred, "sentiment predictions", 1)
    truth = _as_array(truth, "sentiment labels", 1)
    _same_length(pred, truth, "sentiment predictions/labels")

    has0_truth, has0_pred = truth >= 0, pred >= 0
    nonzero = truth != 0
    if nonzero.any():
        non0_truth, non0_pred = truth[nonzero] > 0, pred[nonzero] > 0
        non0_acc = float(accuracy_score(non0_truth, non0_pred))
        non0_f1 = weighted_f1(non0_truth, non0_pred)
    else:
        logger.warning("Every sentiment label is exactly 0: Non0_acc_2 and Non0_F1_score are nan.")
        non0_acc = non0_f1 = float("nan")
    return {
        "Has0_acc_2": float(accuracy_score(has0_truth, has0_pred)),
        "Has0_F1_score": weighted_f1(has0_truth, has0_pred),
        "Non0_acc_2": non0_acc,
        "Non0_F1_score": non0_f1,
        "Mult_acc_5": _multiclass_accuracy(pred, truth, 2.0),
        "Mult_acc_7": _multiclass_accuracy(pred, truth, 3.0),
        "MAE": float(np.mean(np.abs(pred - truth))),
        "Corr": pearson_r(pred, truth),
    }


def sentiment_class_metrics(
    pred: np.ndarray,
    truth_classes: np.ndarray,
    prediction_type: Literal["auto", "score", "class", "logits"] = "auto",
) -> dict[str, float]:
    """3-class sentiment (MELD): ``accuracy``, ``weighted_f1``, ``macro_f1``.

    Args:
        pred: predicted scores (mapped with ``mtaffect.tasks.sentiment_score_to_class``:
            clip to [-1, 1] and round, so |s| <= 0.5 is neutral), class ids 0/1/2, or
            ``[N, 3]`` logits (argmax).
        truth_classes: gold class ids, 0 negative, 1 neutral, 2 positive.
        prediction_type: ``"auto"`` reads ``[N, 3]`` as logits, an integer array as class ids
            and a float array as scores; pass it explicitly when that guess could be wrong.

    Macro F1 averages the classes present in the truth or the predictions (scikit-learn).
    """
    raw = _as_array(pred, "sentiment predictions", (1, 2), dtype=None)
    truth = _as_array(truth_classes, "sentiment classes", 1, dtype=None)
    if not np.all(np.isin(truth, (0, 1, 2))):
        raise ValueError(
            f"sentiment classes must be 0 (negative), 1 (neutral) or 2 (positive); got {np.unique(truth)[:10].tolist()} "
            "(rows with sentiment_class -1 have no class and must be left out)."
        )
    if prediction_type == "auto":
        if raw.ndim == 2:
            prediction_type = "logits"
        else:
            prediction_type = "class" if np.issubdtype(raw.dtype, np.integer) else "score"
    if prediction_type == "logits":
        if raw.ndim != 2 or raw.shape[1] != 3:
            raise ValueError(f"sentiment logits must have shape [N, 3], got {raw.shape}.")
        classes = np.argmax(raw, axis=1)
    elif raw.ndim != 1:
        raise ValueError(f"sentiment {prediction_type} predictions must be 1-D, got shape {raw.shape}.")
    elif prediction_type == "class":
        classes = raw.astype(np.int64)
        if not np.all(np.isin(classes, (0, 1, 2))) or not np.all(classes == raw):
            raise ValueError(
                f"sentiment class predictions must be 0, 1 or 2; got {np.unique(raw)[:10].tolist()}."
            )
    elif prediction_type == "score":
        classes = sentiment_score_to_class(raw.astype(np.float64))
    else:
        raise ValueError(
            f"prediction_type must be 'auto', 'score', 'class' or 'logits', got {prediction_type!r}."
        )
    truth = truth.astype(np.int64)
    _same_length(classes, truth, "sentiment predictions/classes")
    return {
        "accuracy": float(accuracy_score(truth, classes)),
        "weighted_f1": weighted_f1(truth, classes),
        "macro_f1": float(f1_score(truth, classes, average="macro", zero_division=0.0)),
    }


def _label_selection(
    label_mask: np.ndarray | Sequence[bool] | None, num_labels: int, num_rows: int, label_names: Sequence[str]
) -> np.ndarray:
    """Per-row label mask ``[N, L]`` from a corpus-level ``[L]`` or per-row ``[N, L]`` mask."""
    if len(label_names) != num_labels:
        raise ValueError(f"label_names has {len(label_names)} names for {num_labels} label columns.")
    if label_mask is None:
        return np.ones((num_rows, num_labels), dtype=bool)
    mask = np.asarray(label_mask, dtype=bool)
    if mask.ndim == 1:
        mask = np.broadcast_to(mask, (num_rows, mask.shape[0]))
    if mask.shape != (num_rows, num_labels):
        raise ValueError(
            f"label_mask must have shape [{num_labels}] or [{num_rows}, {num_labels}], got {mask.shape}."
        )
    if not mask.any():
        raise ValueError("label_mask selects no emotion label: nothing to score.")
    return mask


def emotion_multilabel_metrics(
    probs: np.ndarray,
    truth: np.ndarray,
    label_mask: np.ndarray | Sequence[bool] | None = None,
    label_names: Sequence[str] = EMOTION_LABELS,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Multi-label emotion metrics (CMU-MOSEI convention), per label and averaged.

    A label is predicted present where ``prob > threshold`` and is gold-present where
    ``truth > 0`` (MOSEI stores intensities; the unified schema stores 0/1). For every label
    the mask selects (``[L]`` for the corpus, or ``[N, L]`` per row, then only the rows where
    it is on count), returns ``<label>_weighted_acc`` (``weighted_accuracy``) and
    ``<label>_weighted_f1`` (weighted F1 of that label's present/absent problem), and their
    unweighted means over labels, ``weighted_acc`` and ``weighted_f1``.
    """
    probs = _as_array(probs, "emotion probabilities", 2)
    truth = _as_array(truth, "emotion labels", 2)
    if probs.shape != truth.shape:
        raise ValueError(f"emotion probabilities {probs.shape} and labels {truth.shape} differ in shape.")
    _check_probabilities(probs, "emotion probabilities")
    mask = _label_selection(label_mask, probs.shape[1], probs.shape[0], label_names)
    metrics: dict[str, float] = {}
    accuracies, f1s = [], []
    for j, name in enumerate(label_names):
        rows = mask[:, j]
        if not rows.any():
            continue
        gold, predicted = truth[rows, j] > 0, probs[rows, j] > threshold
        accuracies.append(weighted_accuracy(gold, predicted))
        f1s.append(weighted_f1(gold, predicted))
        metrics[f"{name}_weighted_acc"] = accuracies[-1]
        metrics[f"{name}_weighted_f1"] = f1s[-1]
    metrics["weighted_acc"] = float(np.mean(accuracies))
    metrics["weighted_f1"] = float(np.mean(f1s))
    return metrics


def emotion_multiclass_metrics(
    scores: np.ndarray,
    truth: np.ndarray,
    label_mask: np.ndarray | Sequence[bool] | None = None,
    label_names: Sequence[str] = EMOTION_LABELS,
) -> dict[str, float]:
    """Single-label emotion metrics (IEMOCAP, MELD).

    The prediction is the argmax of ``scores`` (logits or probabilities) over the labels the
    mask selects only (a per-row ``[N, L]`` mask is reduced to the labels any row selects), so
    a model never loses points for a class the corpus does not annotate. ``truth`` is one-hot
    ``[N, L]`` or class ids ``[N]`` into ``label_names``.

    Returns ``accuracy``, ``macro_f1`` (classes present in truth or predictions),
    ``weighted_f1`` (MELD's headline), and IEMOCAP style, per class ``<label>_acc`` and
    ``<label>_f1`` (accuracy and weighted F1 of the binary class-vs-rest problem, as MulT and
    Dai et al. score IEMOCAP) with their means ``mean_class_acc`` and ``mean_class_f1``.
    """
    scores = _as_array(scores, "emotion scores", 2)
    num_rows, num_labels = scores.shape
    allowed = np.flatnonzero(_label_selection(label_mask, num_labels, num_rows, label_names).any(axis=0))
    gold = _gold_classes(truth, num_rows, num_labels, allowed, label_names)
    predicted = allowed[np.argmax(scores[:, allowed], axis=1)]
    metrics = {
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(f1_score(gold, predicted, average="macro", zero_division=0.0)),
        "weighted_f1": weighted_f1(gold, predicted),
    }
    accuracies, f1s = [], []
    for j in allowed:
        gold_j, predicted_j = gold == j, predicted == j
        accuracies.append(float(np.mean(gold_j == predicted_j)))
        f1s.append(weighted_f1(gold_j, predicted_j))
        metrics[f"{label_names[j]}_acc"] = accuracies[-1]
        metrics[f"{label_names[j]}_f1"] = f1s[-1]
    metrics["mean_class_acc"] = float(np.mean(accuracies))
    metrics["mean_class_f1"] = float(np.mean(f1s))
    return metrics


def _gold_classes(
    truth: Any, num_rows: int, num_labels: int, allowed: np.ndarray, label_names: Sequence[str]
) -> np.ndarray:
    truth = _as_array(truth, "emotion labels", (1, 2))
    if truth.shape[0] != num_rows:
        raise ValueError(
            f"emotion scores/labels: different numbers of examples ({num_rows} vs {truth.shape[0]})."
        )
    if truth.ndim == 2:
        if truth.shape[1] != num_labels:
            raise ValueError(f"one-hot emotion labels have {truth.shape[1]} columns, scores {num_labels}.")
        positives = truth > 0
        counts = positives.sum(axis=1)
        if np.any(counts != 1):
            row = int(np.flatnonzero(counts != 1)[0])
            raise ValueError(
                f"single-label emotion row {row} has {int(counts[row])} positive labels (needs exactly 1); "
                "multi-label rows belong to emotion_multilabel_metrics."
            )
        gold = np.argmax(positives, axis=1)
    else:
        gold = truth.astype(np.int64)
        if not np.all(gold == truth) or gold.min() < 0 or gold.max() >= num_labels:
            raise ValueError(
                f"emotion class ids must be integers in [0, {num_labels}), got {np.unique(truth)[:10].tolist()}."
            )
    outside = ~np.isin(gold, allowed)
    if outside.any():
        names = sorted({label_names[int(g)] for g in gold[outside]})
        raise ValueError(
            f"gold emotion {names} is not selected by label_mask; the mask must cover every gold class."
        )
    return gold


def sarcasm_metrics(probs: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """MUStARD metrics: ``accuracy``, ``weighted_precision``, ``weighted_recall``, ``weighted_f1``.

    Sarcastic is predicted where ``prob > threshold``; ``truth`` is 0/1.
    """
    probs = _as_array(probs, "sarcasm probabilities", 1)
    truth = _as_array(truth, "sarcasm labels", 1)
    _same_length(probs, truth, "sarcasm probabilities/labels")
    _check_probabilities(probs, "sarcasm probabilities")
    _check_binary(truth, "sarcasm labels")
    gold, predicted = truth.astype(np.int64), (probs > threshold).astype(np.int64)
    precision, recall, f1, _ = precision_recall_fscore_support(
        gold, predicted, average="weighted", zero_division=0.0
    )
    return {
        "accuracy": float(accuracy_score(gold, predicted)),
        "weighted_precision": float(precision),
        "weighted_recall": float(recall),
        "weighted_f1": float(f1),
    }


_FAMILY_FUNCTIONS: dict[str, Callable[..., dict[str, float]]] = {
    "sentiment": sentiment_regression_metrics,
    "sentiment_class": sentiment_class_metrics,
    "emotion_multilabel": emotion_multilabel_metrics,
    "emotion_multiclass": emotion_multiclass_metrics,
    "sarcasm": sarcasm_metrics,
}


def task_metrics(
    family: str, predictions: np.ndarray, references: np.ndarray, **kwargs: Any
) -> dict[str, float]:
    """Compute one metric family by name (one of ``METRIC_FAMILIES``).

    ``kwargs`` go to the family's function (``label_mask``, ``label_names``, ``threshold``,
    ``prediction_type``). Predictions are what that function expects: scores for sentiment,
    probabilities for multi-label emotion and sarcasm, logits or probabilities for
    single-label emotion.

    Examples:
        >>> task_metrics("sarcasm", np.array([0.9, 0.2]), np.array([1, 0]))["weighted_f1"]
        1.0
    """
    if family not in _FAMILY_FUNCTIONS:
        raise ValueError(f"Unknown metric family {family!r}: expected one of {', '.join(METRIC_FAMILIES)}.")
    return _FAMILY_FUNCTIONS[family](predictions, references, **kwargs)


# --------------------------------------------------------------------------------------------
# A corpus' model outputs + label columns -> every metric that applies


def _column(labels: Mapping[str, Any], name: str, required_by: str) -> np.ndarray:
    if name not in labels or labels[name] is None:
        raise ValueError(
            f"labels has {required_by!r} but not {name!r}; pass every gold label column and its mask."
        )
    return _to_numpy(labels[name])


def _to_numpy(values: Any) -> np.ndarray:
    return np.asarray(_tensor_to_numpy(values))


def compute_corpus_metrics(
    outputs: Mapping[str, Any],
    labels: Mapping[str, Any],
    threshold: float = 0.5,
    include_primary: bool = True,
    emotion_labels: Sequence[str] = EMOTION_LABELS,
    include_counts: bool = False,
    label_spaces: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, float]:
    """Every metric that applies to one corpus' predictions, keys prefixed by task.

    Args:
        outputs: model outputs by head name (``MTAffectOutput.head_outputs``:
            ``"sentiment/polarity"`` ``[N, 3]`` logits, ``"emotion/meld"`` ``[N, 7]`` logits,
            ``"sentiment/score"`` ``[N]`` scores, ``"sarcasm/binary"`` ``[N]`` logits...). The
            names of a single-head model also work: ``emotion_logits`` (``[N, union]`` logits over
            ``emotion_labels``), ``sentiment_score``, ``sarcasm_logits``. A missing or ``None``
            output skips its task.
        labels: the unified schema's gold label columns (``GOLD_LABEL_COLUMNS``) for the
            same N rows. A task is scored on the rows where its mask is on; a task with no
            such row is skipped.
        threshold: probability threshold of multi-label emotion and sarcasm.
        include_primary: add ``PRIMARY_SCORE_KEY`` (``primary_score`` of the result).
        emotion_labels: names of the union emotion vector (the ``emotion`` columns' layout).
        label_spaces: head name -> label space (``MTAffectConfig.label_spaces``); heads not in
            it are looked up in ``mtaffect.tasks.LABEL_SPACES``.
        include_counts: add ``predicted_class_counts`` (``<task>_predicted_<class>``), how
            often each class was predicted: what shows a collapsed model.

    Each row is scored by the head of its own label space: emotion rows by the head whose
    labels are the union names their mask switches on (metrics keyed by that head's own
    names, e.g. ``emotion_joy_f1`` for MELD), multi-label rows with
    ``emotion_multilabel_metrics``, single-label rows with ``emotion_multiclass_metrics``;
    polarity rows (``sentiment_num_classes`` K > 0) by the K-class polarity head's argmax
    (``sentiment_class_metrics``), score rows by the score head
    (``sentiment_regression_metrics``). A row whose space has no head is scored through the
    documented conversion when one exists (a score head on polarity rows: ``score_to_polarity``;
    a polarity head on score rows: ``polarity_to_score``), logged; otherwise skipped.

    Returns e.g. ``emotion_weighted_f1``, ``emotion_anger_weighted_acc``,
    ``sentiment_Has0_acc_2``, ``sentiment_MAE``, ``sentiment_weighted_f1``,
    ``sarcasm_weighted_f1``, ``primary_score``.
    """
    heads = _named_heads(outputs, label_spaces or {}, emotion_labels)
    metrics: dict[str, float] = {}
    emotion_heads = {key: value for key, value in heads.items() if value[0]["task"] == "emotion"}
    if emotion_heads and labels.get("emotion") is not None:
        metrics.update(_prefixed("emotion", _emotion_metrics(emotion_heads, labels, threshold, emotion_labels)))
    sentiment_heads = {key: value for key, value in heads.items() if value[0]["task"] == "sentiment"}
    if sentiment_heads and (labels.get("sentiment") is not None or labels.get("sentiment_class") is not None):
        metrics.update(_prefixed("sentiment", _sentiment_metrics(sentiment_heads, labels)))
    sarcasm = [value for value in heads.values() if value[0]["task"] == "sarcasm"]
    if sarcasm and labels.get("sarcasm") is not None:
        mask = _column(labels, "sarcasm_mask", "sarcasm").astype(bool).reshape(-1)
        if mask.any():
            logits = _as_array(sarcasm[0][1], "sarcasm_logits", 1)
            _same_length(logits, mask, "sarcasm_logits/sarcasm_mask")
            truth = _column(labels, "sarcasm", "sarcasm").reshape(-1)[mask]
            metrics.update(_prefixed("sarcasm", sarcasm_metrics(expit(logits[mask]), truth, threshold)))
    if not metrics:
        logger.warning("No task has both a model output and a gold label in these rows: no metric computed.")
    elif include_primary:
        metrics[PRIMARY_SCORE_KEY] = primary_score(metrics)
    if include_counts and metrics:
        metrics.update(predicted_class_counts(outputs, labels, threshold, emotion_labels, label_spaces))
    return metrics


_LEGACY_OUTPUTS = {"emotion_logits": "emotion/union", "sentiment_score": "sentiment/score", "sarcasm_logits": "sarcasm/binary"}


def _named_heads(
    outputs: Mapping[str, Any], label_spaces: Mapping[str, Mapping[str, Any]], emotion_labels: Sequence[str]
) -> dict[str, tuple[Mapping[str, Any], Any]]:
    """Head name -> (label space dict, output) for every non-None output."""
    from mtaffect.tasks import label_space

    heads: dict[str, tuple[Mapping[str, Any], Any]] = {}
    for name, value in outputs.items():
        if value is None:
            continue
        if name == "emotion_logits":
            space: Mapping[str, Any] = {
                "task": "emotion", "name": "union", "kind": "classes", "labels": list(emotion_labels), "union": list(emotion_labels)
            }
        elif name in label_spaces:
            space = label_spaces[name]
        elif name in _LEGACY_OUTPUTS or "/" in name:
            space = label_space(_LEGACY_OUTPUTS.get(name, name)).to_dict()
        else:
            raise ValueError(
                f"Unknown model output {name!r}: expected head names like 'sentiment/polarity' "
                f"(MTAffectOutput.head_outputs) or {sorted(_LEGACY_OUTPUTS)}."
            )
        heads[_LEGACY_OUTPUTS.get(name, name)] = (space, value)
    return heads


def _prefixed(task: str, metrics: Mapping[str, float]) -> dict[str, float]:
    return {f"{task}_{name}": value for name, value in metrics.items()}


def route_emotion_rows(mask: np.ndarray, heads: Sequence[Mapping[str, Any]], union: Sequence[str]) -> np.ndarray:
    """Index into ``heads`` of each row's emotion head (-1: none), as the model routes rows.

    The head whose label set (``union`` names) equals the names the row's mask switches on,
    else the smallest head covering them.
    """
    mask = np.asarray(mask, dtype=bool)
    sets = np.array([[name in head["union"] for name in union] for head in heads], dtype=bool).reshape(len(heads), len(union))
    exact = (mask[:, None, :] == sets[None]).all(-1)
    covering = (~mask[:, None, :] | sets[None]).all(-1)
    big = len(union) + 1
    cost = np.where(exact, 0, np.where(covering, sets.sum(-1)[None], big))
    if cost.shape[1] == 0:
        return np.full(mask.shape[0], -1)
    best = cost.argmin(1)
    ok = (cost.min(1) < big) & mask.any(1)
    return np.where(ok, best, -1)


def _emotion_metrics(
    heads: Mapping[str, tuple[Mapping[str, Any], Any]], labels: Mapping[str, Any], threshold: float, union: Sequence[str]
) -> dict[str, float]:
    truth = _column(labels, "emotion", "emotion")
    mask = _column(labels, "emotion_mask", "emotion").astype(bool)
    multilabel = _column(labels, "emotion_multilabel", "emotion").astype(bool).reshape(-1)
    if not (truth.shape == mask.shape and multilabel.shape[0] == truth.shape[0] and truth.shape[1] == len(union)):
        raise ValueError(
            f"emotion {truth.shape}, emotion_mask {mask.shape} and emotion_multilabel {multilabel.shape} must "
            f"describe the same rows and the {len(union)} union labels."
        )
    rows = mask.any(axis=1)
    if not rows.any():
        return {}
    kinds = set(multilabel[rows].tolist())
    if len(kinds) > 1:
        raise ValueError(
            "These rows mix multi-label and single-label emotion annotation (emotion_multilabel differs); "
            "evaluate each corpus separately."
        )
    spaces = [space for space, _ in heads.values()]
    route = route_emotion_rows(mask, spaces, union)
    used = sorted(set(route[rows].tolist()))
    if used == [-1]:
        logger.warning("No emotion head covers these rows' label set: emotion not scored.")
        return {}
    if len(used) > 1:
        names = [list(heads)[i] if i >= 0 else "none" for i in used]
        raise ValueError(f"These rows belong to several emotion label sets ({names}); evaluate each corpus separately.")
    space, logits = list(heads.values())[used[0]]
    logits = _as_array(logits, "emotion logits", 2)
    if logits.shape != (truth.shape[0], len(space["labels"])):
        raise ValueError(f"emotion logits {logits.shape} do not fit {truth.shape[0]} rows of the {len(space['labels'])}-label head.")
    index = [list(union).index(name) for name in space["union"]]
    selected = rows & (route == used[0])
    head_truth, head_mask = truth[selected][:, index], mask[selected][:, index]
    if kinds.pop():
        return emotion_multilabel_metrics(expit(logits[selected]), head_truth, head_mask, space["labels"], threshold)
    return emotion_multiclass_metrics(logits[selected], head_truth, head_mask, space["labels"])


def _sentiment_metrics(heads: Mapping[str, tuple[Mapping[str, Any], Any]], labels: Mapping[str, Any]) -> dict[str, float]:
    from mtaffect.tasks import label_space, polarity_to_score, score_to_polarity

    mask = _column(labels, "sentiment_mask", "sentiment").astype(bool).reshape(-1)
    classes = labels.get("sentiment_class")
    classes = np.full(mask.shape, -1) if classes is None else _to_numpy(classes).reshape(-1).astype(np.int64)
    counts = labels.get("sentiment_num_classes")
    # Without sentiment_num_classes (older corpora), a class >= 0 marks a 3-class polarity row.
    counts = np.where(classes >= 0, 3, 0) if counts is None else _to_numpy(counts).reshape(-1).astype(np.int64)
    truth = labels.get("sentiment")
    truth = np.zeros(mask.shape) if truth is None else _to_numpy(truth).reshape(-1)
    if not (truth.shape == mask.shape == classes.shape == counts.shape):
        raise ValueError(
            f"sentiment {truth.shape}, sentiment_mask {mask.shape}, sentiment_class {classes.shape} and "
            f"sentiment_num_classes {counts.shape} must describe the same rows."
        )
    score_head = next((value for _, (space, value) in heads.items() if space["kind"] == "score"), None)
    polarity_heads = {len(space["labels"]): (space, value) for space, value in heads.values() if space["kind"] == "classes"}
    metrics: dict[str, float] = {}
    regression_rows = mask & (counts == 0)
    if regression_rows.any():
        if score_head is not None:
            score = _as_array(score_head, "sentiment score", 1)
            _same_length(score, mask, "sentiment score/sentiment_mask")
            metrics.update(sentiment_regression_metrics(score[regression_rows], truth[regression_rows]))
        elif polarity_heads:
            space, logits = polarity_heads[max(polarity_heads)]
            logger.info("Score rows scored by the polarity head %s through its expected score.", space["name"])
            probabilities = _softmax(_as_array(logits, "sentiment logits", 2))
            expected = polarity_to_score(probabilities, label_space(space))
            metrics.update(sentiment_regression_metrics(expected[regression_rows], truth[regression_rows]))
    for k in sorted(set(counts[mask & (counts > 0)].tolist())):
        rows = mask & (counts == k)
        if k in polarity_heads:
            space, logits = polarity_heads[k]
            logits = _as_array(logits, "sentiment logits", 2)
            predicted = np.argmax(logits, axis=1)[rows]
        elif score_head is not None:
            space = next((s for s in _polarity_spaces() if len(s.labels) == k), None)
            if space is None:
                continue
            logger.info("Polarity rows scored by the score head through %s's thresholds.", space.key)
            predicted = score_to_polarity(_as_array(score_head, "sentiment score", 1)[rows], space)
        else:
            continue
        metrics.update(polarity_metrics(predicted, classes[rows], k))
    return metrics


def _polarity_spaces() -> list[Any]:
    from mtaffect.tasks import LABEL_SPACES

    preferred = LABEL_SPACES["sentiment/polarity"]
    return [preferred] + [s for s in LABEL_SPACES.values() if s.task == "sentiment" and s.kind == "classes" and s is not preferred]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    values = np.exp(shifted)
    return values / values.sum(axis=1, keepdims=True)


def polarity_metrics(predicted: np.ndarray, truth: np.ndarray, num_classes: int) -> dict[str, float]:
    """Polarity classes (any K): ``accuracy``, ``weighted_f1``, ``macro_f1`` of class ids.

    Examples:
        >>> polarity_metrics(np.array([0, 1, 2, 2]), np.array([0, 1, 2, 1]), 3)["accuracy"]
        0.75
    """
    predicted = np.asarray(predicted, dtype=np.int64)
    truth = np.asarray(truth, dtype=np.int64)
    _same_length(predicted, truth, "polarity predictions/classes")
    if truth.size == 0:
        raise ValueError("polarity classes: no examples to score (empty array).")
    if truth.min() < 0 or truth.max() >= num_classes or predicted.min() < 0 or predicted.max() >= num_classes:
        raise ValueError(f"polarity class ids must lie in [0, {num_classes}).")
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "weighted_f1": weighted_f1(truth, predicted),
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0.0)),
    }


def primary_score(metrics: Mapping[str, float], prefix: str = "") -> float:
    """Mean over tasks of each task's primary metric (``PRIMARY_METRICS``), higher is better.

    For every task, the first of its primary keys present in ``metrics`` (as
    ``prefix + key``) with a finite value is used, negated when lower is better; tasks with
    none are left out, and the result is ``nan`` if no task has one. Use ``prefix`` to read a
    Trainer's logged metrics, e.g. ``prefix="eval_mosei_"``.

    Examples:
        >>> primary_score({"emotion_weighted_f1": 0.6, "sarcasm_weighted_f1": 0.8})
        0.7
    """
    values = []
    for candidates in PRIMARY_METRICS.values():
        for candidate in candidates:
            value = metrics.get(prefix + candidate.key)
            if value is not None and math.isfinite(value):
                values.append(value if candidate.greater_is_better else -value)
                break
    return float(np.mean(values)) if values else float("nan")


# --------------------------------------------------------------------------------------------
# Trainer glue


def make_compute_metrics(
    output_names: Sequence[str | None] = OUTPUT_NAMES,
    label_names: Sequence[str] = GOLD_LABEL_COLUMNS,
    threshold: float = 0.5,
    include_primary: bool = True,
    emotion_labels: Sequence[str] = EMOTION_LABELS,
    include_counts: bool = False,
    label_spaces: Mapping[str, Mapping[str, Any]] | None = None,
) -> Callable[[Any], dict[str, float]]:
    """A ``compute_metrics`` for ``transformers.Trainer`` that calls ``compute_corpus_metrics``.

    The returned function takes an ``EvalPrediction``-like object (``.predictions``,
    ``.label_ids``, or a ``(predictions, label_ids)`` pair):

    * ``predictions``: a dict keyed by output name, or a tuple/list in ``output_names`` order
      (``None`` in ``output_names`` skips that position, e.g. ``pooled_output``; a tuple
      must have exactly ``len(output_names)`` items — model outputs that are ``None`` vanish
      from the Trainer's tuples, so list only the outputs the model returns), or one array
      when ``output_names`` names one output.
    * ``label_ids``: a dict keyed by column, or a tuple/list in ``label_names`` order (the
      Trainer's ``args.label_names`` order), or one array when ``label_names`` has one name.

    An item may also be a list of per-batch arrays, tuples or dicts (``eval_do_concat_batches=False``).
    ``threshold``, ``include_primary``, ``emotion_labels``, ``include_counts`` and ``label_spaces`` (the
    model's ``config.label_spaces``, to read outputs by head name) go to ``compute_corpus_metrics``.
    """
    output_names = tuple(output_names)
    emotion_labels = tuple(emotion_labels)
    label_names = tuple(label_names)

    def compute_metrics(eval_prediction: Any) -> dict[str, float]:
        if hasattr(eval_prediction, "predictions"):
            predictions, label_ids = eval_prediction.predictions, eval_prediction.label_ids
        else:
            predictions, label_ids = eval_prediction
        outputs = _by_name(predictions, output_names, "predictions", "output_names")
        labels = _by_name(label_ids, label_names, "label_ids", "label_names")
        return compute_corpus_metrics(
            outputs,
            labels,
            threshold=threshold,
            include_primary=include_primary,
            emotion_labels=emotion_labels,
            include_counts=include_counts,
            label_spaces=label_spaces,
        )

    return compute_metrics


def _by_name(values: Any, names: tuple[str | None, ...], what: str, argument: str) -> dict[str, Any]:
    if values is None:
        raise ValueError(
            f"EvalPrediction.{what} is None: the Trainer collected no {what}. Set TrainingArguments.label_names "
            "to the gold label columns and make every batch carry all of them."
        )
    if isinstance(values, list) and values and isinstance(values[0], (tuple, list, Mapping)):
        # eval_do_concat_batches=False: one structure per batch; name each, then join the batches.
        batches = [_by_name(batch, names, what, argument) for batch in values]
        return {name: np.concatenate([_to_numpy(batch[name]) for batch in batches]) for name in batches[0]}
    if isinstance(values, list) and len(names) == 1 and values and hasattr(values[0], "shape"):
        return {names[0]: np.concatenate([_to_numpy(batch) for batch in values])} if names[0] else {}
    if isinstance(values, Mapping):
        return dict(values)
    if isinstance(values, (tuple, list)):
        if len(values) != len(names):
            raise ValueError(
                f"EvalPrediction.{what} has {len(values)} items but {argument} names {len(names)} "
                f"({list(names)}); give one name (or None to skip) per item, in order."
            )
        return {name: value for name, value in zip(names, values) if name is not None}
    if len(names) != 1 or names[0] is None:
        raise ValueError(
            f"EvalPrediction.{what} is a single array; {argument} must then name exactly one item."
        )
    return {names[0]: values}


def evaluate_module_path() -> str:
    """Path of the ``evaluate`` metric script shipped with mtaffect.

    Examples:
        >>> import evaluate  # doctest: +SKIP
        >>> metric = evaluate.load(evaluate_module_path(), "sentiment")  # doctest: +SKIP
    """
    return str(Path(__file__).with_name("metrics_module") / "mtaffect_metrics.py")


# --------------------------------------------------------------------------------------------
# Headline metrics: what the literature reports first for each kind of corpus


@dataclass(frozen=True)
class HeadlineMetric:
    """A metric papers report for a kind of corpus, and how tables and figures name it."""

    key: str
    label: str
    greater_is_better: bool = True


HEADLINE_METRICS: dict[str, tuple[HeadlineMetric, ...]] = {
    "sentiment": (
        HeadlineMetric("sentiment_Has0_acc_2", "Acc-2 (neg vs non-neg)"),
        HeadlineMetric("sentiment_Non0_acc_2", "Acc-2 (neg vs pos)"),
        HeadlineMetric("sentiment_Non0_F1_score", "F1 (neg vs pos)"),
        HeadlineMetric("sentiment_MAE", "MAE", greater_is_better=False),
        HeadlineMetric("sentiment_Corr", "Corr"),
    ),
    "sentiment_class": (HeadlineMetric("sentiment_weighted_f1", "weighted F1"),),
    "emotion_multiclass": (
        HeadlineMetric("emotion_weighted_f1", "weighted F1"),
        HeadlineMetric("emotion_accuracy", "accuracy"),
    ),
    "emotion_multilabel": (
        HeadlineMetric("emotion_weighted_acc", "weighted acc (mean over labels)"),
        HeadlineMetric("emotion_weighted_f1", "weighted F1 (mean over labels)"),
    ),
    "sarcasm": (HeadlineMetric("sarcasm_weighted_f1", "weighted F1"),),
}
"""Per metric family (``METRIC_FAMILIES``), the metrics the literature reports for such a corpus, in
the order it reports them; every table, figure and card lists these first. MOSI/MOSEI: both Acc-2
(MMSA's ``Has0`` negative vs non-negative and ``Non0`` negative vs positive; papers differ in which
they mean), the F1 of ``Non0``, MAE and Corr (MulT, MMSA). MELD's emotion and 3-class sentiment:
weighted F1 (Poria et al. 2019), with the accuracy most follow-ups add; the same for every
single-label emotion set (EmoryNLP, IEMOCAP's 4 classes). The one-vs-rest scores (each class against
the rest, as MulT scores IEMOCAP) and their means are never headlines: a 7-class corpus where a
class is rare scores ~0.85 one-vs-rest with a weighted F1 of 0.4, and a reader would quote the 0.85.
They follow in the full tables, named "one-vs-rest" (``metric_label``). MOSEI emotion: weighted
accuracy and weighted F1 averaged over labels. MUStARD: weighted F1 (Castro et al. 2019; weighted
precision and recall follow in full tables)."""

#: How tables name the metrics that are not headlines but need saying what they are.
METRIC_LABELS: dict[str, str] = {
    "emotion_mean_class_acc": "one-vs-rest acc (mean over classes)",
    "emotion_mean_class_f1": "one-vs-rest F1 (mean over classes)",
    "emotion_macro_f1": "macro F1",
    "sentiment_accuracy": "accuracy",
    "sentiment_macro_f1": "macro F1",
    "sarcasm_accuracy": "accuracy",
    "sarcasm_weighted_precision": "weighted precision",
    "sarcasm_weighted_recall": "weighted recall",
}


def is_one_vs_rest(key: str) -> bool:
    """Whether a key is a one-vs-rest score of single-label emotion (a class's, or their mean).

    Never a headline (see ``HEADLINE_METRICS``); the model card leaves them out of its
    ``model-index``, and the full tables name them (``metric_label``).

    Examples:
        >>> is_one_vs_rest("emotion_mean_class_acc"), is_one_vs_rest("emotion_joy_f1"), is_one_vs_rest("emotion_joy_weighted_f1")
        (True, True, False)
    """
    task, _, name = key.partition("_")
    if task != "emotion":
        return False
    if name in ("mean_class_acc", "mean_class_f1"):
        return True
    return name not in _EMOTION_SUMMARIES and name.endswith(("_acc", "_f1")) and not name.endswith(("_weighted_acc", "_weighted_f1"))


def metric_label(key: str) -> str:
    """How the full tables (report.md, ``evaluate``) name a metric that is not a headline.

    Headline metrics carry their own label (``HeadlineMetric.label``, from ``headline_metrics``:
    one key can head two kinds of corpus under two names). Here the one-vs-rest scores of a
    single-label emotion class (``emotion_<label>_acc`` / ``_f1``) and their means are named as
    such, and any other key as itself without its task prefix.

    Examples:
        >>> metric_label("emotion_mean_class_acc"), metric_label("emotion_joy_f1"), metric_label("sentiment_MAE")
        ('one-vs-rest acc (mean over classes)', 'joy one-vs-rest F1', 'MAE')
    """
    if key in METRIC_LABELS:
        return METRIC_LABELS[key]
    task, _, name = key.partition("_")
    if task == "emotion" and name not in _EMOTION_SUMMARIES:
        for suffix, kind in (("_weighted_acc", "weighted acc"), ("_weighted_f1", "weighted F1"),
                             ("_acc", "one-vs-rest acc"), ("_f1", "one-vs-rest F1")):
            if name.endswith(suffix) and len(name) > len(suffix):
                return f"{name[: -len(suffix)]} {kind}"
    return name if task in TASK_ORDER and name else key

#: Key prefix of the predicted-class counts (``predicted_class_counts``), per task.
PREDICTED_COUNT = "predicted"


def metric_family(task: str, keys: Iterable[str]) -> str | None:
    """Which metric family produced a corpus' ``task`` metrics (``None``: none of ours).

    Args:
        task: ``"emotion"``, ``"sentiment"`` or ``"sarcasm"``.
        keys: the corpus' metric keys as ``compute_corpus_metrics`` names them (``task_metric``).

    Examples:
        >>> metric_family("emotion", ["emotion_accuracy", "emotion_weighted_f1"])
        'emotion_multiclass'
        >>> metric_family("sentiment", ["sentiment_Has0_acc_2", "sentiment_MAE"])
        'sentiment'
    """
    present = set(keys)
    if task == "sentiment":
        if "sentiment_Has0_acc_2" in present or "sentiment_MAE" in present:
            return "sentiment"
        return "sentiment_class" if "sentiment_weighted_f1" in present else None
    if task == "emotion":
        if "emotion_accuracy" in present or "emotion_mean_class_acc" in present:
            return "emotion_multiclass"
        if "emotion_weighted_acc" in present or any(k.endswith("_weighted_acc") for k in present if k.startswith("emotion_")):
            return "emotion_multilabel"
        return "emotion_multiclass" if "emotion_weighted_f1" in present else None
    if task == "sarcasm":
        return "sarcasm" if "sarcasm_weighted_f1" in present else None
    return None


def headline_metrics(keys: Iterable[str], task: str | None = None) -> list[HeadlineMetric]:
    """The headline metrics among a corpus' metric keys, in task order, then literature order.

    Args:
        keys: one corpus' metric keys (``task_metric``, unprefixed by split or corpus).
        task: only this task's.

    Examples:
        >>> [m.key for m in headline_metrics(["sarcasm_accuracy", "sarcasm_weighted_f1"])]
        ['sarcasm_weighted_f1']
    """
    present = list(keys)
    found: list[HeadlineMetric] = []
    for name in TASK_ORDER:
        if task is not None and name != task:
            continue
        family = metric_family(name, present)
        if family is not None:
            found.extend(m for m in HEADLINE_METRICS[family] if m.key in present)
    return found


def order_metrics(keys: Iterable[str]) -> list[str]:
    """Metric keys of one corpus, headline metrics first (``headline_metrics``), then the rest
    by task and name; keys of no task (``primary_score``, ``loss``) last.

    Examples:
        >>> order_metrics(["emotion_disgust_acc", "emotion_weighted_f1", "emotion_accuracy", "primary_score"])
        ['emotion_weighted_f1', 'emotion_accuracy', 'emotion_disgust_acc', 'primary_score']
    """
    keys = list(dict.fromkeys(keys))
    headline = [m.key for m in headline_metrics(keys)]
    rank = {name: i for i, name in enumerate(TASK_ORDER)}

    def sort_key(key: str) -> tuple[int, int, str]:
        task = key.split("_", 1)[0]
        if task not in rank:
            return (len(rank), 0, key)
        if is_predicted_count(key):  # counts, not scores: after every score of the task
            return (rank[task], 2, "")
        # Summaries over classes before per-class values (emotion keys that name a label).
        per_class = int(task == "emotion" and key.split("_", 1)[1] not in _EMOTION_SUMMARIES)
        return (rank[task], per_class, key)

    rest = sorted((k for k in keys if k not in headline), key=sort_key)
    return headline + rest


def predicted_class_counts(
    outputs: Mapping[str, Any],
    labels: Mapping[str, Any],
    threshold: float = 0.5,
    emotion_labels: Sequence[str] = EMOTION_LABELS,
    label_spaces: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, float]:
    """How often each class is predicted on the rows ``compute_corpus_metrics`` scores.

    A model that predicts one class for every row (class collapse) can still reach a fair
    weighted accuracy on an imbalanced corpus; these counts make it visible. Keys are
    ``<task>_predicted_<class>``: single-label emotion over the labels the rows use (argmax),
    3-class sentiment over negative / neutral / positive, score sentiment over negative /
    non-negative (MMSA's ``Has0`` split), sarcasm over sarcastic / not_sarcastic. Multi-label
    emotion has no single predicted class and is left out.

    Examples:
        >>> import numpy as np
        >>> predicted_class_counts({"sarcasm_logits": np.array([2.0, 3.0, -1.0])},
        ...                        {"sarcasm": np.array([1, 0, 0]), "sarcasm_mask": np.array([1, 1, 1])})
        {'sarcasm_predicted_not_sarcastic': 1.0, 'sarcasm_predicted_sarcastic': 2.0}
    """
    counts: dict[str, float] = {}
    # Head-named outputs (``MTAffectOutput.head_outputs``) and the legacy single-head names alike.
    heads = _named_heads(outputs, label_spaces or {}, emotion_labels)
    if labels.get("emotion") is not None:
        counts.update(_emotion_counts({k: v for k, v in heads.items() if v[0]["task"] == "emotion"}, labels, emotion_labels))
    for key, (space, value) in heads.items():
        task, kind = space["task"], space["kind"]
        if labels.get(task) is None and not (task == "sentiment" and labels.get("sentiment_class") is not None):
            continue
        if task == "emotion":
            continue  # counted above, on the rows each head scores
        if task == "sentiment":
            mask = _column(labels, "sentiment_mask", "sentiment").astype(bool).reshape(-1)
            classes = labels.get("sentiment_class")
            classes = np.full(mask.shape, -1) if classes is None else _to_numpy(classes).reshape(-1)
            class_rows, score_rows = mask & (classes >= 0), mask & (classes < 0)
            if kind == "classes" and class_rows.any():
                predicted = _as_array(_to_numpy(value), key, 2)[class_rows].argmax(axis=1)
                for j, name in enumerate(space["labels"]):
                    counts[f"sentiment_{PREDICTED_COUNT}_{name}"] = float((predicted == j).sum())
            elif kind == "score":
                score = _as_array(_to_numpy(value), key, 1)
                if class_rows.any() and not any(s["task"] == "sentiment" and s["kind"] == "classes" for s, _ in heads.values()):
                    predicted = sentiment_score_to_class(score[class_rows])
                    for j, name in enumerate(("negative", "neutral", "positive")):
                        counts[f"sentiment_{PREDICTED_COUNT}_{name}"] = float((np.asarray(predicted) == j).sum())
                elif score_rows.any():
                    negative = float((score[score_rows] < 0).sum())
                    counts[f"sentiment_{PREDICTED_COUNT}_negative"] = negative
                    counts[f"sentiment_{PREDICTED_COUNT}_non-negative"] = float(score_rows.sum()) - negative
        elif task == "sarcasm":
            mask = _column(labels, "sarcasm_mask", "sarcasm").astype(bool).reshape(-1)
            if mask.any():
                sarcastic = float((expit(_as_array(_to_numpy(value), key, 1)[mask]) >= threshold).sum())
                counts[f"sarcasm_{PREDICTED_COUNT}_not_sarcastic"] = float(mask.sum()) - sarcastic
                counts[f"sarcasm_{PREDICTED_COUNT}_sarcastic"] = sarcastic
    return counts


def _emotion_counts(
    heads: Mapping[str, tuple[Mapping[str, Any], Any]], labels: Mapping[str, Any], union: Sequence[str]
) -> dict[str, float]:
    """Predicted single-label emotion classes, each row counted by the head that scores it.

    Rows are routed as ``_emotion_metrics`` routes them (``route_emotion_rows``: the head of
    the row's own label set); the union head's argmax runs over the labels its rows use.
    """
    mask = _column(labels, "emotion_mask", "emotion").astype(bool)
    multilabel = _column(labels, "emotion_multilabel", "emotion").astype(bool).reshape(-1)
    union = list(union)[: mask.shape[1]]  # older corpora store fewer union labels
    route = route_emotion_rows(mask, [space for space, _ in heads.values()], union)
    counts: dict[str, float] = {}
    for index, (key, (space, value)) in enumerate(heads.items()):
        rows = (route == index) & ~multilabel
        if space["kind"] != "classes" or not rows.any():
            continue
        logits = _as_array(_to_numpy(value), key, 2)[rows]
        if space.get("name") == "union":  # argmax over the labels each row uses
            logits = np.where(mask[rows], logits, -np.inf)
            used = np.flatnonzero(mask[rows].any(axis=0))
            names = list(union)
        else:
            used = np.arange(len(space["labels"]))
            names = list(space["labels"])
        predicted = logits.argmax(axis=1)
        for j in used:
            counts[f"emotion_{PREDICTED_COUNT}_{names[j]}"] = float((predicted == j).sum())
    return counts


def is_predicted_count(key: str) -> bool:
    """Whether a metric key is a ``predicted_class_counts`` count, not a score."""
    task, _, rest = key.partition("_")
    return task in TASK_ORDER and rest.startswith(PREDICTED_COUNT + "_")


TASK_ORDER: tuple[str, ...] = ("emotion", "sentiment", "sarcasm")
_EMOTION_SUMMARIES = frozenset(
    {"accuracy", "macro_f1", "weighted_f1", "weighted_acc", "mean_class_acc", "mean_class_f1"}
)
