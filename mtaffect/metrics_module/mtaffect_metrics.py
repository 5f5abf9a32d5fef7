# Copyright the mtaffect developers. Licensed under the Apache License, Version 2.0.
"""Affect recognition metrics (sentiment, emotion, sarcasm) as the literature computes them.

A standalone `evaluate` metric: it needs numpy, scikit-learn, datasets and evaluate, not
mtaffect, so it also runs as a Hub metric Space. mtaffect's own `mtaffect.metrics` computes
the same numbers (a test checks it); keep the two in step.
"""

from __future__ import annotations

import math

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

_CITATION = """\
@article{dai2021weakly,
  title={Weakly-supervised Multi-task Learning for Multimodal Affect Recognition},
  author={Dai, Wenliang and Cahyawijaya, Samuel and Bang, Yejin and Fung, Pascale},
  journal={arXiv preprint arXiv:2104.11560},
  year={2021}
}
@inproceedings{tong2017combating,
  title={Combating Human Trafficking with Multimodal Deep Models},
  author={Tong, Edmund and Zadeh, Amir and Jones, Cara and Morency, Louis-Philippe},
  booktitle={ACL},
  year={2017}
}
"""

_DESCRIPTION = """\
Affect recognition metrics computed the way the multimodal affect literature computes them,
so numbers compare with published ones. One configuration per metric family:

- "sentiment" (CMU-MOSI/MOSEI scores in [-3, 3]), named as MMSA names them: Has0_acc_2 and
  Has0_F1_score (negative vs non-negative, >= 0), Non0_acc_2 and Non0_F1_score (negative vs
  positive, examples whose truth is exactly 0 dropped), Mult_acc_5 and Mult_acc_7 (clip to
  [-2, 2] / [-3, 3], round half to even, compare), MAE and Corr (Pearson r). F1 is
  scikit-learn's weighted F1. This is also the "default" configuration.
- "sentiment_class" (3-class sentiment, MELD): accuracy, weighted_f1, macro_f1.
- "emotion_multilabel" (CMU-MOSEI emotions): per label, weighted accuracy
  (TP * N / P + TN) / (2 * N) (= balanced accuracy) and weighted F1, and their means.
- "emotion_multiclass" (IEMOCAP, MELD): accuracy, macro_f1, weighted_f1, and per class the
  binary class-vs-rest accuracy and weighted F1 with their means.
- "sarcasm" (MUStARD): accuracy, weighted precision, recall and F1.

Undefined cases: Corr is 0.0 for a constant prediction or truth (or one example); Non0_acc_2
and Non0_F1_score are nan when no truth is non-zero; weighted accuracy is the recall of the
only class present when the other is absent; F1 terms dividing by zero are 0.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: "sentiment": predicted scores. "sentiment_class": predicted scores (mapped
        to classes by clipping to [-1, 1] and rounding), class ids with
        prediction_type="class", or per-example lists of 3 logits. "emotion_multilabel":
        per-example lists of label probabilities. "emotion_multiclass": per-example lists of
        label logits or probabilities. "sarcasm": probabilities of "sarcastic".
    references: "sentiment": gold scores. "sentiment_class": class ids 0 negative, 1 neutral,
        2 positive. "emotion_multilabel": per-example 0/1 lists (or intensities, > 0 is
        present). "emotion_multiclass": one-hot lists or class ids. "sarcasm": 0/1.
    label_mask: emotion only; which labels the corpus annotates (a list of booleans, one per
        label, or one list per example). Default: all labels.
    label_names: emotion only; names used in the per-label keys. Default: anger, disgust,
        fear, happiness, sadness, surprise, neutral, peaceful, powerful (the union) for 9 labels, else
        label_0, label_1, ...
    threshold: "emotion_multilabel" and "sarcasm"; a label is predicted where prob > threshold
        (default 0.5).
    prediction_type: "sentiment_class" only; "score" (default), "class" or "logits".
Returns:
    A dict of floats; see the description for the keys of each configuration.
Examples:
    >>> metric = evaluate.load("mtaffect_metrics.py", "sarcasm")  # doctest: +SKIP
    >>> metric.compute(predictions=[0.9, 0.2], references=[1, 0])["weighted_f1"]  # doctest: +SKIP
    1.0
"""

EMOTION_LABELS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral", "peaceful", "powerful")
CONFIGS = ("sentiment", "sentiment_class", "emotion_multilabel", "emotion_multiclass", "sarcasm")


