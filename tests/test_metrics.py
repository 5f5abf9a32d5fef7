"""mtaffect.metrics against values worked out by hand on small arrays (arithmetic in comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtaffect.metrics import (
    GOLD_LABEL_COLUMNS,
    PRIMARY_METRICS,
    PRIMARY_SCORE_KEY,
    compute_corpus_metrics,
    emotion_multiclass_metrics,
    emotion_multilabel_metrics,
    greater_is_better,
    make_compute_metrics,
    pearson_r,
    primary_score,
    sarcasm_metrics,
    sentiment_class_metrics,
    sentiment_regression_metrics,
    task_metrics,
    weighted_accuracy,
)
from mtaffect.tasks import EMOTION_LABELS

approx = pytest.approx

# --------------------------------------------------------------------------------------------
# Sentiment regression (MMSA names)

# idx:            0     1     2     3     4     5
SENT_PRED = [1.4, -0.6, 0.2, -2.4, 0.0, 2.5]
SENT_TRUTH = [2.0, -1.0, 0.0, -3.0, -0.4, 1.6]


def test_sentiment_regression_by_hand():
    m = sentiment_regression_metrics(np.array(SENT_PRED), np.array(SENT_TRUTH))
    assert list(m) == [
        "Has0_acc_2",
        "Has0_F1_score",
        "Non0_acc_2",
        "Non0_F1_score",
        "Mult_acc_5",
        "Mult_acc_7",
        "MAE",
        "Corr",
    ]
    # Has0 (>= 0 both sides): truth [T F T F F T], pred [T F T F T T] -> idx 4 wrong -> 5/6.
    assert m["Has0_acc_2"] == approx(5 / 6)
    # Weighted F1: class T (support 3): TP 3, FP 1 (idx 4), FN 0 -> P 3/4, R 1, F1 6/7.
    # class F (support 3): TP 2, FP 0, FN 1 -> P 1, R 2/3, F1 4/5. (3*6/7 + 3*4/5) / 6 = 29/35.
    assert m["Has0_F1_score"] == approx(29 / 35)
    # Non0 drops idx 2 (truth exactly 0) and uses > 0: pred 0.0 at idx 4 is now "not positive",
    # matching its truth -0.4 -> 5/5 correct.
    assert m["Non0_acc_2"] == approx(1.0)
    assert m["Non0_F1_score"] == approx(1.0)
    # Acc-5: clip to [-2, 2], round. pred [1 -1 0 -2 0 2], truth [2 -1 0 -2 -0 2] -> idx 0 wrong -> 5/6.
    assert m["Mult_acc_5"] == approx(5 / 6)
    # Acc-7: clip to [-3, 3], round half to even (2.5 -> 2). pred [1 -1 0 -2 0 2],
    # truth [2 -1 0 -3 -0 2] -> idx 0 and 3 wrong -> 4/6. (Rounding 2.5 up would make idx 5 wrong too.)
    assert m["Mult_acc_7"] == approx(4 / 6)
    # MAE: (0.6 + 0.4 + 0.2 + 0.6 + 0.4 + 0.9) / 6 = 3.1 / 6.
    assert m["MAE"] == approx(3.1 / 6)
    # Corr: checked against the textbook formula through numpy's corrcoef.
    assert m["Corr"] == approx(np.corrcoef(SENT_PRED, SENT_TRUTH)[0, 1])


def test_pearson_by_hand_and_undefined_cases():
    # x [1 2 3], y [1 3 2]: deviations [-1 0 1], [-1 1 0]; sum of products 1; norms sqrt(2)*sqrt(2) -> 1/2.
    assert pearson_r(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])) == approx(0.5)
    assert pearson_r(np.array([1.0, 2.0, 3.0]), np.array([-2.0, -4.0, -6.0])) == approx(-1.0)
    # Undefined -> 0.0 (documented): constant prediction, constant truth, single example.
    assert pearson_r(np.array([0.5, 0.5, 0.5]), np.array([1.0, -1.0, 2.0])) == 0.0
    assert pearson_r(np.array([0.5, 0.1, 0.3]), np.array([1.0, 1.0, 1.0])) == 0.0
    assert pearson_r(np.array([0.5]), np.array([1.0])) == 0.0


def test_sentiment_constant_prediction():
    m = sentiment_regression_metrics(np.array([0.5, 0.5, 0.5]), np.array([1.0, -1.0, 2.0]))
    # Has0: pred all T, truth [T F T] -> 2/3. F1: T (support 2) P 2/3 R 1 -> 4/5; F (support 1) never
    # predicted -> 0. Weighted (2*4/5 + 0) / 3 = 8/15.
    assert m["Has0_acc_2"] == approx(2 / 3)
    assert m["Has0_F1_score"] == approx(8 / 15)
    assert m["Non0_acc_2"] == approx(2 / 3)  # no zero truth: same rows, > 0 gives the same split
    assert m["Corr"] == 0.0
    # Acc-7: round(0.5) = 0 (half to even) vs [1 -1 2] -> 0/3. MAE (0.5 + 1.5 + 1.5) / 3 = 7/6.
    assert m["Mult_acc_7"] == 0.0
    assert m["MAE"] == approx(7 / 6)


def test_sentiment_all_zero_truth():
    m = sentiment_regression_metrics(np.array([0.1, -0.2, 0.3]), np.array([0.0, 0.0, 0.0]))
    # Non0 has no example left -> nan (documented).
    assert math.isnan(m["Non0_acc_2"]) and math.isnan(m["Non0_F1_score"])
    # Has0: truth all T, pred [T F T] -> 2/3; F1: T (support 3) P 1 R 2/3 -> 4/5; F has support 0 -> 4/5.
    assert m["Has0_acc_2"] == approx(2 / 3)
    assert m["Has0_F1_score"] == approx(0.8)
    # Rounded: [0 -0 0] == [0 0 0] -> 1.0; MAE (0.1+0.2+0.3)/3 = 0.2; constant truth -> Corr 0.0.
    assert m["Mult_acc_7"] == 1.0 and m["Mult_acc_5"] == 1.0
    assert m["MAE"] == approx(0.2)
    assert m["Corr"] == 0.0


def test_sentiment_single_example():
    m = sentiment_regression_metrics(np.array([1.0]), np.array([2.0]))
    assert m["Has0_acc_2"] == m["Has0_F1_score"] == m["Non0_acc_2"] == m["Non0_F1_score"] == 1.0
    assert m["Mult_acc_7"] == 0.0 and m["MAE"] == 1.0 and m["Corr"] == 0.0


def test_sentiment_accepts_column_vectors_and_rejects_bad_input():
    m = sentiment_regression_metrics(np.array(SENT_PRED)[:, None], np.array(SENT_TRUTH))
    assert m["Has0_acc_2"] == approx(5 / 6)
    with pytest.raises(ValueError, match="empty"):
        sentiment_regression_metrics(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="different numbers"):
        sentiment_regression_metrics(np.array([1.0, 2.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="non-finite"):
        sentiment_regression_metrics(np.array([np.nan, 1.0]), np.array([1.0, 2.0]))


# --------------------------------------------------------------------------------------------
# Sentiment, 3 classes (MELD)


def test_sentiment_class_by_hand():
    scores = np.array([-0.8, 0.4, 0.6, -0.5, 1.7, 0.0, 2.9])
    truth = np.array([0, 1, 2, 1, 2, 0, 2])
    # Class view: clip to [-1, 1], round (half to even: -0.5 -> -0), +1 -> [0 1 2 1 2 1 2]; idx 5 wrong.
    m = sentiment_class_metrics(scores, truth)
    assert m["accuracy"] == approx(6 / 7)
    # class 0 (support 2): TP 1, FN 1 -> P 1, R 1/2, F1 2/3. class 1 (support 2): TP 2, FP 1 -> P 2/3,
    # R 1, F1 4/5. class 2 (support 3): F1 1. weighted (2*2/3 + 2*4/5 + 3) / 7 = 89/105;
    # macro (2/3 + 4/5 + 1) / 3 = 37/45.
    assert m["weighted_f1"] == approx(89 / 105)
    assert m["macro_f1"] == approx(37 / 45)
    # Same numbers from class ids (integer dtype) and from [N, 3] logits.
    classes = np.array([0, 1, 2, 1, 2, 1, 2])
    assert sentiment_class_metrics(classes, truth) == approx(m)
    assert sentiment_class_metrics(np.eye(3)[classes] * 4.0 - 1.0, truth) == approx(m)
    # An explicit type where the dtype would mislead (float class ids would otherwise be scores).
    assert sentiment_class_metrics(classes.astype(float), truth, prediction_type="class") == approx(m)


def test_sentiment_class_one_class_absent():
    # truth [2 2 0], pred [2 1 0]: class 0 F1 1 (support 1); class 1 predicted once, support 0 -> F1 0;
    # class 2: TP 1, FN 1 -> F1 2/3 (support 2). weighted (1 + 2*2/3) / 3 = 7/9; macro over the
    # classes in truth or pred (0, 1, 2): (1 + 0 + 2/3) / 3 = 5/9.
    m = sentiment_class_metrics(np.array([2, 1, 0]), np.array([2, 2, 0]))
    assert m == approx({"accuracy": 2 / 3, "weighted_f1": 7 / 9, "macro_f1": 5 / 9})


def test_sentiment_class_rejects_unknown_class():
    with pytest.raises(ValueError, match="sentiment_class -1"):
        sentiment_class_metrics(np.array([0.5, 0.1]), np.array([-1, 2]))
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        sentiment_class_metrics(np.zeros((2, 4)), np.array([0, 2]))


# --------------------------------------------------------------------------------------------
# Emotion, multi-label (MOSEI)

ML_PROBS = np.array(
    [
        [0.9, 0.2, 0.7],
        [0.6, 0.5, 0.1],
        [0.1, 0.8, 0.9],
        [0.3, 0.6, 0.2],
    ]
)
ML_TRUTH = np.array(
    [
        [1, 0, 0],
        [0, 0, 1],
        [0, 1, 0],
        [1, 0, 0],
    ]
)


def test_weighted_accuracy_formula():
    # truth [1 0 0 0], pred [1 1 0 0]: TP 1, P 1, TN 2, N 3.
    # (TP*N/P + TN) / (2N) = (3 + 2) / 6 = 5/6 = (TP/P + TN/N) / 2 = (1 + 2/3) / 2.
    assert weighted_accuracy(np.array([1, 0, 0, 0]), np.array([1, 1, 0, 0])) == approx(5 / 6)
    # One class absent: the recall of the present class. truth all 0, pred [1 0 0] -> TN/N = 2/3.
    assert weighted_accuracy(np.array([0, 0, 0]), np.array([1, 0, 0])) == approx(2 / 3)
    assert weighted_accuracy(np.array([1, 1]), np.array([1, 0])) == approx(1 / 2)


def test_emotion_multilabel_by_hand():
    m = emotion_multilabel_metrics(ML_PROBS, ML_TRUTH, [True, True, False], ("a", "b", "c"))
    # label a: pred (> 0.5) [T T F F], truth [T F F T]: TP 1, P 2, TN 1, N 2 -> (1/2 + 1/2) / 2 = 1/2.
    # F1: class T: TP 1, FP 1, FN 1 -> 1/2; class F: TP 1, FP 1, FN 1 -> 1/2; weighted 1/2.
    assert m["a_weighted_acc"] == approx(0.5)
    assert m["a_weighted_f1"] == approx(0.5)
    # label b: 0.5 is not > 0.5, so pred [F F T T], truth [F F T F]: TP 1, P 1, TN 2, N 3 -> 5/6
    # (plain accuracy would be 3/4). F1: T (support 1) P 1/2 R 1 -> 2/3; F (support 3): TP 2, FN 1 ->
    # P 1, R 2/3 -> 4/5. weighted (2/3 + 3*4/5) / 4 = 23/30.
    assert m["b_weighted_acc"] == approx(5 / 6)
    assert m["b_weighted_f1"] == approx(23 / 30)
    # label c is not annotated: no key. Means over a and b.
    assert "c_weighted_acc" not in m and "c_weighted_f1" not in m
    assert m["weighted_acc"] == approx((0.5 + 5 / 6) / 2)
    assert m["weighted_f1"] == approx((0.5 + 23 / 30) / 2)
    # A lower threshold flips label b's row 1 (0.5 > 0.4): pred [F T T T] -> TN 1 of 3 -> (1 + 1/3) / 2.
    low = emotion_multilabel_metrics(ML_PROBS, ML_TRUTH, [False, True, False], ("a", "b", "c"), threshold=0.4)
    assert low["b_weighted_acc"] == approx(2 / 3)


def test_emotion_multilabel_label_absent_and_per_row_mask():
    # label 0 never present in truth: weighted acc = TN/N = 2/3; F1: only class F (support 3):
    # TP 2, FN 1 -> P 1, R 2/3 -> 4/5.
    m = emotion_multilabel_metrics(
        np.array([[0.9], [0.1], [0.2]]), np.array([[0], [0], [0]]), label_names=["x"]
    )
    assert m == approx(
        {"x_weighted_acc": 2 / 3, "x_weighted_f1": 0.8, "weighted_acc": 2 / 3, "weighted_f1": 0.8}
    )
    # A per-row mask drops row 0 for label x: the wrong prediction there no longer counts.
    row_mask = np.array([[False], [True], [True]])
    m = emotion_multilabel_metrics(
        np.array([[0.9], [0.1], [0.2]]), np.array([[0], [0], [0]]), row_mask, ["x"]
    )
    assert m["x_weighted_acc"] == 1.0 and m["x_weighted_f1"] == 1.0


def test_emotion_multilabel_rejects_logits_and_bad_masks():
    with pytest.raises(ValueError, match="logits"):
        emotion_multilabel_metrics(ML_PROBS * 4 - 2, ML_TRUTH, label_names=("a", "b", "c"))
    with pytest.raises(ValueError, match="selects no emotion label"):
        emotion_multilabel_metrics(ML_PROBS, ML_TRUTH, [False] * 3, ("a", "b", "c"))
    with pytest.raises(ValueError, match="label_names"):
        emotion_multilabel_metrics(ML_PROBS, ML_TRUTH)  # 3 columns, 7 default names


# --------------------------------------------------------------------------------------------
# Emotion, single-label (IEMOCAP, MELD)

ANG, DIS, HAP, SAD, NEU = (
    EMOTION_LABELS.index(n) for n in ("anger", "disgust", "happiness", "sadness", "neutral")
)
IEMOCAP_MASK = [name in ("anger", "happiness", "sadness", "neutral") for name in EMOTION_LABELS]
MC_TRUTH = np.array([ANG, ANG, HAP, SAD, NEU, NEU])
MC_PRED = np.array([ANG, SAD, HAP, SAD, ANG, NEU])


def _logits_for(predicted: np.ndarray) -> np.ndarray:
    logits = np.zeros((len(predicted), len(EMOTION_LABELS)))
    logits[np.arange(len(predicted)), predicted] = 2.0
    logits[2, DIS] = 9.0  # disgust is not an IEMOCAP class: must be ignored by the argmax
    return logits


def test_emotion_multiclass_by_hand():
    m = emotion_multiclass_metrics(_logits_for(MC_PRED), np.eye(9)[MC_TRUTH], IEMOCAP_MASK)
    # truth [ang ang hap sad neu neu], pred [ang sad hap sad ang neu] -> 4/6 correct.
    assert m["accuracy"] == approx(2 / 3)
    # ang: TP 1 FP 1 FN 1 -> 1/2 (support 2); hap: 1 (support 1); sad: TP 1 FP 1 -> 2/3 (support 1);
    # neu: TP 1 FN 1 -> 2/3 (support 2). macro (1/2 + 1 + 2/3 + 2/3) / 4 = 17/24;
    # weighted (2*1/2 + 1 + 2/3 + 2*2/3) / 6 = 2/3.
    assert m["macro_f1"] == approx(17 / 24)
    assert m["weighted_f1"] == approx(2 / 3)
    # Class vs rest (IEMOCAP style):
    # anger: gold [T T F F F F], pred [T F F F T F] -> 4/6; F1: T 1/2 (support 2), F: TP 3 FP 1 FN 1 -> 3/4
    # (support 4) -> (1 + 3) / 6 = 2/3.
    assert m["anger_acc"] == approx(2 / 3) and m["anger_f1"] == approx(2 / 3)
    assert m["happiness_acc"] == 1.0 and m["happiness_f1"] == 1.0
    # sadness: gold [F F F T F F], pred [F T F T F F] -> 5/6; F1: T P 1/2 R 1 -> 2/3 (support 1),
    # F: TP 4 FN 1 -> 8/9 (support 5) -> (2/3 + 40/9) / 6 = 23/27.
    assert m["sadness_acc"] == approx(5 / 6) and m["sadness_f1"] == approx(23 / 27)
    # neutral: gold [F F F F T T], pred [F F F F F T] -> 5/6; F1: T P 1 R 1/2 -> 2/3 (support 2),
    # F: TP 4 FP 1 -> 8/9 (support 4) -> (4/3 + 32/9) / 6 = 22/27.
    assert m["neutral_acc"] == approx(5 / 6) and m["neutral_f1"] == approx(22 / 27)
    assert m["mean_class_acc"] == approx((2 / 3 + 1 + 5 / 6 + 5 / 6) / 4)
    assert m["mean_class_f1"] == approx((2 / 3 + 1 + 23 / 27 + 22 / 27) / 4)
    assert not any(key.startswith(("disgust", "fear", "surprise")) for key in m)
    # Class ids give the same numbers as one-hot rows.
    assert emotion_multiclass_metrics(_logits_for(MC_PRED), MC_TRUTH, IEMOCAP_MASK) == approx(m)


def test_emotion_multiclass_constant_prediction_and_errors():
    # Always "neutral": accuracy 2/6; weighted F1: neu P 2/6 R 1 -> F1 1/2 (support 2), others 0 -> 1/6.
    logits = np.zeros((6, 9))
    logits[:, NEU] = 1.0
    m = emotion_multiclass_metrics(logits, MC_TRUTH, IEMOCAP_MASK)
    assert m["accuracy"] == approx(1 / 3)
    assert m["weighted_f1"] == approx(1 / 6)
    with pytest.raises(ValueError, match="2 positive labels"):
        emotion_multiclass_metrics(logits[:1], np.array([[1, 0, 0, 0, 0, 0, 1, 0, 0]]), IEMOCAP_MASK)
    with pytest.raises(ValueError, match="not selected by label_mask"):
        emotion_multiclass_metrics(logits[:1], np.array([DIS]), IEMOCAP_MASK)


# --------------------------------------------------------------------------------------------
# Sarcasm (MUStARD)


def test_sarcasm_by_hand():
    probs = np.array([0.9, 0.4, 0.6, 0.7, 0.5, 0.8])
    truth = np.array([1, 1, 0, 0, 0, 0])
    # pred (> 0.5; 0.5 is not sarcastic) [1 0 1 1 0 1]: correct at idx 0 and 4 -> 2/6.
    # class 1 (support 2): TP 1, FP 3, FN 1 -> P 1/4, R 1/2, F1 1/3.
    # class 0 (support 4): TP 1, FP 1, FN 3 -> P 1/2, R 1/4, F1 1/3.
    # weighted P (2/4 + 4/2) / 6 = 5/12; R (1 + 1) / 6 = 1/3; F1 (2/3 + 4/3) / 6 = 1/3.
    m = sarcasm_metrics(probs, truth)
    assert m == approx(
        {"accuracy": 1 / 3, "weighted_precision": 5 / 12, "weighted_recall": 1 / 3, "weighted_f1": 1 / 3}
    )


def test_sarcasm_constant_prediction_and_errors():
    # Never sarcastic vs [1 0 0]: acc 2/3; class 1 never predicted -> P 0, F1 0 (support 1);
    # class 0: P 2/3, R 1, F1 4/5 (support 2). weighted P 4/9, R 2/3, F1 8/15.
    m = sarcasm_metrics(np.array([0.1, 0.1, 0.1]), np.array([1.0, 0.0, 0.0]))
    assert m == approx(
        {"accuracy": 2 / 3, "weighted_precision": 4 / 9, "weighted_recall": 2 / 3, "weighted_f1": 8 / 15}
    )
    with pytest.raises(ValueError, match="logits"):
        sarcasm_metrics(np.array([2.3, -1.0]), np.array([1, 0]))
    with pytest.raises(ValueError, match="0 or 1"):
        sarcasm_metrics(np.array([0.3, 0.6]), np.array([0.5, 1.0]))


def test_task_metrics_dispatches_by_family():
    assert task_metrics("sentiment", SENT_PRED, SENT_TRUTH) == sentiment_regression_metrics(
        np.array(SENT_PRED), np.array(SENT_TRUTH)
    )
    assert (
        task_metrics("emotion_multilabel", ML_PROBS, ML_TRUTH, label_names=("a", "b", "c"))["a_weighted_acc"]
        == 0.5
    )
    with pytest.raises(ValueError, match="Unknown metric family"):
        task_metrics("valence", SENT_PRED, SENT_TRUTH)


# --------------------------------------------------------------------------------------------
# The corpus dispatcher, primary score and Trainer glue


def _unknown_labels(n: int) -> dict[str, np.ndarray]:
    return {
        "emotion": np.zeros((n, 9), np.float32),
        "emotion_mask": np.zeros((n, 9), bool),
        "emotion_multilabel": np.zeros(n, bool),
        "sentiment": np.zeros(n, np.float32),
        "sentiment_mask": np.zeros(n, bool),
        "sentiment_class": np.full(n, -1, np.int64),
        "sentiment_num_classes": np.zeros(n, np.int64),
        "sarcasm": np.zeros(n, np.float32),
        "sarcasm_mask": np.zeros(n, bool),
    }


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def _mosei_like_batch():
    """4 scored rows (the ML_* arrays on 3 labels) + 2 rows with every mask off (wild values)."""
    labels = _unknown_labels(6)
    labels["emotion"][:4, [0, 3, 4]] = ML_TRUTH
    labels["emotion_mask"][:4, [0, 3, 4]] = True
    labels["emotion_multilabel"][:4] = True
    labels["sentiment"][:4] = [1.0, -1.0, 0.0, 2.0]
    labels["sentiment_mask"][:4] = True
    probs = np.full((6, 9), 0.5)
    probs[:4, [0, 3, 4]] = ML_PROBS
    probs[4:] = 0.99
    outputs = {
        "emotion_logits": _logit(probs),
        "sentiment_score": np.array([0.5, -0.5, 1.0, 1.5, -3.0, -3.0]),
        "sarcasm_logits": np.array([5.0, -5.0, 5.0, -5.0, 5.0, 5.0]),
    }
    return outputs, labels


def test_compute_corpus_metrics_multilabel_corpus_uses_masked_rows_only():
    outputs, labels = _mosei_like_batch()
    m = compute_corpus_metrics(outputs, labels)
    names = ("anger", "happiness", "sadness")
    expected = emotion_multilabel_metrics(ML_PROBS, ML_TRUTH, label_names=names)
    assert {k[len("emotion_") :]: v for k, v in m.items() if k.startswith("emotion_")} == approx(expected)
    # Same hand values as test_emotion_multilabel_by_hand (anger = a, happiness = b).
    assert m["emotion_anger_weighted_acc"] == approx(0.5)
    assert m["emotion_happiness_weighted_acc"] == approx(5 / 6)
    assert "emotion_neutral_weighted_acc" not in m
    # Sentiment on rows 0-3: pred [0.5 -0.5 1 1.5], truth [1 -1 0 2] -> MAE (0.5+0.5+1+0.5)/4 = 0.625;
    # Has0 all right (>= 0: [T F T T] both) -> 1.0; Non0 drops row 2 -> 1.0.
    assert m["sentiment_MAE"] == approx(0.625)
    assert m["sentiment_Has0_acc_2"] == 1.0 and m["sentiment_Non0_acc_2"] == 1.0
    assert "sentiment_accuracy" not in m  # no class-labelled rows
    assert not any(key.startswith("sarcasm") for key in m)  # sarcasm mask is off everywhere
    # sadness (column c of ML_*): pred [T F T F], truth [F T F F]: TP 0 of P 1, TN 1 of N 3 ->
    # (0 + 1/3) / 2 = 1/6. F1: T (support 1) 0; F (support 3): TP 1, FP 1, FN 2 -> P 1/2, R 1/3, F1 2/5
    # -> 3 * 2/5 / 4 = 3/10. emotion weighted_f1 = (1/2 + 23/30 + 3/10) / 3 = 47/90.
    assert m["emotion_sadness_weighted_acc"] == approx(1 / 6)
    assert m["emotion_weighted_f1"] == approx(47 / 90)
    # primary: mean of emotion weighted F1 and sentiment Non0 F1 (1.0).
    assert m[PRIMARY_SCORE_KEY] == approx((47 / 90 + 1.0) / 2)


def _class_labelled_batch():
    labels = _unknown_labels(6)
    labels["emotion"][np.arange(6), MC_TRUTH] = 1.0
    labels["emotion_mask"][:] = IEMOCAP_MASK
    sentiment_classes = np.array([0, 1, 2, 1, 2, 0])
    labels["sentiment"][:] = sentiment_classes - 1.0
    labels["sentiment_mask"][:] = True
    labels["sentiment_class"][:] = sentiment_classes
    labels["sentiment_num_classes"][:] = 3
    outputs = {
        "emotion_logits": _logits_for(MC_PRED),
        "sentiment_score": np.array([-0.8, 0.4, 0.6, -0.5, 1.7, 0.0]),
    }
    return outputs, labels


def test_compute_corpus_metrics_single_label_and_class_sentiment():
    outputs, labels = _class_labelled_batch()
    m = compute_corpus_metrics(outputs, labels, include_primary=False)
    assert m["emotion_accuracy"] == approx(2 / 3)
    assert m["emotion_weighted_f1"] == approx(2 / 3)
    assert m["emotion_sadness_f1"] == approx(23 / 27)
    # Class view [0 1 2 1 2 1] vs [0 1 2 1 2 0] -> 5/6; no regression keys for class-only sentiment.
    assert m["sentiment_accuracy"] == approx(5 / 6)
    assert "sentiment_MAE" not in m and PRIMARY_SCORE_KEY not in m
    # A model without a sentiment head: the task is skipped, emotion still scored.
    m = compute_corpus_metrics({"emotion_logits": outputs["emotion_logits"], "sentiment_score": None}, labels)
    assert not any(key.startswith("sentiment") for key in m)
    assert m[PRIMARY_SCORE_KEY] == approx(2 / 3)


def test_compute_corpus_metrics_sarcasm_and_errors():
    labels = _unknown_labels(6)
    labels["sarcasm"][:] = [1, 1, 0, 0, 0, 0]
    labels["sarcasm_mask"][:] = True
    outputs = {"sarcasm_logits": _logit(np.array([0.9, 0.4, 0.6, 0.7, 0.5, 0.8]))}
    m = compute_corpus_metrics(outputs, labels)
    assert m["sarcasm_weighted_precision"] == approx(5 / 12)
    assert m[PRIMARY_SCORE_KEY] == approx(m["sarcasm_weighted_f1"]) == approx(1 / 3)
    # Mixed multi-label and single-label emotion rows in one call are refused.
    mixed = _unknown_labels(2)
    mixed["emotion"][:, 0] = 1.0
    mixed["emotion_mask"][:, :] = True
    mixed["emotion_multilabel"][:] = [True, False]
    with pytest.raises(ValueError, match="evaluate each corpus separately"):
        compute_corpus_metrics({"emotion_logits": np.zeros((2, 9))}, mixed)
    with pytest.raises(ValueError, match="emotion_mask"):
        compute_corpus_metrics({"emotion_logits": np.zeros((2, 9))}, {"emotion": np.zeros((2, 9))})
    assert compute_corpus_metrics({"sarcasm_logits": np.zeros(2)}, _unknown_labels(2)) == {}


def test_primary_metrics_and_score():
    assert set(PRIMARY_METRICS) == {"emotion", "sentiment", "sarcasm"}
    assert all(p.greater_is_better for candidates in PRIMARY_METRICS.values() for p in candidates)
    # First candidate present and finite wins; nan falls through to the next candidate.
    assert primary_score({"sentiment_Non0_F1_score": 0.7, "sentiment_weighted_f1": 0.1}) == approx(0.7)
    assert primary_score({"sentiment_Non0_F1_score": float("nan"), "sentiment_weighted_f1": 0.4}) == approx(
        0.4
    )
    assert primary_score(
        {"eval_mosei_emotion_weighted_f1": 0.5, "eval_mosei_sentiment_Non0_F1_score": 0.9},
        prefix="eval_mosei_",
    ) == approx(0.7)
    assert math.isnan(primary_score({"sentiment_MAE": 0.3}))
    assert greater_is_better("eval_mosei_sentiment_MAE") is False
    assert greater_is_better("sentiment_Mult_acc_7") is True


def test_make_compute_metrics_with_trainer_eval_prediction():
    from transformers import EvalPrediction

    outputs, labels = _mosei_like_batch()
    expected = compute_corpus_metrics(outputs, labels)
    label_tuple = tuple(labels[name] for name in GOLD_LABEL_COLUMNS)
    # Tuple predictions in output order, with an extra pooled_output the caller skips with None.
    compute = make_compute_metrics(("emotion_logits", "sentiment_score", "sarcasm_logits", None))
    prediction_tuple = (
        *(outputs[name] for name in ("emotion_logits", "sentiment_score", "sarcasm_logits")),
        np.zeros((6, 4)),
    )
    assert compute(EvalPrediction(predictions=prediction_tuple, label_ids=label_tuple)) == approx(expected)
    # Dicts work as they are; a (predictions, label_ids) pair works too.
    assert make_compute_metrics()((outputs, labels)) == approx(expected)
    # eval_do_concat_batches=False: one tuple per batch, joined before scoring.
    batches_pred = [
        tuple(outputs[n][s] for n in ("emotion_logits", "sentiment_score", "sarcasm_logits"))
        for s in (slice(0, 4), slice(4, 6))
    ]
    batches_label = [tuple(labels[n][s] for n in GOLD_LABEL_COLUMNS) for s in (slice(0, 4), slice(4, 6))]
    assert make_compute_metrics()(
        EvalPrediction(predictions=batches_pred, label_ids=batches_label)
    ) == approx(expected)
    # ... also when the batches are dicts (MultiTaskTrainer's prediction_step passes dicts).
    batch_dicts = [{n: v[s] for n, v in outputs.items()} for s in (slice(0, 4), slice(4, 6))]
    label_dicts = [{n: v[s] for n, v in labels.items()} for s in (slice(0, 4), slice(4, 6))]
    assert make_compute_metrics()(EvalPrediction(batch_dicts, label_dicts)) == approx(expected)
    # Emotion names for the per-label keys can be the model's own.
    renamed = make_compute_metrics(emotion_labels=[f"e{j}" for j in range(9)])((outputs, labels))
    assert renamed["emotion_e0_weighted_acc"] == approx(expected["emotion_anger_weighted_acc"])
    # A single-task model returns one array.
    only = make_compute_metrics(("sentiment_score",), ("sentiment", "sentiment_mask", "sentiment_class"))
    single = only(
        EvalPrediction(
            outputs["sentiment_score"],
            (labels["sentiment"], labels["sentiment_mask"], labels["sentiment_class"]),
        )
    )
    assert single["sentiment_MAE"] == approx(0.625)
    with pytest.raises(ValueError, match="output_names names 3"):
        make_compute_metrics()(EvalPrediction(predictions=prediction_tuple, label_ids=label_tuple))
    with pytest.raises(ValueError, match="label_names"):
        make_compute_metrics()(EvalPrediction(predictions=outputs, label_ids=None))


def test_compute_corpus_metrics_on_collated_synthetic_corpora(tiny_family):
    """Real schema rows through the real collator: every corpus gets exactly its tasks' metrics."""
    import torch

    from mtaffect.data.collator import MTAffectCollator

    rng = np.random.default_rng(0)
    expected_prefixes = {
        "synthetic_mosei": {"emotion_weighted_acc", "sentiment_Has0_acc_2", "sentiment_Non0_F1_score"},
        "synthetic_iemocap": {"emotion_accuracy", "emotion_mean_class_f1"},
        "synthetic_meld": {"emotion_weighted_f1", "sentiment_accuracy", "sentiment_macro_f1"},
        "synthetic_mustard": {"sarcasm_weighted_f1"},
    }
    for name, corpus in tiny_family.items():
        split = corpus["test"]
        batch = MTAffectCollator.for_dataset(split)([split[i] for i in range(len(split))])
        n = len(split)
        outputs = {
            "emotion_logits": torch.tensor(rng.normal(size=(n, 9)), dtype=torch.float32),
            "sentiment_score": torch.tensor(rng.uniform(-3, 3, size=n), dtype=torch.float32),
            "sarcasm_logits": torch.tensor(rng.normal(size=n), dtype=torch.float32),
        }
        labels = {column: batch[column] for column in GOLD_LABEL_COLUMNS}
        m = compute_corpus_metrics(outputs, labels)
        assert expected_prefixes[name] <= set(m), name
        tasks = {key.split("_")[0] for key in m if key != PRIMARY_SCORE_KEY}
        assert tasks == {prefix.split("_")[0] for prefix in expected_prefixes[name]}, name
        assert all(np.isfinite(value) for value in m.values()), name
        assert 0.0 <= m[PRIMARY_SCORE_KEY] <= 1.0


