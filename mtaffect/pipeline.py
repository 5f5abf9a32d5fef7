"""The ``"multimodal-affect"`` pipeline: labelled affect predictions for one utterance at a time.

Importing this module registers ``MultimodalAffectPipeline`` with transformers'
pipeline registry, so a checkpoint loads by Hub id or path:

    import mtaffect.pipeline  # registers the task
    from transformers import pipeline

    classifier = pipeline("multimodal-affect", model="user/mtaffect-model")

    # precomputed features of one utterance ([T, D] per modality) ...
    classifier({"text_features": text_array, "audio_features": audio_array})
    # ... or raw media, through the extractors the model was trained with
    classifier("Oh, great. Just what I needed.")
    classifier({"text": "Oh, great.", "audio": "clip.wav", "video": "clip.mp4"})

Each call returns what ``MTAffectForMultiTaskAffect.predict`` gives for one example:
``{"emotion": {"label", "labels", "scores"}, "sentiment": {"score", "label"},
"sarcasm": {"score", "label"}}`` (the enabled tasks only); a list of inputs gives a list.

A model with pretrained encoders (``config.pretrained_encoders``) reads those modalities from
raw inputs itself: the transcript is tokenized and the audio (a path or a 1-D array at the
encoder's rate) loaded and resampled with the encoder's own processor (``model.processors``,
saved in the checkpoint), so no extractor is involved; features of its other modalities
can be given beside them, e.g. ``{"text": "Oh, great.", "audio_features": egemaps}``.

Conversational context (a model trained with ``config.context``): give the turns before the
utterance, oldest first, and optionally the utterance's own speaker (for the same-speaker
marker): ``classifier({"text": "Oh, great.", "speaker": "Chandler", "context": [{"speaker":
"Ross", "text": "I got us tickets."}, ...]})``. A text encoder reads them as ``speaker: text``
before the utterance; a feature model extracts each turn's text features (or takes a turn's
``text_features``) and pools them, one frame per turn. A model without context ignores them.

Other raw inputs need extractor descriptions: the ``extractors=`` argument (modality ->
``Extractor`` or its ``describe()`` dict), else ``model.config.feature_extractors``
(feature set -> modality -> description, recorded from the training corpora's
``CorpusInfo.extractors`` by ``mtaffect.modelcard.record_training_corpora``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from transformers import AutoModel, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from mtaffect.data.extract import build_extractors, extract_utterance, feature_set_name

logger = logging.getLogger(__name__)

TASK = "multimodal-affect"
MODALITIES: tuple[str, ...] = ("text", "audio", "visual")
#: Keys of a raw-media input dict, and the modality each one feeds.
RAW_KEYS: dict[str, str] = {"text": "text", "audio": "audio", "video": "visual"}


class MultimodalAffectPipeline(Pipeline):
    """Emotion, sentiment and sarcasm predictions from features or raw media (see the module doc).

    Args (at construction or per call):
        feature_set: `str`. The feature set of precomputed features; inferred
            when the model has one feature set, or from the feature dims.
        extractors: `dict`, construction only. Modality -> ``Extractor`` or
            description, used for raw inputs instead of the ones the config records.
        heads: `list[str]`. Restrict the predictions to these heads (names such as
            `"emotion/meld"` or task names); each head answers in its own label names
            (`config.label_spaces`), e.g. MELD's `joy`.
        threshold: `float`, defaults to `0.5`. Probability threshold for multi-label emotion
            and sarcasm labels.
    """

    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args: Any, extractors: Mapping[str, Any] | Sequence[Any] | None = None, **kwargs: Any):
        self._given_extractors = extractors
        self._built_extractors: dict[str, Any] = {}
        super().__init__(*args, **kwargs)

    def _sanitize_parameters(
        self,
        feature_set: str | None = None,
        heads: Sequence[str] | None = None,
        threshold: float | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        if kwargs:
            raise TypeError(
                f"Unknown argument(s) {sorted(kwargs)} for the {TASK!r} pipeline: it takes feature_set, "
                "heads, threshold (and extractors when built)."
            )
        preprocess = {"feature_set": feature_set} if feature_set is not None else {}
        forward: dict[str, Any] = {}
        if heads is not None:
            forward["heads"] = [heads] if isinstance(heads, str) else list(heads)
        if threshold is not None:
            if not 0.0 <= float(threshold) <= 1.0:
                raise ValueError(f"threshold must be a probability in [0, 1], got {threshold!r}.")
            forward["threshold"] = float(threshold)
        return preprocess, forward, {}

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        if batch_size != 1:
            raise ValueError(
                f"The {TASK!r} pipeline runs one utterance at a time (batch_size=1, got {batch_size}); for "
                "batched inference collate rows with mtaffect.data.collator.MTAffectCollator and call "
                "model.predict(batch)."
            )
        return super().get_iterator(inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params)

    # -- preprocessing ----------------------------------------------------------------------
    def preprocess(self, inputs: Any, feature_set: str | None = None) -> dict[str, Any]:
        if isinstance(inputs, str):
            inputs = {"text": inputs}
        if not isinstance(inputs, Mapping):
            raise TypeError(
                f"The {TASK!r} pipeline takes a transcript (str), a dict of precomputed features "
                "({'text_features': [T, D] array, ...}) or a dict of raw media ({'text': str, 'audio': path, "
                f"'video': path}}); got {type(inputs).__name__}."
            )
        feature_set = inputs.get("feature_set", feature_set)
        given = {m: inputs[f"{m}_features"] for m in MODALITIES if inputs.get(f"{m}_features") is not None}
        raw = {key: inputs[key] for key in RAW_KEYS if inputs.get(key) is not None}
        turns = _context_turns(inputs.get("context"))
        speaker = str(inputs.get("speaker") or "")
        unknown = sorted(
            set(inputs) - {f"{m}_features" for m in MODALITIES} - set(RAW_KEYS) - {"feature_set", "context", "speaker"}
        )
        if unknown:
            raise ValueError(
                f"Unknown input key(s) {unknown}: expected text_features/audio_features/visual_features "
                "(precomputed) or text/audio/video (raw media), plus an optional feature_set, and context "
                "(the preceding turns, [{'speaker': ..., 'text': ...}, ...]) with the utterance's speaker."
            )
        encoders = getattr(self.model.config, "pretrained_encoders", None) or {}
        encoded = {key: value for key, value in raw.items() if RAW_KEYS[key] in encoders}
        raw = {key: value for key, value in raw.items() if key not in encoded}
        if given and raw:
            raise ValueError("Give either precomputed features or raw media (text/audio/video), not both.")
        batch: dict[str, Any] = {"feature_set": feature_set}
        if encoded:
            batch.update(self._encoder_inputs(encoded, turns))
        if raw:
            features, feature_set = self._extract(raw, feature_set)
        elif given:
            features = {m: _as_sequence(value, f"{m}_features") for m, value in given.items()}
            feature_set = self._resolve_feature_set(features, feature_set)
        elif encoded:
            return batch
        else:
            raise ValueError("The input holds no features and no raw media.")
        expected = self.model.config.feature_sets[feature_set]
        batch["feature_set"] = feature_set
        for modality, array in features.items():
            if modality not in expected:
                raise ValueError(
                    f"Feature set {feature_set!r} has no {modality} modality (it has {sorted(expected)}); drop "
                    f"{modality}_features or pick another feature_set."
                )
            if array.shape[1] != expected[modality]:
                raise ValueError(
                    f"{modality}_features has dim {array.shape[1]}, but feature set {feature_set!r} expects "
                    f"{expected[modality]}: these features come from another extractor."
                )
            tensor = torch.from_numpy(array).unsqueeze(0)
            batch[f"{modality}_features"] = tensor
            batch[f"{modality}_mask"] = torch.ones(tensor.shape[:2], dtype=torch.bool)
        if turns and "text" in getattr(self.model.config, "context_modalities", []) and "text" in expected:
            batch.update(self._context_features(turns, speaker, feature_set, expected["text"]))
        return batch

    def _context_features(
        self, turns: list[dict[str, Any]], speaker: str, feature_set: str, dim: int
    ) -> dict[str, torch.Tensor]:
        """The preceding turns as the model's context inputs: one pooled text frame per turn, oldest first."""
        from mtaffect.data.context import pooled, same_speaker

        frames = []
        for index, turn in enumerate(turns):
            if turn.get("text_features") is not None:
                array = _as_sequence(turn["text_features"], f"context[{index}]['text_features']")
            else:
                _, extractors = self._extractor_specs(feature_set)
                if "text" not in extractors:
                    raise ValueError(
                        f"context[{index}] has text only, and the model records no text extractor for feature set "
                        f"{feature_set!r}: give each turn's 'text_features' or pass extractors=... to the pipeline."
                    )
                features = extract_utterance(turn.get("text", ""), extractors={"text": extractors["text"]}, missing="skip")
                array = _as_sequence(features["text"], f"context[{index}] text features")
            if array.shape[1] != dim:
                raise ValueError(f"context[{index}] features have dim {array.shape[1]}, feature set {feature_set!r} expects {dim}.")
            frames.append(pooled(array, dim))
        count = len(frames)
        return {
            "context_text_features": torch.from_numpy(np.concatenate(frames)).unsqueeze(0),
            "context_text_mask": torch.ones(1, count, dtype=torch.bool),
            "context_position": torch.arange(-count, 0).unsqueeze(0),
            "context_same_speaker": torch.tensor([[same_speaker(t.get("speaker", ""), speaker) for t in turns]]),
        }

    def _encoder_inputs(self, raw: Mapping[str, Any], turns: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
        """Token ids / waveforms of one utterance (after its context turns) for the model's pretrained encoders."""
        from mtaffect.data.raw_inputs import EncoderInputCollator

        collator = EncoderInputCollator.for_model(self.model, base=lambda rows: {})
        collator.processors = {m: p for m, p in collator.processors.items() if m in {RAW_KEYS[k] for k in raw}}
        row: dict[str, Any] = {"id": "input", **raw}
        if turns:
            row.update({
                "context_text": [str(t.get("text", "")) for t in turns],
                "context_speaker": [str(t.get("speaker", "")) for t in turns],
                "context_position": list(range(-len(turns), 0)),
            })
        return collator([row])

    def _resolve_feature_set(self, features: Mapping[str, np.ndarray], feature_set: str | None) -> str:
        feature_sets: Mapping[str, Mapping[str, int]] = self.model.config.feature_sets
        if feature_set is not None:
            if feature_set not in feature_sets:
                raise ValueError(
                    f"Unknown feature set {feature_set!r}: this model knows {sorted(feature_sets)}."
                )
            return feature_set
        if len(feature_sets) == 1:
            return next(iter(feature_sets))
        dims = {m: a.shape[1] for m, a in features.items()}
        matches = [
            name for name, expected in feature_sets.items()
            if all(expected.get(m) == d for m, d in dims.items())
        ]
        if len(matches) == 1:
            return matches[0]
        raise ValueError(
            f"Cannot tell which feature set features with dims {dims} belong to (candidates: "
            f"{matches or sorted(feature_sets)}); pass feature_set=... (one of {sorted(feature_sets)})."
        )

    def _extractor_specs(self, feature_set: str | None) -> tuple[str, Any]:
        if self._given_extractors is not None:
            if "__given__" not in self._built_extractors:
                self._built_extractors["__given__"] = build_extractors(self._given_extractors)
            built = self._built_extractors["__given__"]
            name = feature_set or feature_set_name(list(built.values()))
            return name, built
        recorded: Mapping[str, Mapping[str, Any]] = getattr(self.model.config, "feature_extractors", None) or {}
        usable = {
            name: specs for name, specs in recorded.items()
            if name in self.model.config.feature_sets and isinstance(specs, Mapping)
            and all(isinstance(spec, Mapping) for spec in specs.values())
        }
        if feature_set is not None:
            if feature_set not in usable:
                raise ValueError(
                    f"The model records no extractors for feature set {feature_set!r} (it has them for "
                    f"{sorted(usable) or 'none'}); pass extractors=... when building the pipeline."
                )
            name = feature_set
        elif len(usable) == 1:
            name = next(iter(usable))
        else:
            raise ValueError(
                "Raw inputs need the extractors the model was trained with, but "
                + (
                    f"several feature sets record them ({sorted(usable)}): pass feature_set=..."
                    if usable
                    else "the model's config records none (config.feature_extractors): pass "
                    "pipeline(..., extractors={'text': TextExtractor(...), ...}) or precomputed features."
                )
            )
        if name not in self._built_extractors:
            self._built_extractors[name] = build_extractors(usable[name])
        return name, self._built_extractors[name]

    def raw_input_use(self, raw: Mapping[str, Any], feature_set: str | None = None) -> dict[str, list[str]]:
        """Which modality each given raw input feeds with this model (``[]``: ignored).

        ``raw_input_use(raw, self.model.config, feature_set)``, with the modalities of the
        ``extractors=`` this pipeline was given (if any) in place of the recorded ones: what a
        demo should tell its user.
        """
        modalities = None
        if self._given_extractors is not None:
            _, built = self._extractor_specs(feature_set)
            modalities = set(built)
        return raw_input_use(raw, self.model.config, feature_set, extracted=modalities)

    def _extract(self, raw: Mapping[str, Any], feature_set: str | None) -> tuple[dict[str, np.ndarray], str]:
        name, extractors = self._extractor_specs(feature_set)
        unused = [key for key, feeds in self.raw_input_use(raw, name).items() if not feeds]
        if unused:
            logger.warning(
                "The model reads only %s (feature set %r): the input's %s cannot be used and is ignored.",
                ", ".join(sorted(extractors)), name, ", ".join(unused),
            )
        if name not in self.model.config.feature_sets:
            raise ValueError(
                f"The extractors make feature set {name!r}, which this model was not trained on "
                f"({sorted(self.model.config.feature_sets)}); pass feature_set=... naming the right one."
            )
        features = extract_utterance(
            raw.get("text"), audio_path=raw.get("audio"), video_path=raw.get("video"),
            extractors=extractors, missing="skip",
        )
        if not features:
            raise ValueError(f"None of the inputs {sorted(raw)} matches the extractors' modalities {sorted(extractors)}.")
        return {m: _as_sequence(a, f"{m} features") for m, a in features.items()}, name

    # -- model ------------------------------------------------------------------------------
    def _forward(self, model_inputs: dict[str, Any], **predict_kwargs: Any) -> dict[str, Any]:
        return {"predictions": self.model.predict(model_inputs, **predict_kwargs)}

    def postprocess(self, model_outputs: dict[str, Any]) -> dict[str, Any]:
        predictions = model_outputs["predictions"]
        # Pipeline iterators unroll the batch of one; run_single does not.
        return predictions[0] if isinstance(predictions, list) else predictions


def raw_input_use(
    raw: Mapping[str, Any] | Iterable[str],
    config: Any,
    feature_set: str | None = None,
    extracted: Collection[str] | None = None,
) -> dict[str, list[str]]:
    """Which modality each given raw input (``text``, ``audio``, ``video``) feeds a model; ``[]``: none.

    The one answer to "which inputs does this model use" (the pipeline's warning, the demo's
    "inputs used", ``mtaffect predict``'s refusal). It follows ``extract_utterance``: ``text``
    feeds text, ``audio`` audio and ``video`` visual features, and a video also feeds an audio
    extractor through its sound track when no audio is given. Read from the config (nothing
    is built, no weights are needed, so a caller can refuse unusable media before loading
    anything): pretrained encoders (``config.pretrained_encoders``, which read their input
    directly) and the extractors recorded for ``feature_set`` (``config.feature_extractors``);
    when the config does not say (no record, or several feature sets and ``feature_set``
    picks none) every input counts as used.

    Args:
        raw: the given inputs, ``{"text"?, "audio"?, "video"?}`` (a ``None`` or empty value
            counts as not given), or just their keys.
        config: the model's ``MTAffectConfig``.
        feature_set: the feature set the inputs are extracted for.
        extracted: the modalities of the extractors in use, when the caller has its own.

    Examples:
        >>> from mtaffect.configuration_mtaffect import MTAffectConfig
        >>> config = MTAffectConfig(feature_sets={"eg": {"audio": 88}})
        >>> config.feature_extractors = {"eg": {"audio": {"name": "opensmile"}}}
        >>> raw_input_use({"text": "Oh, great.", "video": "clip.mp4"}, config)
        {'text': [], 'video': ['audio']}
    """
    given = [key for key in RAW_KEYS if (raw.get(key) if isinstance(raw, Mapping) else key in raw)]
    encoded = set(getattr(config, "pretrained_encoders", None) or {})
    if extracted is None:
        recorded = getattr(config, "feature_extractors", None) or {}
        names = [feature_set] if feature_set is not None else list(recorded)
        if encoded and not (getattr(config, "feature_sets", None) or {}):
            extracted = set()  # encoders only: they say what is read
        elif len(names) == 1 and isinstance(recorded.get(names[0]), Mapping):
            extracted = set(recorded[names[0]])
        else:
            extracted = set(MODALITIES)
    use: dict[str, list[str]] = {}
    for key in given:
        modality = RAW_KEYS[key]
        use[key] = [modality] if modality in encoded or modality in extracted else []
        if key == "video" and "audio" in extracted and "audio" not in given:
            use[key].append("audio")  # the audio extractor reads the video's sound track
    return use


def _context_turns(value: Any) -> list[dict[str, Any]]:
    """The ``context`` input checked: a list of ``{"speaker"?, "text" | "text_features"}`` turns, oldest first."""
    if value is None:
        return []
    if isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
        raise ValueError(
            "context must be a list of the preceding turns, oldest first: [{'speaker': 'Ross', 'text': '...'}, ...]; "
            f"got {type(value).__name__}."
        )
    turns = []
    for index, turn in enumerate(value):
        if isinstance(turn, str):
            turn = {"text": turn}
        if not isinstance(turn, Mapping) or not ({"text", "text_features"} & set(turn)):
            raise ValueError(f"context[{index}] must be a dict with 'text' (and 'speaker'), got {turn!r}.")
        unknown = sorted(set(turn) - {"speaker", "text", "text_features"})
        if unknown:
            raise ValueError(f"context[{index}] has unknown key(s) {unknown}: expected speaker, text, text_features.")
        turns.append(dict(turn))
    return turns


def _as_sequence(value: Any, name: str) -> np.ndarray:
    """A ``[T, D]`` float32 array (a ``[D]`` vector is one frame)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    # Writable and contiguous: torch.from_numpy warns on (and cannot own) read-only buffers,
    # such as those decoded audio and memory-mapped features come in.
    array = np.require(np.asarray(value, dtype=np.float32), requirements=["C", "W"])
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{name} must be one utterance's [frames, dim] array, got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or inf values.")
    return array


PIPELINE_REGISTRY.register_pipeline(
    TASK,
    pipeline_class=MultimodalAffectPipeline,
    pt_model=AutoModel,
    type="multimodal",
)
