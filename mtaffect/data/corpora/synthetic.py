"""The embedded default: a family of small synthetic corpora shaped like the real ones.

A fresh clone has no licensed corpus, so the study runs on corpora generated here. They
are shaped like MOSEI, IEMOCAP, MELD and MUStARD (label spaces, modalities, feature dims,
scaled-down sizes) and driven by **shared latent affect** per utterance:

* valence ``v`` and arousal ``a`` (continuous), which every label depends on;
* incongruity ``g`` (sarcasm): the words say the opposite of what prosody and face show.
  A sarcastic utterance is negative (``v < 0``) while its text carries ``-v``.

Each modality sees its own view of the latents (text: valence, flipped when sarcastic;
audio: arousal and some valence; visual: valence and some arousal) plus per-speaker
nuisance factors, pushed through a fixed random nonlinear "extractor" per feature set
(``tanh(u A) B``) and noise. Labels come from the latents with their own noise. Tasks
are therefore correlated the way real affect tasks are (sentiment and emotion share
valence; sarcasm is detected from a text/prosody disagreement in valence), and whether
multi-task learning helps is decided by this data, not by the training code.

Corpora that share a feature set (the CMU-style MOSEI/IEMOCAP/MELD look-alikes) share
the extractor maps, as real corpora processed by the same extractors do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from datasets import Dataset, DatasetDict

from mtaffect.data.schema import (
    CorpusInfo,
    build_features,
    set_corpus_info,
    unknown_labels,
)
from mtaffect.tasks import EMOTION_LABELS, SENTIMENT_CLASS_SCORES, emotion_label_mask, label_space

#: Dims of the CMU-SDK features (GloVe 300 / COVAREP 74 / Facet 35) that MOSEI, MOSI and IEMOCAP share.
CMU_DIMS = {"text": 300, "audio": 74, "visual": 35}
#: MUStARD's published features (BERT 768 / librosa 283 / ResNet-152 2048), before scaling.
MUSTARD_DIMS = {"text": 768, "audio": 283, "visual": 2048}

MOSEI_EMOTIONS = ("happiness", "sadness", "anger", "surprise", "disgust", "fear")
IEMOCAP_EMOTIONS = ("neutral", "happiness", "sadness", "anger")
MELD_EMOTIONS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")

_LATENT_VIEW = 2  # (valence, arousal) as seen by a modality
_NUISANCE = 3  # speaker / recording factors the extractor also sees
_HIDDEN = 32


@dataclass(frozen=True)
class SyntheticCorpusSpec:
    """Shape of one synthetic corpus: sizes, modalities and the tasks it has gold labels for."""

    name: str
    sizes: tuple[int, int, int]
    modalities: tuple[str, ...]
    tasks: tuple[str, ...]
    sarcasm_rate: float


SPECS: dict[str, SyntheticCorpusSpec] = {
    "synthetic_mosei": SyntheticCorpusSpec(
        "synthetic_mosei", (640, 160, 240), ("text", "audio", "visual"), ("sentiment", "emotion"), 0.1
    ),
    "synthetic_iemocap": SyntheticCorpusSpec(
        "synthetic_iemocap", (400, 100, 160), ("text", "audio", "visual"), ("emotion",), 0.1
    ),
    "synthetic_meld": SyntheticCorpusSpec(
        "synthetic_meld", (480, 120, 200), ("text", "audio"), ("emotion", "sentiment"), 0.1
    ),
    "synthetic_mustard": SyntheticCorpusSpec(
        "synthetic_mustard", (320, 80, 120), ("text", "audio", "visual"), ("sarcasm",), 0.5
    ),
}


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _extractor(feature_set: str, modality: str, dim: int, map_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed random nonlinear map of a feature set's modality: same for every corpus using it."""
    rng = np.random.default_rng(_stable_seed("extractor", feature_set, modality, map_seed))
    first = rng.normal(0.0, 1.0, (_LATENT_VIEW + _NUISANCE, _HIDDEN)).astype(np.float32)
    second = rng.normal(0.0, 1.0 / np.sqrt(_HIDDEN), (_HIDDEN, dim)).astype(np.float32)
    return first, second


def corpus_dims(name: str, shared_features: bool = True, feature_scale: float = 0.125) -> tuple[str, dict[str, int]]:
    """Feature-set name and dims of a synthetic corpus.

    With ``shared_features`` every corpus uses the CMU-style dims, as when a user runs the
    same extractors on all corpora (needed for a teacher to label another corpus). Without
    it the MUStARD look-alike keeps its own dims, ``MUSTARD_DIMS`` scaled by ``feature_scale``.
    """
    spec = SPECS[name]
    if name == "synthetic_mustard" and not shared_features:
        dims = {m: max(4, int(round(MUSTARD_DIMS[m] * feature_scale))) for m in spec.modalities}
        return "synthetic-mustard", dims
    return "synthetic-cmu", {m: CMU_DIMS[m] for m in spec.modalities}