def _features(config_name):
    scalar = datasets.Value("float64")
    vector = datasets.Sequence(datasets.Value("float64"))
    if config_name == "sentiment":
        return datasets.Features({"predictions": scalar, "references": scalar})
    if config_name == "sentiment_class":
        return [
            datasets.Features({"predictions": scalar, "references": scalar}),
            datasets.Features({"predictions": vector, "references": scalar}),
        ]
    if config_name == "emotion_multilabel":
        return datasets.Features({"predictions": vector, "references": vector})
    if config_name == "emotion_multiclass":
        return [
            datasets.Features({"predictions": vector, "references": vector}),
            datasets.Features({"predictions": vector, "references": scalar}),
        ]
    return datasets.Features({"predictions": scalar, "references": scalar})


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MtaffectMetrics(evaluate.Metric):
    """Sentiment, emotion and sarcasm metrics of the multimodal affect literature."""

    def _info(self):
        if self.config_name == "default":
            self.config_name = "sentiment"
        if self.config_name not in CONFIGS:
            raise KeyError(f"Unknown configuration {self.config_name!r}: use one of {', '.join(CONFIGS)}.")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=_features(self.config_name),
            reference_urls=[
                "https://arxiv.org/abs/2104.11560",
                "https://github.com/thuiar/MMSA",
                "https://aclanthology.org/P17-1142/",
            ],
        )

    def _compute(
        self,
        predictions,
        references,
        label_mask=None,
        label_names=None,
        threshold=0.5,
        prediction_type="score",
    ):
        if self.config_name == "sentiment":
            return sentiment_metrics(predictions, references)
        if self.config_name == "sentiment_class":
            return sentiment_class_metrics(predictions, references, prediction_type)
        if self.config_name == "emotion_multilabel":
            return emotion_multilabel_metrics(predictions, references, label_mask, label_names, threshold)
        if self.config_name == "emotion_multiclass":
            return emotion_multiclass_metrics(predictions, references, label_mask, label_names)
        return sarcasm_metrics(predictions, references, threshold)


# The arithmetic below is the module's own (no mtaffect import), so the Space runs without mtaffect.


def _array(values, name, ndims):
    array = np.asarray(values, dtype=np.float64)
    if array.ndim not in ndims:
        raise ValueError(
            f"{name}: expected {' or '.join(f'{d}-D' for d in ndims)} values, got shape {array.shape}."
        )
    if array.shape[0] == 0:
        raise ValueError(f"{name}: no examples to score.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: non-finite values (nan/inf).")
    return array


def _check_same_length(first, second, name):
    if first.shape[0] != second.shape[0]:
        raise ValueError(f"{name}: {first.shape[0]} predictions but {second.shape[0]} references.")


def _check_probabilities(probs, name):
    if probs.min() < 0.0 or probs.max() > 1.0:
        raise ValueError(f"{name}: values outside [0, 1]; these look like logits, apply a sigmoid first.")


def _weighted_f1(truth, pred):
    return float(f1_score(truth, pred, average="weighted", zero_division=0.0))


def _weighted_accuracy(truth, pred):
    # (TP * N / P + TN) / (2 * N) == mean recall of the classes present in truth.
    truth = np.asarray(truth, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    recalls = []
    if truth.any():
        recalls.append(np.sum(pred & truth) / np.sum(truth))
    if (~truth).any():
        recalls.append(np.sum(~pred & ~truth) / np.sum(~truth))
    return float(np.mean(recalls))


def _pearson(pred, truth):
    x = pred - np.mean(pred)
    y = truth - np.mean(truth)
    denominator = math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)))
    if denominator == 0.0:
        return 0.0
    return float(np.clip(np.dot(x, y) / denominator, -1.0, 1.0))


def _rounded_accuracy(pred, truth, bound):
    return float(np.mean(np.round(np.clip(pred, -bound, bound)) == np.round(np.clip(truth, -bound, bound))))


def sentiment_metrics(predictions, references):
    pred = _array(predictions, "predictions", (1,))
    truth = _array(references, "references", (1,))
    _check_same_length(pred, truth, "sentiment")
    nonzero = truth != 0
    if nonzero.any():
        non0_acc = float(accuracy_score(truth[nonzero] > 0, pred[nonzero] > 0))
        non0_f1 = _weighted_f1(truth[nonzero] > 0, pred[nonzero] > 0)
    else:
        non0_acc = non0_f1 = float("nan")
    return {
        "Has0_acc_2": float(accuracy_score(truth >= 0, pred >= 0)),
        "Has0_F1_score": _weighted_f1(truth >= 0, pred >= 0),
        "Non0_acc_2": non0_acc,
        "Non0_F1_score": non0_f1,
        "Mult_acc_5": _rounded_accuracy(pred, truth, 2.0),
        "Mult_acc_7": _rounded_accuracy(pred, truth, 3.0),
        "MAE": float(np.mean(np.abs(pred - truth))),
        "Corr": _pearson(pred, truth),
    }


def sentiment_class_metrics(predictions, references, prediction_type="score"):
    raw = _array(predictions, "predictions", (1, 2))
    truth = _array(references, "references", (1,))
    if not np.all(np.isin(truth, (0, 1, 2))):
        raise ValueError("references: sentiment classes must be 0 (negative), 1 (neutral) or 2 (positive).")
    if raw.ndim == 2 or prediction_type == "logits":
        if raw.ndim != 2 or raw.shape[1] != 3:
            raise ValueError(f"predictions: sentiment logits must have shape [N, 3], got {raw.shape}.")
        classes = np.argmax(raw, axis=1)
    elif prediction_type == "class":
        if not np.all(np.isin(raw, (0, 1, 2))):
            raise ValueError("predictions: sentiment class ids must be 0, 1 or 2.")
        classes = raw.astype(np.int64)
    elif prediction_type == "score":
        classes = (np.round(np.clip(raw, -1.0, 1.0)) + 1).astype(np.int64)
    else:
        raise ValueError(f"prediction_type must be 'score', 'class' or 'logits', got {prediction_type!r}.")
    truth = truth.astype(np.int64)
    _check_same_length(classes, truth, "sentiment_class")
    return {
        "accuracy": float(accuracy_score(truth, classes)),
        "weighted_f1": _weighted_f1(truth, classes),
        "macro_f1": float(f1_score(truth, classes, average="macro", zero_division=0.0)),
    }