# ---------------------------------------------------------------------------------------------
# Headline metrics: the literature's first


def test_headline_metrics_per_kind_of_corpus():
    from mtaffect.metrics import headline_metrics

    mosi = ["sentiment_Mult_acc_7", "sentiment_Corr", "sentiment_MAE", "sentiment_Has0_F1_score",
            "sentiment_Non0_F1_score", "sentiment_Non0_acc_2", "sentiment_Has0_acc_2"]
    assert [m.key for m in headline_metrics(mosi)] == [
        "sentiment_Has0_acc_2", "sentiment_Non0_acc_2", "sentiment_Non0_F1_score", "sentiment_MAE", "sentiment_Corr",
    ]
    assert [m.greater_is_better for m in headline_metrics(["sentiment_MAE"])] == [False]
    meld = ["sentiment_accuracy", "sentiment_macro_f1", "sentiment_weighted_f1", "emotion_accuracy",
            "emotion_disgust_acc", "emotion_weighted_f1", "emotion_mean_class_acc", "emotion_mean_class_f1"]
    # MELD's headline is weighted F1 (and accuracy); its one-vs-rest means (~0.85 where weighted F1 is
    # ~0.45) are never headlines, for any kind of corpus.
    assert [m.key for m in headline_metrics(meld)] == [
        "emotion_weighted_f1", "emotion_accuracy", "sentiment_weighted_f1",
    ]
    from mtaffect.metrics import HEADLINE_METRICS, is_one_vs_rest, metric_label

    assert not [m.key for family in HEADLINE_METRICS.values() for m in family if is_one_vs_rest(m.key)]
    assert metric_label("emotion_mean_class_acc") == "one-vs-rest acc (mean over classes)"
    assert metric_label("emotion_disgust_acc") == "disgust one-vs-rest acc"
    mosei_emotion = ["emotion_anger_weighted_acc", "emotion_weighted_f1", "emotion_weighted_acc"]
    assert [m.label for m in headline_metrics(mosei_emotion)] == [
        "weighted acc (mean over labels)", "weighted F1 (mean over labels)",
    ]
    assert headline_metrics(meld, task="sarcasm") == []