def make_synthetic_corpus(
    name: str,
    seed: int = 0,
    size_scale: float = 1.0,
    noise: float = 1.0,
    shared_features: bool = True,
    feature_scale: float = 0.125,
    min_length: int = 6,
    max_length: int = 16,
    map_seed: int = 0,
) -> DatasetDict:
    """Generate one synthetic corpus (train/validation/test) in the unified schema.

    Args:
        name: one of ``SPECS`` (``synthetic_mosei``, ``synthetic_iemocap``,
            ``synthetic_meld``, ``synthetic_mustard``).
        seed: data seed; the same seed gives the same corpus byte for byte.
        size_scale: multiplies every split size.
        noise: multiplies the observation and label noise (difficulty).
        shared_features: see ``corpus_dims``.
        feature_scale: scales MUStARD's native dims when ``shared_features`` is off.
        min_length: shortest sequence (frames / tokens).
        max_length: longest sequence.
        map_seed: seed of the fixed "extractor" maps (the feature set's identity).

    Examples:
        >>> corpus = make_synthetic_corpus("synthetic_iemocap", size_scale=0.05)
        >>> corpus["train"].num_rows, corpus["train"].features["audio_features"].shape
        (20, (None, 74))
    """
    if name not in SPECS:
        raise ValueError(f"Unknown synthetic corpus {name!r}: expected one of {sorted(SPECS)}.")
    if size_scale <= 0 or noise < 0 or not 1 <= min_length <= max_length:
        raise ValueError("size_scale must be > 0, noise >= 0 and 1 <= min_length <= max_length.")
    spec = SPECS[name]
    feature_set, dims = corpus_dims(name, shared_features, feature_scale)
    features = build_features(dims)
    splits = {}
    for split_index, split in enumerate(("train", "validation", "test")):
        n = max(4, int(round(spec.sizes[split_index] * size_scale)))
        rng = np.random.default_rng(_stable_seed("data", name, seed, split))
        rows = _generate_rows(spec, rng, n, feature_set, dims, noise, min_length, max_length, map_seed)
        rows["id"] = [f"{name}_{split}_{i:05d}" for i in range(n)]
        splits[split] = Dataset.from_dict(rows, features=features, split=split)
    corpus = DatasetDict(splits)
    set_corpus_info(
        corpus,
        CorpusInfo(
            corpus=name,
            feature_set=feature_set,
            dims=dims,
            tasks=list(spec.tasks),
            emotion_labels=list(label_space(SYNTHETIC_SPACES[name]["emotion"]).labels) if "emotion" in spec.tasks else [],
            label_spaces={task: SYNTHETIC_SPACES[name][task] for task in spec.tasks},
            extractors={m: f"synthetic:{feature_set}:{m}" for m in dims},
            notes={"seed": seed, "size_scale": size_scale, "noise": noise, "map_seed": map_seed},
        ),
    )
    return corpus


def make_synthetic_family(
    seed: int = 0,
    corpora: tuple[str, ...] | list[str] | None = None,
    **kwargs: object,
) -> dict[str, DatasetDict]:
    """All synthetic corpora (or the named ones) for one data seed: the study's default input."""
    names = list(corpora) if corpora else list(SPECS)
    return {name: make_synthetic_corpus(name, seed=seed, **kwargs) for name in names}


#: The label space of each synthetic corpus' tasks (those of the real corpus it is shaped like).
SYNTHETIC_SPACES: dict[str, dict[str, str]] = {
    "synthetic_mosei": {"sentiment": "sentiment/score", "emotion": "emotion/mosei"},
    "synthetic_iemocap": {"emotion": "emotion/iemocap"},
    "synthetic_meld": {"emotion": "emotion/meld", "sentiment": "sentiment/polarity"},
    "synthetic_mustard": {"sarcasm": "sarcasm/binary"},
}


def _emotion_space(name: str) -> tuple[str, ...]:
    return {
        "synthetic_mosei": MOSEI_EMOTIONS,
        "synthetic_iemocap": IEMOCAP_EMOTIONS,
        "synthetic_meld": MELD_EMOTIONS,
    }.get(name, ())