def _label_setup(label_mask, label_names, num_rows, num_labels):
    if label_names is None:
        label_names = (
            EMOTION_LABELS if num_labels == len(EMOTION_LABELS) else [f"label_{j}" for j in range(num_labels)]
        )
    if len(label_names) != num_labels:
        raise ValueError(f"label_names has {len(label_names)} names for {num_labels} labels.")
    if label_mask is None:
        mask = np.ones((num_rows, num_labels), dtype=bool)
    else:
        mask = np.asarray(label_mask, dtype=bool)
        if mask.ndim == 1:
            mask = np.broadcast_to(mask, (num_rows, mask.shape[0]))
        if mask.shape != (num_rows, num_labels):
            raise ValueError(f"label_mask must have {num_labels} entries (or one such list per example).")
    if not mask.any():
        raise ValueError("label_mask selects no label.")
    return mask, list(label_names)


def emotion_multilabel_metrics(predictions, references, label_mask=None, label_names=None, threshold=0.5):
    probs = _array(predictions, "predictions", (2,))
    truth = _array(references, "references", (2,))
    if probs.shape != truth.shape:
        raise ValueError(f"predictions {probs.shape} and references {truth.shape} differ in shape.")
    _check_probabilities(probs, "predictions")
    mask, names = _label_setup(label_mask, label_names, probs.shape[0], probs.shape[1])
    results = {}
    accuracies = []
    f1s = []
    for j, name in enumerate(names):
        rows = mask[:, j]
        if not rows.any():
            continue
        gold = truth[rows, j] > 0
        predicted = probs[rows, j] > threshold
        accuracies.append(_weighted_accuracy(gold, predicted))
        f1s.append(_weighted_f1(gold, predicted))
        results[f"{name}_weighted_acc"] = accuracies[-1]
        results[f"{name}_weighted_f1"] = f1s[-1]
    results["weighted_acc"] = float(np.mean(accuracies))
    results["weighted_f1"] = float(np.mean(f1s))
    return results


def emotion_multiclass_metrics(predictions, references, label_mask=None, label_names=None):
    scores = _array(predictions, "predictions", (2,))
    num_rows, num_labels = scores.shape
    mask, names = _label_setup(label_mask, label_names, num_rows, num_labels)
    allowed = np.flatnonzero(mask.any(axis=0))
    truth = _array(references, "references", (1, 2))
    _check_same_length(scores, truth, "emotion_multiclass")
    if truth.ndim == 2:
        positives = truth > 0
        if truth.shape[1] != num_labels or np.any(positives.sum(axis=1) != 1):
            raise ValueError("references: one-hot rows need exactly one positive label per example.")
        gold = np.argmax(positives, axis=1)
    else:
        gold = truth.astype(np.int64)
        if np.any(gold != truth) or gold.min() < 0 or gold.max() >= num_labels:
            raise ValueError(f"references: class ids must be integers in [0, {num_labels}).")
    if not np.all(np.isin(gold, allowed)):
        raise ValueError("references: a gold class is not selected by label_mask.")
    predicted = allowed[np.argmax(scores[:, allowed], axis=1)]
    results = {
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(f1_score(gold, predicted, average="macro", zero_division=0.0)),
        "weighted_f1": _weighted_f1(gold, predicted),
    }
    accuracies = []
    f1s = []
    for j in allowed:
        gold_j = gold == j
        predicted_j = predicted == j
        accuracies.append(float(np.mean(gold_j == predicted_j)))
        f1s.append(_weighted_f1(gold_j, predicted_j))
        results[f"{names[j]}_acc"] = accuracies[-1]
        results[f"{names[j]}_f1"] = f1s[-1]
    results["mean_class_acc"] = float(np.mean(accuracies))
    results["mean_class_f1"] = float(np.mean(f1s))
    return results


def sarcasm_metrics(predictions, references, threshold=0.5):
    probs = _array(predictions, "predictions", (1,))
    truth = _array(references, "references", (1,))
    _check_same_length(probs, truth, "sarcasm")
    _check_probabilities(probs, "predictions")
    if not np.all((truth == 0) | (truth == 1)):
        raise ValueError("references: sarcasm labels must be 0 or 1.")
    gold = truth.astype(np.int64)
    predicted = (probs > threshold).astype(np.int64)
    precision, recall, f1, _ = precision_recall_fscore_support(
        gold, predicted, average="weighted", zero_division=0.0
    )
    return {
        "accuracy": float(accuracy_score(gold, predicted)),
        "weighted_precision": float(precision),
        "weighted_recall": float(recall),
        "weighted_f1": float(f1),
    }