def test_order_metrics_puts_headlines_first_then_summaries_then_per_class():
    from mtaffect.metrics import order_metrics

    keys = ["sarcasm_accuracy", "emotion_disgust_acc", "emotion_accuracy", "primary_score", "emotion_weighted_f1",
            "sarcasm_weighted_f1", "emotion_anger_f1", "emotion_macro_f1"]
    assert order_metrics(keys) == [
        "emotion_weighted_f1", "emotion_accuracy", "sarcasm_weighted_f1",
        "emotion_macro_f1", "emotion_anger_f1", "emotion_disgust_acc",
        "sarcasm_accuracy", "primary_score",
    ]


def test_predicted_class_counts_by_hand():
    from mtaffect.metrics import is_predicted_count, predicted_class_counts

    # Single-label emotion over 3 of the 7 labels (the rest masked), one row unlabelled.
    mask = np.zeros((4, 7), dtype=bool)
    mask[:3, [0, 3, 6]] = True
    logits = np.zeros((4, 7))
    logits[0, 3], logits[1, 3], logits[2, 6] = 2.0, 1.0, 3.0
    logits[:, 1] = 9.0  # a masked label never counts, however large its logit
    emotion = np.zeros((4, 7))
    emotion[[0, 1, 2], [0, 3, 6]] = 1
    labels = {"emotion": emotion, "emotion_mask": mask, "emotion_multilabel": np.zeros(4, dtype=bool),
              "sentiment": np.array([1.0, -1.0, 0.0, 0.5]), "sentiment_mask": np.array([1, 1, 1, 0]),
              "sentiment_class": np.array([2, 0, 1, -1])}
    counts = predicted_class_counts({"emotion_logits": logits, "sentiment_score": np.array([0.9, 0.8, -0.7, 0.0])},
                                    labels)
    names = EMOTION_LABELS
    assert counts == {
        f"emotion_predicted_{names[0]}": 0.0, f"emotion_predicted_{names[3]}": 2.0, f"emotion_predicted_{names[6]}": 1.0,
        "sentiment_predicted_negative": 1.0, "sentiment_predicted_neutral": 0.0, "sentiment_predicted_positive": 2.0,
    }
    assert all(is_predicted_count(key) for key in counts) and not is_predicted_count("emotion_weighted_f1")
    # Score corpora (MOSI): negative vs non-negative.
    score = predicted_class_counts({"sentiment_score": np.array([-1.0, 0.0, 2.0])},
                                   {"sentiment": np.array([1.0, 1.0, 1.0]), "sentiment_mask": np.ones(3)})
    assert score == {"sentiment_predicted_negative": 1.0, "sentiment_predicted_non-negative": 2.0}