def _generate_rows(
    spec: SyntheticCorpusSpec,
    rng: np.random.Generator,
    n: int,
    feature_set: str,
    dims: dict[str, int],
    noise: float,
    min_length: int,
    max_length: int,
    map_seed: int,
) -> dict[str, list]:
    # Utterance-level latents. About a third of utterances are (near) neutral.
    neutral = rng.random(n) < 0.3
    valence = rng.normal(0.0, 1.0, n) * np.where(neutral, 0.25, 1.0)
    arousal = rng.normal(0.0, 1.0, n) * np.where(neutral, 0.4, 1.0)
    sarcastic = rng.random(n) < spec.sarcasm_rate
    valence = np.where(sarcastic, -np.abs(valence) - 0.5, valence)
    text_valence = np.where(sarcastic, -valence, valence)
    speakers = rng.integers(0, 12, n)
    speaker_style = rng.normal(0.0, 1.0, (12, _NUISANCE))

    views = {
        "text": np.stack([text_valence, 0.3 * arousal], 1),
        "audio": np.stack([0.6 * valence, arousal], 1),
        "visual": np.stack([valence, 0.5 * arousal], 1),
    }
    lengths = rng.integers(min_length, max_length + 1, n)
    rows: dict[str, list] = {
        "id": [""] * n,
        "source": [spec.name] * n,
        "feature_set": [feature_set] * n,
        "text": [""] * n,
        "speaker": [f"speaker_{s}" for s in speakers],
    }
    for modality, dim in dims.items():
        first, second = _extractor(feature_set, modality, dim, map_seed)
        steps = int(lengths.max())
        # Frame-level signal: the utterance latent under a random envelope plus AR(1)-ish drift.
        envelope = 0.6 + 0.4 * rng.random((n, steps, 1))
        drift = np.cumsum(rng.normal(0.0, 0.15 * noise, (n, steps, _LATENT_VIEW)), axis=1)
        signal = views[modality][:, None, :] * envelope + drift
        nuisance = speaker_style[speakers][:, None, :] + rng.normal(0.0, 0.3, (n, steps, _NUISANCE))
        latent = np.concatenate([signal, nuisance], axis=2).astype(np.float32)
        values = np.tanh(latent @ first) @ second
        values += rng.normal(0.0, 0.5 * noise, values.shape)
        values = values.astype(np.float32)
        rows[f"{modality}_features"] = [values[i, : lengths[i]] for i in range(n)]

    labels = [unknown_labels() for _ in range(n)]
    label_noise = lambda scale: rng.normal(0.0, scale * noise, n)  # noqa: E731
    if "sentiment" in spec.tasks and spec.name != "synthetic_meld":
        score = np.clip(1.4 * valence + label_noise(0.35), -3.0, 3.0)
        score = np.round(score * 3.0) / 3.0  # averages of three annotators' integers
        for row, s in zip(labels, score):
            row.update(sentiment=float(s), sentiment_mask=True)
    if spec.name == "synthetic_mosei":
        intensity = {
            "happiness": 1.2 * valence + 0.3 * arousal - 0.1,
            "sadness": -1.0 * valence - 0.6 * arousal - 0.9,
            "anger": -0.8 * valence + 0.9 * arousal - 1.0,
            "surprise": 0.9 * arousal + 0.2 * valence - 1.2,
            "disgust": -0.9 * valence - 1.2,
            "fear": -0.5 * valence + 0.5 * arousal - 1.4,
        }
        mask = emotion_label_mask(MOSEI_EMOTIONS)
        present = {k: v + label_noise(0.5) > 0 for k, v in intensity.items()}
        for i, row in enumerate(labels):
            vector = [float(present[name][i]) if name in present else 0.0 for name in EMOTION_LABELS]
            row.update(emotion=vector, emotion_mask=list(mask), emotion_multilabel=True)
    if spec.name in ("synthetic_iemocap", "synthetic_meld"):
        space = _emotion_space(spec.name)
        scores = {
            "neutral": 0.9 - 1.0 * np.abs(valence) - 0.5 * np.abs(arousal) + (0.4 if spec.name == "synthetic_meld" else 0.0),
            "happiness": 1.2 * valence + 0.2 * arousal,
            "sadness": -1.0 * valence - 0.7 * arousal,
            "anger": -0.8 * valence + 0.9 * arousal,
            "surprise": 0.9 * arousal - 0.6,
            "disgust": -0.9 * valence - 0.3 * arousal - 0.7,
            "fear": -0.5 * valence + 0.6 * arousal - 0.9,
        }
        stacked = np.stack([scores[name] + rng.gumbel(0.0, 0.35 * noise + 1e-6, n) for name in space], 1)
        chosen = stacked.argmax(1)
        mask = emotion_label_mask(space)
        for i, row in enumerate(labels):
            vector = [1.0 if name == space[chosen[i]] else 0.0 for name in EMOTION_LABELS]
            row.update(emotion=vector, emotion_mask=list(mask), emotion_multilabel=False)
    if spec.name == "synthetic_meld":
        perceived = valence + label_noise(0.3)
        classes = np.where(perceived < -0.4, 0, np.where(perceived > 0.4, 2, 1))
        for row, c in zip(labels, classes):
            row.update(
                sentiment=SENTIMENT_CLASS_SCORES[c], sentiment_mask=True, sentiment_class=int(c), sentiment_num_classes=3
            )
    if "sarcasm" in spec.tasks:
        for row, g in zip(labels, sarcastic):
            row.update(sarcasm=float(g), sarcasm_mask=True)
    for key in labels[0]:
        rows[key] = [row[key] for row in labels]
    return rows
