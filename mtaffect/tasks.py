"""The task registry: which affect tasks exist, their label spaces and how they are scored.

Everything that needs to know "what is emotion / sentiment / sarcasm" (the schema, the
collator, the model's heads and losses, the metrics) reads it from here, so a corpus and a
model always agree on label order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

TaskName = Literal["emotion", "sentiment", "sarcasm"]

#: The union emotion label space shared by every corpus. IEMOCAP's 4 classes, MOSEI's 6
#: multi-label emotions and MELD's 7 classes are subsets of it; a per-label mask records
#: which labels a corpus actually annotated.
EMOTION_LABELS: tuple[str, ...] = (
    "anger",
    "disgust",
    "fear",
    "happiness",
    "sadness",
    "surprise",
    "neutral",
)

#: Sentiment is a score on the MOSI/MOSEI scale; class-labelled corpora (MELD) keep a class too.
SENTIMENT_RANGE: tuple[float, float] = (-3.0, 3.0)
SENTIMENT_CLASSES: tuple[str, ...] = ("negative", "neutral", "positive")
#: Score a class-only corpus (MELD) gets for each of its sentiment classes.
SENTIMENT_CLASS_SCORES: tuple[float, ...] = (-1.0, 0.0, 1.0)

#: Aliases used by the corpora for the union emotion names (MELD says "joy", IEMOCAP "hap"...).
EMOTION_ALIASES: dict[str, str] = {
    "angry": "anger",
    "ang": "anger",
    "anger": "anger",
    "disgust": "disgust",
    "dis": "disgust",
    "fear": "fear",
    "fea": "fear",
    "happy": "happiness",
    "hap": "happiness",
    "happiness": "happiness",
    "joy": "happiness",
    "sad": "sadness",
    "sadness": "sadness",
    "surprise": "surprise",
    "sur": "surprise",
    "neutral": "neutral",
    "neu": "neutral",
}


@dataclass(frozen=True)
class TaskSpec:
    """What a task predicts and how its loss and activation are chosen."""

    name: TaskName
    kind: Literal["multilabel_or_multiclass", "regression", "binary"]
    description: str


TASKS: dict[str, TaskSpec] = {
    "emotion": TaskSpec(
        "emotion",
        "multilabel_or_multiclass",
        "Emotion over the union label space: multi-label (BCE, MOSEI) or single-label (CE, IEMOCAP, MELD).",
    ),
    "sentiment": TaskSpec(
        "sentiment", "regression", "Sentiment score in [-3, 3] (MOSI/MOSEI scale), L1 loss."
    ),
    "sarcasm": TaskSpec("sarcasm", "binary", "Sarcastic or not (MUStARD), BCE loss."),
}

TASK_NAMES: tuple[str, ...] = tuple(TASKS)


def check_task(name: str) -> str:
    """Return ``name`` if it is a known task, else raise an error listing the known ones."""
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}: mtaffect knows {', '.join(TASK_NAMES)}.")
    return name


def normalize_emotion(label: str) -> str:
    """Map a corpus' emotion spelling (``joy``, ``hap``, ``Angry``) onto the union label space."""
    key = label.strip().lower()
    if key not in EMOTION_ALIASES:
        raise ValueError(
            f"Unknown emotion label {label!r}: expected one of {sorted(set(EMOTION_ALIASES))}."
        )
    return EMOTION_ALIASES[key]


def emotion_index(label: str) -> int:
    """Position of an emotion (any accepted spelling) in ``EMOTION_LABELS``."""
    return EMOTION_LABELS.index(normalize_emotion(label))


def emotion_label_mask(labels: tuple[str, ...] | list[str]) -> list[bool]:
    """Per-label mask over the union space for a corpus that annotates ``labels``."""
    wanted = {normalize_emotion(label) for label in labels}
    return [name in wanted for name in EMOTION_LABELS]


def sentiment_score_to_class(scores: np.ndarray | float) -> np.ndarray:
    """Three-class view of sentiment scores: 0 negative, 1 neutral, 2 positive.

    Scores are clipped to [-1, 1] and rounded, so |s| <= 0.5 is neutral; class-only
    corpora (MELD) store -1/0/1, which round-trips exactly.
    """
    clipped = np.clip(np.asarray(scores, dtype=np.float64), -1.0, 1.0)
    return (np.round(clipped) + 1).astype(np.int64)


#: Gold columns of each task in the unified schema (what an ablation hides).
GOLD_COLUMNS: dict[str, tuple[str, ...]] = {
    "emotion": ("emotion", "emotion_mask", "emotion_multilabel"),
    "sentiment": ("sentiment", "sentiment_mask", "sentiment_class"),
    "sarcasm": ("sarcasm", "sarcasm_mask"),
}
#: Weak columns a teacher writes, per task.
WEAK_COLUMNS: dict[str, tuple[str, ...]] = {
    "emotion": ("emotion_weak", "emotion_weak_mask", "emotion_weak_multilabel", "emotion_weak_confidence"),
    "sentiment": ("sentiment_weak", "sentiment_weak_mask", "sentiment_weak_confidence"),
    "sarcasm": ("sarcasm_weak", "sarcasm_weak_mask", "sarcasm_weak_confidence"),
}