def test_predicted_counts_count_each_row_once_by_the_head_that_scores_it():
    """Rows go to their own label set's head (route_emotion_rows), as compute_corpus_metrics routes them."""
    from mtaffect.metrics import compute_corpus_metrics, predicted_class_counts
    from mtaffect.tasks import label_space

    meld = label_space("emotion/meld")
    mask = np.tile(np.array(meld.union_mask(), dtype=bool), (3, 1))
    emotion = np.zeros((3, len(EMOTION_LABELS)))
    emotion[:, EMOTION_LABELS.index("neutral")] = 1
    labels = {"emotion": emotion, "emotion_mask": mask, "emotion_multilabel": np.zeros(3, dtype=bool)}
    head = np.zeros((3, len(meld.labels)))
    head[[0, 1, 2], [meld.labels.index("joy"), meld.labels.index("joy"), meld.labels.index("anger")]] = 5.0
    union = np.zeros((3, len(EMOTION_LABELS)))
    union[:, EMOTION_LABELS.index("surprise")] = 5.0  # the union head disagrees: it scores no MELD row
    outputs = {"emotion/meld": head, "emotion_logits": union}
    spaces = {"emotion/meld": meld.to_dict()}
    counts = predicted_class_counts(outputs, labels, label_spaces=spaces)
    assert counts == {f"emotion_predicted_{name}": {"joy": 2.0, "anger": 1.0}.get(name, 0.0) for name in meld.labels}
    scored = compute_corpus_metrics(outputs, labels, label_spaces=spaces, include_counts=True)
    assert scored["emotion_accuracy"] == 0.0  # scored by the MELD head (joy, joy, anger for neutral rows)
    assert {k: v for k, v in scored.items() if "predicted" in k} == counts


def test_counts_ride_along_only_when_asked():
    from mtaffect.metrics import compute_corpus_metrics, order_metrics

    outputs = {"sarcasm_logits": np.array([2.0, 3.0, -1.0, 1.0])}
    labels = {"sarcasm": np.array([1, 0, 0, 1]), "sarcasm_mask": np.ones(4)}
    plain = compute_corpus_metrics(outputs, labels)
    assert not any("predicted" in key for key in plain)
    counted = compute_corpus_metrics(outputs, labels, include_counts=True)
    assert counted["sarcasm_predicted_sarcastic"] == 3.0 and counted["sarcasm_predicted_not_sarcastic"] == 1.0
    assert {k: v for k, v in counted.items() if "predicted" not in k} == plain
    assert order_metrics(counted)[-3:] == ["sarcasm_predicted_not_sarcastic", "sarcasm_predicted_sarcastic",
                                           "primary_score"]
