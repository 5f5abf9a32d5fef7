"""The task registry: affect tasks, their label spaces, and the conversions between spaces.

Everything that needs to know "what is emotion / sentiment / sarcasm" (the schema, the
collator, the model's heads and losses, the metrics, weak labelling) reads it from here, so
a corpus and a model always agree on what an output means.

A **task** (emotion, sentiment, sarcasm) has several **label spaces**, and they are not
interchangeable:

* sentiment ``score``: a real number in [-3, 3] (MOSI/MOSEI intensity), L1 (or MSE) loss;
* sentiment ``polarity`` classes: 3 ordered classes (MELD: negative / neutral / positive),
  cross-entropy; ``polarity2`` / ``polarity5`` / ``polarity7`` are the 2-, 5- and 7-class
  views derived from scores by the thresholds below;
* emotion label sets, each with its own names (MELD says ``joy``, EmoryNLP ``Joyful``):
  ``meld`` (7), ``iemocap`` (4), ``mosei`` (6, multi-label), ``emorynlp`` (7, with its own
  ``Peaceful`` and ``Powerful``). Each label names a member of the union ``EMOTION_LABELS``,
  which is how sets are compared and converted;
* sarcasm ``binary``.

A corpus declares the space of each of its tasks (``CorpusInfo.label_spaces``); the model has
one head per (task, label space) (``MTAffectConfig.label_spaces``). A user adds a space as
data, without code: ``label_space({"task": "emotion", "name": "mine", "labels": [...]})`` or
the same mapping in a study config or a loader option.

Conversions between spaces are defined once, here, and used explicitly (weak labelling
converts a teacher's output into the labelled corpus' space only through them):

* score -> polarity: ``score_to_polarity`` by the space's thresholds (a score on a boundary
  goes to the class nearer 0);
* polarity -> score: ``polarity_to_score``, the expected score ``sum_k p_k * score_k``;
* emotion set -> emotion set: ``convert_emotion`` through the union names the two share
  (probability mass on labels the target lacks is dropped and the rest renormalised).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

TaskName = Literal["emotion", "sentiment", "sarcasm"]
SpaceKind = Literal["score", "classes", "multilabel", "binary"]

#: The union of every emotion label set's names: the interchange vector of the unified schema
#: (``emotion`` columns hold one value per union name) and what sets are converted through.
EMOTION_LABELS: tuple[str, ...] = (
    "anger",
    "disgust",
    "fear",
    "happiness",
    "sadness",
    "surprise",
    "neutral",
    "peaceful",
    "powerful",
)

#: Sentiment scores live on the MOSI/MOSEI scale.
SENTIMENT_RANGE: tuple[float, float] = (-3.0, 3.0)
#: Names of the 3 polarity classes (the ``polarity`` space), negative first.
SENTIMENT_CLASSES: tuple[str, ...] = ("negative", "neutral", "positive")
#: Expected score of each 3-class polarity class (``polarity_to_score``).
SENTIMENT_CLASS_SCORES: tuple[float, ...] = (-1.0, 0.0, 1.0)
#: Most classes a polarity space may have (the width of the weak polarity column).
MAX_POLARITY_CLASSES = 7

#: Spellings corpora use for the union names (MELD "joy", IEMOCAP "hap", EmoryNLP "Mad").
EMOTION_ALIASES: dict[str, str] = {
    "angry": "anger",
    "ang": "anger",
    "anger": "anger",
    "mad": "anger",
    "disgust": "disgust",
    "dis": "disgust",
    "fear": "fear",
    "fea": "fear",
    "scared": "fear",
    "happy": "happiness",
    "hap": "happiness",
    "happiness": "happiness",
    "joy": "happiness",
    "joyful": "happiness",
    "sad": "sadness",
    "sadness": "sadness",
    "surprise": "surprise",
    "sur": "surprise",
    "neutral": "neutral",
    "neu": "neutral",
    "peaceful": "peaceful",
    "powerful": "powerful",
}


@dataclass(frozen=True)
class TaskSpec:
    """A task and the label space it uses when a corpus does not say."""

    name: TaskName
    default_space: str
    description: str


TASKS: dict[str, TaskSpec] = {
    "emotion": TaskSpec("emotion", "union", "Emotion: one label set per corpus (single-label CE or multi-label BCE)."),
    "sentiment": TaskSpec("sentiment", "score", "Sentiment: a [-3, 3] score (L1) or polarity classes (CE)."),
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
    key = str(label).strip().lower()
    if key not in EMOTION_ALIASES:
        raise ValueError(
            f"Unknown emotion label {label!r}: expected one of {sorted(set(EMOTION_ALIASES))} "
            "(a label set with other names says which union name each label is: give it a 'union' list)."
        )
    return EMOTION_ALIASES[key]


def emotion_index(label: str) -> int:
    """Position of an emotion (any accepted spelling) in ``EMOTION_LABELS``."""
    return EMOTION_LABELS.index(normalize_emotion(label))


def emotion_label_mask(labels: tuple[str, ...] | list[str]) -> list[bool]:
    """Per-label mask over the union space for a corpus that annotates ``labels``."""
    wanted = {normalize_emotion(label) for label in labels}
    return [name in wanted for name in EMOTION_LABELS]


# --------------------------------------------------------------------------------------------
# Label spaces


_LOSSES: dict[str, tuple[str, ...]] = {
    "score": ("l1", "mse"),
    "classes": ("ce",),
    "multilabel": ("bce",),
    "binary": ("bce",),
}


@dataclass(frozen=True)
class LabelSpace:
    """One label space of a task: what a head predicts, with which loss, under which names.

    Args:
        task: ``emotion``, ``sentiment`` or ``sarcasm``.
        name: the space's name within the task (``score``, ``polarity``, ``meld``...); the
            head is called ``"<task>/<name>"`` (``key``).
        kind: ``score`` (one real number in ``score_range``), ``classes`` (single-label,
            softmax), ``multilabel`` (independent sigmoids) or ``binary`` (one sigmoid).
        labels: output names in the corpus' own spelling (``joy`` for MELD); empty for scores.
        union: emotion only: the union name (``EMOTION_LABELS``) of each label, which is how
            two emotion sets are compared and converted. Defaults to the alias of each label.
        scores: polarity only: the score each class stands for (polarity -> score).
        thresholds: polarity only: the ``K - 1`` increasing score boundaries (score -> polarity).
        loss: ``l1`` / ``mse`` for scores, ``ce`` for classes, ``bce`` otherwise.
        score_range: ``score`` only: the (low, high) range the head's output is squashed into.
        description: one line for model cards and ``mtaffect data describe``.
    """

    task: str
    name: str
    kind: str
    labels: tuple[str, ...] = ()
    union: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    thresholds: tuple[float, ...] = ()
    loss: str = ""
    score_range: tuple[float, float] = SENTIMENT_RANGE
    description: str = ""
    _extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_task(self.task)
        where = f"label space {self.task}/{self.name}"
        if not isinstance(self.name, str) or not self.name or "/" in self.name or "." in self.name:
            raise ValueError(f"{where}: the name must be a non-empty string without '/' or '.'.")
        if self.kind not in _LOSSES:
            raise ValueError(f"{where}: unknown kind {self.kind!r}; expected one of {', '.join(_LOSSES)}.")
        object.__setattr__(self, "labels", tuple(str(label) for label in self.labels))
        object.__setattr__(self, "loss", self.loss or _LOSSES[self.kind][0])
        if self.loss not in _LOSSES[self.kind]:
            raise ValueError(f"{where}: loss {self.loss!r} does not fit a {self.kind} space; use {_LOSSES[self.kind]}.")
        if self.kind == "score":
            if self.labels:
                raise ValueError(f"{where}: a score space has no labels.")
            low, high = (float(v) for v in self.score_range)
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(f"{where}: score_range must be finite with low < high, got {self.score_range!r}.")
            object.__setattr__(self, "score_range", (low, high))
            return
        if self.kind == "binary":
            object.__setattr__(self, "labels", self.labels or ("not " + self.task, self.task))
            if len(self.labels) != 2:
                raise ValueError(f"{where}: a binary space has exactly 2 labels (negative, positive).")
            return
        if len(self.labels) < 2 and self.kind == "classes" or not self.labels:
            raise ValueError(f"{where}: needs at least {2 if self.kind == 'classes' else 1} labels, got {list(self.labels)}.")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"{where}: labels must be distinct, got {list(self.labels)}.")
        if self.task == "emotion":
            union = tuple(self.union) or tuple(normalize_emotion(label) for label in self.labels)
            union = tuple(normalize_emotion(name) for name in union)
            if len(union) != len(self.labels) or len(set(union)) != len(union):
                raise ValueError(
                    f"{where}: 'union' must give one distinct union name ({', '.join(EMOTION_LABELS)}) per label; "
                    f"got {list(union)} for {list(self.labels)}."
                )
            object.__setattr__(self, "union", union)
        if self.task == "sentiment":
            if self.kind != "classes":
                raise ValueError(f"{where}: sentiment spaces are 'score' or 'classes' (polarity).")
            k = len(self.labels)
            if k > MAX_POLARITY_CLASSES:
                raise ValueError(f"{where}: at most {MAX_POLARITY_CLASSES} polarity classes, got {k}.")
            scores = tuple(float(s) for s in self.scores)
            thresholds = tuple(float(t) for t in self.thresholds)
            if len(scores) != k or len(thresholds) != k - 1:
                raise ValueError(
                    f"{where}: a {k}-class polarity space needs {k} scores (one per class) and {k - 1} thresholds."
                )
            if any(b <= a for a, b in zip(scores, scores[1:])) or any(b <= a for a, b in zip(thresholds, thresholds[1:])):
                raise ValueError(f"{where}: scores and thresholds must increase (classes run negative -> positive).")
            object.__setattr__(self, "scores", scores)
            object.__setattr__(self, "thresholds", thresholds)

    @property
    def key(self) -> str:
        """The head's name, ``"<task>/<name>"`` (e.g. ``"sentiment/polarity"``)."""
        return f"{self.task}/{self.name}"

    @property
    def num_outputs(self) -> int:
        """Width of the head: 1 for a score or binary space, else one logit per label."""
        return 1 if self.kind in ("score", "binary") else len(self.labels)

    def union_mask(self) -> list[bool]:
        """Emotion only: which union names this set annotates (how rows are routed to its head)."""
        return [name in self.union for name in EMOTION_LABELS]

    def union_index(self) -> list[int]:
        """Emotion only: position in ``EMOTION_LABELS`` of each of this set's labels."""
        return [EMOTION_LABELS.index(name) for name in self.union]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (what a config stores, so a checkpoint says what it predicts)."""
        payload: dict[str, Any] = {"task": self.task, "name": self.name, "kind": self.kind, "loss": self.loss}
        if self.labels:
            payload["labels"] = list(self.labels)
        if self.union:
            payload["union"] = list(self.union)
        if self.scores:
            payload["scores"] = list(self.scores)
            payload["thresholds"] = list(self.thresholds)
        if self.kind == "score":
            payload["score_range"] = list(self.score_range)
        if self.description:
            payload["description"] = self.description
        return payload

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> LabelSpace:
        """Inverse of ``to_dict``; an unknown key is an error naming the known ones."""
        known = {"task", "name", "kind", "labels", "union", "scores", "thresholds", "loss", "score_range", "description"}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(f"Unknown label-space field(s) {unknown}; a label space has {sorted(known)}.")
        missing = [key for key in ("task", "name") if key not in payload]
        if missing:
            raise ValueError(f"A label space needs {missing} (got {dict(payload)!r}).")
        values = dict(payload)
        if "kind" not in values:
            values["kind"] = _default_kind(values)
        for key in ("labels", "union", "scores", "thresholds", "score_range"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def _default_kind(values: Mapping[str, Any]) -> str:
    if values["task"] == "sarcasm":
        return "binary"
    if values["task"] == "sentiment" and not values.get("labels"):
        return "score"
    return "classes"


def _polarity(name: str, labels: Sequence[str], scores: Sequence[float], thresholds: Sequence[float], text: str) -> LabelSpace:
    return LabelSpace("sentiment", name, "classes", tuple(labels), scores=tuple(scores), thresholds=tuple(thresholds), description=text)


#: The built-in label spaces, by key. ``register_label_space`` adds one.
LABEL_SPACES: dict[str, LabelSpace] = {}


def register_label_space(space: LabelSpace | Mapping[str, Any], replace: bool = False) -> LabelSpace:
    """Add a label space to the registry (so corpora and configs can name it by key)."""
    space = space if isinstance(space, LabelSpace) else LabelSpace.from_dict(space)
    existing = LABEL_SPACES.get(space.key)
    if existing is not None and existing != space and not replace:
        raise ValueError(
            f"Label space {space.key!r} already exists with other labels ({list(existing.labels)}); "
            "give yours another name."
        )
    LABEL_SPACES[space.key] = space
    return space


for _space in (
    LabelSpace("sentiment", "score", "score", loss="l1", description="Sentiment intensity in [-3, 3] (MOSI/MOSEI)."),
    _polarity(
        "polarity", SENTIMENT_CLASSES, SENTIMENT_CLASS_SCORES, (-0.5, 0.5),
        "3-class polarity (MELD); from a score: < -0.5 negative, > 0.5 positive, else neutral.",
    ),
    _polarity(
        "polarity2", ("negative", "non-negative"), (-1.0, 1.0), (0.0,),
        "2-class polarity; from a score: < 0 negative, else non-negative (MMSA's Has0 view).",
    ),
    _polarity(
        "polarity5",
        ("strongly negative", "negative", "neutral", "positive", "strongly positive"),
        (-2.0, -1.0, 0.0, 1.0, 2.0), (-1.5, -0.5, 0.5, 1.5),
        "5-class polarity; from a score: the nearest integer of the score clipped to [-2, 2].",
    ),
    _polarity(
        "polarity7",
        ("highly negative", "negative", "weakly negative", "neutral", "weakly positive", "positive", "highly positive"),
        (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0), (-2.5, -1.5, -0.5, 0.5, 1.5, 2.5),
        "7-class polarity (MOSI's names); from a score: the nearest integer in [-3, 3].",
    ),
    LabelSpace("emotion", "union", "classes", EMOTION_LABELS, description="The union of every emotion set."),
    LabelSpace(
        "emotion", "meld", "classes", ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"),
        description="MELD's 7 single-label emotions.",
    ),
    LabelSpace("emotion", "iemocap", "classes", ("neutral", "happy", "sad", "angry"), description="IEMOCAP's 4 emotions."),
    LabelSpace(
        "emotion", "mosei", "multilabel", ("happy", "sad", "anger", "surprise", "disgust", "fear"),
        description="CMU-MOSEI's 6 emotions, multi-label (present where the intensity is > 0).",
    ),
    LabelSpace(
        "emotion", "emorynlp", "classes", ("Joyful", "Mad", "Neutral", "Peaceful", "Powerful", "Sad", "Scared"),
        description="EmoryNLP's 7 single-label emotions (Willcox's feeling wheel), with Peaceful and Powerful.",
    ),
    LabelSpace("sarcasm", "binary", "binary", ("not sarcastic", "sarcastic"), description="Sarcastic or not (MUStARD)."),
):
    register_label_space(_space)


def label_space(spec: str | LabelSpace | Mapping[str, Any], task: str | None = None) -> LabelSpace:
    """Resolve a label space from a key (``"emotion/meld"``), a name within ``task`` or a mapping.

    A mapping is a space a user brings (a loader option, a study config, a model config):
    it is built as it is, registered if its key is new, and must agree with a registered
    space of the same key.

    Examples:
        >>> label_space("polarity", task="sentiment").labels
        ('negative', 'neutral', 'positive')
        >>> label_space({"task": "emotion", "name": "tiny", "labels": ["glad", "cross"], "union": ["joy", "anger"]}).union
        ('happiness', 'anger')
    """
    if isinstance(spec, LabelSpace):
        return spec
    if isinstance(spec, Mapping):
        values = dict(spec)
        if task is not None:
            values.setdefault("task", task)
        space = LabelSpace.from_dict(values)
        registered = LABEL_SPACES.get(space.key)
        if registered is None:
            return register_label_space(space)
        if registered.to_dict() != space.to_dict() and {k: v for k, v in space.to_dict().items() if k != "description"} != {
            k: v for k, v in registered.to_dict().items() if k != "description"
        }:
            raise ValueError(
                f"Label space {space.key!r} is defined twice with different contents: {registered.to_dict()} "
                f"and {space.to_dict()}; give one of them another name."
            )
        return registered
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"A label space is a key like 'sentiment/polarity' or a mapping, got {spec!r}.")
    key = spec if "/" in spec else f"{task}/{spec}" if task else spec
    if key not in LABEL_SPACES:
        options = sorted(k for k in LABEL_SPACES if task is None or k.startswith(task + "/"))
        raise ValueError(f"Unknown label space {spec!r}: known ones are {options} (or define one as a mapping).")
    space = LABEL_SPACES[key]
    if task is not None and space.task != task:
        raise ValueError(f"Label space {key!r} belongs to task {space.task!r}, not {task!r}.")
    return space


def default_space(task: str) -> LabelSpace:
    """The space a task uses when a corpus does not say (score sentiment, union emotion, binary sarcasm)."""
    return label_space(TASKS[check_task(task)].default_space, task)


def emotion_space_for_mask(mask: Sequence[bool], candidates: Sequence[LabelSpace] | None = None) -> LabelSpace:
    """The emotion space whose labels are exactly the union names ``mask`` switches on.

    Rows carry their corpus' label set as the mask over the union: this is how a row finds
    its head. Among ``candidates`` (default: every registered emotion space), an exact match
    wins, else the smallest set covering the mask (weak labels converted from another set
    cover only the names the two share).
    """
    wanted = {name for name, on in zip(EMOTION_LABELS, mask) if on}
    spaces = [s for s in (candidates if candidates is not None else LABEL_SPACES.values()) if s.task == "emotion"]
    exact = [s for s in spaces if set(s.union) == wanted]
    if exact:
        return exact[0]
    covering = sorted((s for s in spaces if wanted <= set(s.union)), key=lambda s: len(s.union))
    if not covering or not wanted:
        raise ValueError(
            f"No emotion label space covers the labels {sorted(wanted)}: known sets are "
            f"{[s.key for s in spaces]}; declare the corpus' set (CorpusInfo.label_spaces)."
        )
    return covering[0]


# --------------------------------------------------------------------------------------------
# Conversions between label spaces (the only place they are defined)


def score_to_polarity(scores: np.ndarray | float, space: str | LabelSpace = "polarity") -> np.ndarray:
    """Class index of each score in a polarity space, by its thresholds.

    A score exactly on a boundary goes to the class nearer 0 (so 0.5 is neutral in the
    3-class view, 0 is non-negative in the 2-class one).

    Examples:
        >>> score_to_polarity(np.array([-2.0, -0.5, 0.2, 0.6])).tolist()
        [0, 1, 1, 2]
        >>> score_to_polarity(np.array([-3.0, 0.0, 2.6]), "polarity7").tolist()
        [0, 3, 6]
    """
    space = label_space(space, "sentiment")
    if space.kind != "classes":
        raise ValueError(f"score_to_polarity needs a polarity space, got {space.key!r}.")
    values = np.asarray(scores, dtype=np.float64)
    thresholds = np.asarray(space.thresholds)
    # Boundaries at or below 0 put ties in the upper class, those above 0 in the lower one.
    upper = np.searchsorted(thresholds, values, side="right")
    lower = np.searchsorted(thresholds, values, side="left")
    on_positive_side = values > 0
    return np.where(on_positive_side, lower, upper).astype(np.int64)


def polarity_to_score(probabilities: np.ndarray, space: str | LabelSpace = "polarity") -> np.ndarray:
    """Expected score of class probabilities ``[N, K]`` (or class ids ``[N]``) of a polarity space.

    Examples:
        >>> polarity_to_score(np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])).tolist()
        [-0.5, 1.0]
    """
    space = label_space(space, "sentiment")
    scores = np.asarray(space.scores)
    values = np.asarray(probabilities)
    if values.ndim == 1:
        return scores[values.astype(np.int64)]
    if values.shape[-1] != len(scores):
        raise ValueError(f"{space.key} has {len(scores)} classes, the probabilities {values.shape[-1]} columns.")
    return values.astype(np.float64) @ scores


def convert_emotion(probabilities: np.ndarray, source: str | LabelSpace, target: str | LabelSpace) -> tuple[np.ndarray, np.ndarray]:
    """Emotion probabilities ``[N, |source|]`` -> ``([N, |target|], known [|target|])`` via the union.

    Labels of the target that the source lacks are unknown (``known`` False, value 0); for a
    single-label source the mass on labels the target lacks is dropped and the rest
    renormalised (a row with no shared mass stays all 0). Raises when the sets share nothing.

    Examples:
        >>> probs, known = convert_emotion(np.array([[0.5, 0.1, 0.1, 0.1, 0.0, 0.1, 0.1]]), "emorynlp", "meld")
        >>> known.tolist(), probs.round(3).tolist()
        ([True, False, True, True, True, True, False], [[0.111, 0.0, 0.111, 0.556, 0.111, 0.111, 0.0]])
    """
    source, target = label_space(source, "emotion"), label_space(target, "emotion")
    values = np.asarray(probabilities, dtype=np.float64)
    position = {name: i for i, name in enumerate(source.union)}
    shared = [position.get(name) for name in target.union]
    known = np.array([i is not None for i in shared])
    if not known.any():
        raise ValueError(f"Emotion sets {source.key} and {target.key} share no label: nothing to convert.")
    out = np.zeros((values.shape[0], len(target.labels)))
    for j, i in enumerate(shared):
        if i is not None:
            out[:, j] = values[:, i]
    if source.kind == "classes":
        total = out.sum(axis=1, keepdims=True)
        out = np.divide(out, total, out=np.zeros_like(out), where=total > 0)
    return out, known


def sentiment_score_to_class(scores: np.ndarray | float) -> np.ndarray:
    """Three-class view of sentiment scores: 0 negative, 1 neutral, 2 positive (``score_to_polarity``)."""
    return score_to_polarity(scores, "polarity")


def spaces_from_info(label_spaces: Mapping[str, Any] | None) -> dict[str, LabelSpace]:
    """Task -> ``LabelSpace`` from a corpus' declaration (keys, names or mappings)."""
    return {task: label_space(spec, task) for task, spec in (label_spaces or {}).items()}


#: Gold columns of each task in the unified schema (what an ablation hides).
GOLD_COLUMNS: dict[str, tuple[str, ...]] = {
    "emotion": ("emotion", "emotion_mask", "emotion_multilabel"),
    "sentiment": ("sentiment", "sentiment_mask", "sentiment_class", "sentiment_num_classes"),
    "sarcasm": ("sarcasm", "sarcasm_mask"),
}
#: Weak columns a teacher writes, per task (a polarity teacher's classes go to ``sentiment_weak_probs``).
WEAK_COLUMNS: dict[str, tuple[str, ...]] = {
    "emotion": ("emotion_weak", "emotion_weak_mask", "emotion_weak_multilabel", "emotion_weak_confidence"),
    "sentiment": (
        "sentiment_weak",
        "sentiment_weak_mask",
        "sentiment_weak_confidence",
        "sentiment_weak_probs",
        "sentiment_weak_num_classes",
    ),
    "sarcasm": ("sarcasm_weak", "sarcasm_weak_mask", "sarcasm_weak_confidence"),
}
