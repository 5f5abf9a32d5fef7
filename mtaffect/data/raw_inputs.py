"""Raw inputs for pretrained encoders: transcripts -> token ids, audio references -> waveforms.

A model whose config lists ``pretrained_encoders`` reads those modalities from the raw
columns every unified corpus can carry beside its features: ``text`` (the transcript) and
``audio`` (a file path, a ``{"array", "sampling_rate"}`` dict as ``datasets.Audio`` decodes
it, or a 1-D array already at the encoder's sampling rate). ``EncoderInputCollator``
tokenizes / loads them on the fly with the encoder's **own** tokenizer / feature extractor
(``model.processors``) and hands the rest of each row (labels, other modalities' features)
to the feature collator.

Truncation: text is cut to ``max_length`` tokens (special tokens included) by the
tokenizer, keeping the start; audio to its first ``max_length`` seconds. Both limits come
from ``config.pretrained_encoders[m]["max_length"]`` (defaults 128 tokens, 10 s).

Context (``config.context``): a text encoder reads the row's past context turns
(``context_text`` / ``context_speaker`` / ``context_position``, ``mtaffect.data.context``) as
``speaker: text`` before the utterance, in the tokenizer's pair format
(``[CLS] turns [SEP] utterance [SEP]`` for BERT), the oldest tokens cut first to fit ``max_length``;
an utterance too long to leave room for any context is read alone, as without context.

A frozen encoder's outputs can be cached in a column ``<modality>_encoder_states``, a
``top-K`` encoder's boundary states in ``<modality>_encoder_hidden``
(``mtaffect.training.encoder_cache``); rows that carry them skip the raw input.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mtaffect.data.schema import feature_column, unknown_labels

logger = logging.getLogger(__name__)

#: The raw column each encoder modality reads.
RAW_COLUMNS: dict[str, str] = {"text": "text", "audio": "audio"}
#: Batch keys of what the collator makes (as the model's forward names them).
INPUT_KEYS: dict[str, str] = {"text": "text_input_ids", "audio": "audio_input_values"}


def states_column(modality: str) -> str:
    """Column / batch key of a frozen encoder's cached states (``[layers, encoder_hidden]`` per row)."""
    return f"{modality}_encoder_states"


def hidden_column(modality: str) -> str:
    """Column / batch key of a ``top-K`` encoder's cached boundary states (``[tokens, encoder_hidden]`` per row)."""
    return f"{modality}_encoder_hidden"


def load_waveform(reference: Any, sampling_rate: int, row: Any = None) -> np.ndarray:
    """A mono float32 waveform at ``sampling_rate`` from a path, a decoded-audio dict or an array.

    Args:
        reference: a file path (any format ``mtaffect.data.extract.media.load_audio`` reads), a dict
            with ``array`` and ``sampling_rate`` (``datasets.Audio``), or a 1-D array taken to be at
            ``sampling_rate`` already. ``None`` or an empty string is no audio (an empty waveform).
        sampling_rate: the encoder's rate (its feature extractor's ``sampling_rate``).
        row: the row's id, named in errors.
    """
    from mtaffect.data.extract.media import load_audio, resample

    if reference is None or (isinstance(reference, str) and not reference):
        return np.zeros(0, dtype=np.float32)
    if isinstance(reference, str):
        return load_audio(reference, sampling_rate)
    if isinstance(reference, Mapping):
        if "array" not in reference or "sampling_rate" not in reference:
            raise ValueError(
                f"Row {row!r}: an audio dict needs 'array' and 'sampling_rate' (as datasets.Audio decodes it), "
                f"got keys {sorted(reference)}."
            )
        signal = np.asarray(reference["array"], dtype=np.float32)
        if signal.ndim == 2:
            signal = signal.mean(axis=0 if signal.shape[0] < signal.shape[1] else 1)
        return resample(signal, int(reference["sampling_rate"]), sampling_rate)
    signal = np.asarray(reference, dtype=np.float32)
    if signal.ndim != 1:
        raise ValueError(f"Row {row!r}: an audio array must be 1-D samples at {sampling_rate} Hz, got shape {signal.shape}.")
    return signal


def context_prefix(row: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """The past turns a text encoder reads before a row's utterance: ``"speaker: text speaker: text"``.

    Takes the row's ``context_text`` / ``context_speaker`` / ``context_position`` turns at offsets
    ``-past .. -1`` (oldest first); without ``speakers`` (or a turn without one) just the text.

    Examples:
        >>> row = {"context_text": ["Hi.", "Where?", "Here."], "context_speaker": ["Ross", "Joey", ""],
        ...        "context_position": [-3, -2, -1]}
        >>> context_prefix(row, {"past": 2, "speakers": True})
        'Joey: Where? Here.'
    """
    texts = row.get("context_text")
    if texts is None or not len(texts):
        return ""
    speakers = row.get("context_speaker")
    speakers = [""] * len(texts) if speakers is None else list(speakers)
    positions = row.get("context_position")
    positions = list(range(-len(texts), 0)) if positions is None else [int(p) for p in positions]
    past = int(context.get("past") or 0)
    named = bool(context.get("speakers", True))
    parts = []
    for text, speaker, position in zip(texts, speakers, positions):
        if -past <= position < 0 and str(text).strip():
            parts.append(f"{speaker}: {text}" if named and str(speaker).strip() else str(text))
    return " ".join(parts)


@dataclass
class EncoderInputCollator:
    """Collate rows for a model with pretrained encoders: raw columns -> encoder inputs, the rest -> ``base``.

    Args:
        processors: `dict[str, Any]`.
            Modality -> the encoder's tokenizer (text) or feature extractor (audio); a model's
            ``model.processors``.
        base: a collator.
            Collator of the remaining columns (labels, feature modalities), e.g.
            ``FeatureSetCollator`` or ``MTAffectCollator``; defaults to ``MTAffectCollator()``.
        max_length: `dict[str, float]`.
            Modality -> truncation: tokens for text, seconds for audio (``config.pretrained_encoders``).
        feature_modalities: `set[str]`.
            Modalities whose feature columns go to ``base``; other feature columns are dropped
            (a text-encoder model trained on a corpus that also has audio features it has no
            projection for). ``None`` keeps all but the encoder modalities'.
        context: `dict`.
            The model's ``config.context`` (``past``, ``speakers``): how many past turns the text
            encoder reads before the utterance. ``None`` or ``past`` 0: none.

    Examples:
        >>> from transformers import AutoTokenizer
        >>> from mtaffect.data.extract.text import default_text_model_path
        >>> collator = EncoderInputCollator({"text": AutoTokenizer.from_pretrained(default_text_model_path())},
        ...                                 max_length={"text": 8})
        >>> row = {"feature_set": "meld", "text": "a long sentence that the tokenizer will truncate for us"}
        >>> collator([row])["text_input_ids"].shape
        torch.Size([1, 8])
    """

    processors: dict[str, Any]
    base: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None
    max_length: dict[str, float] = field(default_factory=dict)
    feature_modalities: set[str] | None = None
    context: Mapping[str, Any] | None = None

    @classmethod
    def for_model(cls, model: Any, base: Callable[..., dict[str, Any]] | None = None) -> EncoderInputCollator:
        """The collator of ``model``'s pretrained encoders (its processors and truncation limits)."""
        specs = model.config.pretrained_encoders
        missing = sorted(set(specs) - set(model.processors))
        if missing:
            raise ValueError(
                f"The model has no processor for its {missing} encoder(s): build it with "
                "MTAffectForMultiTaskAffect.from_encoders(config) or load it with from_pretrained."
            )
        return cls(
            processors={m: model.processors[m] for m in specs},
            base=base,
            max_length={m: spec["max_length"] for m, spec in specs.items()},
            feature_modalities={m for dims in model.config.feature_sets.values() for m in dims},
            context=getattr(model.config, "context", None),
        )

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if not rows:
            raise ValueError("Cannot collate an empty batch.")
        # Encoder modalities' own feature columns (if a corpus has them) are not model inputs here.
        dropped = {
            column for m in self.processors
            for column in (RAW_COLUMNS[m], feature_column(m), states_column(m), hidden_column(m))
        }
        # An encoder modality reads its context in its tokens, not as pooled context features.
        dropped |= {f"context_{m}_features" for m in self.processors}
        if self.feature_modalities is not None:
            from mtaffect.data.schema import MODALITIES

            dropped |= {feature_column(m) for m in MODALITIES if m not in self.feature_modalities}
        base = self.base
        if base is None:
            from mtaffect.data.collator import MTAffectCollator

            base = self.base = MTAffectCollator()
        unlabelled = unknown_labels()  # rows to predict may carry no label columns: every label unknown
        batch = base([{**unlabelled, **{k: v for k, v in row.items() if k not in dropped}} for row in rows])
        for modality, processor in self.processors.items():
            column = states_column(modality)
            if all(column in row for row in rows):
                batch[column] = torch.stack([torch.as_tensor(np.asarray(row[column]), dtype=torch.float32) for row in rows])
                continue
            if all(hidden_column(modality) in row for row in rows):
                batch.update(self._pad_hidden(modality, rows))
                continue
            if modality == "text":
                batch.update(self._tokenize(processor, rows))
            else:
                batch.update(self._waveforms(processor, rows))
        return batch

    @staticmethod
    def _pad_hidden(modality: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        """Cached ``top-K`` boundary states, right-padded, and their attention mask (0 rows: missing)."""
        states = [torch.as_tensor(np.asarray(row[hidden_column(modality)]), dtype=torch.float32) for row in rows]
        width = next((s.shape[-1] for s in states if s.ndim == 2 and s.shape[0]), None)
        if width is None:
            raise ValueError(f"Every row's cached {hidden_column(modality)} is empty: nothing to encode.")
        length = max(1, max(s.shape[0] if s.ndim == 2 else 0 for s in states))
        hidden = torch.zeros(len(rows), length, width)
        mask = torch.zeros(len(rows), length, dtype=torch.long)
        for i, state in enumerate(states):
            if state.ndim == 2 and state.shape[0]:
                hidden[i, : state.shape[0]] = state
                mask[i, : state.shape[0]] = 1
        return {hidden_column(modality): hidden, f"{modality}_attention_mask": mask}

    def _tokenize(self, tokenizer: Any, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        texts = [row.get(RAW_COLUMNS["text"]) for row in rows]
        if all(text is None for text in texts):
            raise ValueError(
                "The model's text encoder reads the raw 'text' column, which these rows lack (ids "
                f"{[row.get('id') for row in rows[:3]]}...): load the corpus with its transcripts."
            )
        empty = [not isinstance(text, str) or not text.strip() for text in texts]
        limit = self.max_length.get("text")
        if (self.context or {}).get("past"):
            prefixes = [context_prefix(row, self.context) for row in rows]
            if any(prefixes):
                return self._tokenize_with_context(tokenizer, texts, prefixes, empty, limit)
        encoded = tokenizer(
            ["" if e else str(t) for t, e in zip(texts, empty)],
            padding=True,
            truncation=limit is not None,
            max_length=int(limit) if limit is not None else None,
            return_tensors="pt",
        )
        mask = encoded["attention_mask"]
        if any(empty):
            # No transcript is a missing modality (the model substitutes its missing embedding).
            mask[torch.tensor(empty)] = 0
        return {"text_input_ids": encoded["input_ids"], "text_attention_mask": mask}

    def _tokenize_with_context(
        self, tokenizer: Any, texts: list[Any], prefixes: list[str], empty: list[bool], limit: float | None
    ) -> dict[str, torch.Tensor]:
        """Rows with past turns as token pairs (turns, utterance), cut from the oldest token; the rest alone."""
        texts = ["" if e else str(t) for t, e in zip(texts, empty)]
        pair = [bool(p) and not e for p, e in zip(prefixes, empty)]
        if limit is not None:
            # Room for at least one context token beside the whole utterance, else the utterance alone.
            lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
            room = int(limit) - tokenizer.num_special_tokens_to_add(pair=True)
            pair = [p and n < room for p, n in zip(pair, lengths)]
        options = {"truncation": limit is not None, "max_length": int(limit) if limit is not None else None}
        encodings: list[dict[str, Any] | None] = [None] * len(texts)
        paired = [i for i, p in enumerate(pair) if p]
        single = [i for i, p in enumerate(pair) if not p]
        if paired:
            side = tokenizer.truncation_side
            tokenizer.truncation_side = "left"  # drop the oldest turns' tokens first
            try:
                if limit is not None:
                    options["truncation"] = "only_first"
                out = tokenizer([prefixes[i] for i in paired], [texts[i] for i in paired], **options)
            finally:
                tokenizer.truncation_side = side
            for j, i in enumerate(paired):
                encodings[i] = {key: values[j] for key, values in out.items()}
        if single:
            out = tokenizer([texts[i] for i in single], truncation=limit is not None,
                            max_length=int(limit) if limit is not None else None)
            for j, i in enumerate(single):
                encodings[i] = {key: values[j] for key, values in out.items()}
        encoded = tokenizer.pad(encodings, padding=True, return_tensors="pt")
        mask = encoded["attention_mask"]
        if any(empty):
            mask[torch.tensor(empty)] = 0
        batch = {"text_input_ids": encoded["input_ids"], "text_attention_mask": mask}
        if "token_type_ids" in encoded:
            batch["text_token_type_ids"] = encoded["token_type_ids"]
        return batch

    def _waveforms(self, extractor: Any, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        rate = int(extractor.sampling_rate)
        limit = self.max_length.get("audio")
        samples = int(limit * rate) if limit is not None else None
        waves = [load_waveform(row.get(RAW_COLUMNS["audio"]), rate, row.get("id")) for row in rows]
        if samples is not None:
            waves = [wave[:samples] for wave in waves]
        lengths = [len(wave) for wave in waves]
        # An encoder needs a few hundred samples to make one frame: empty rows get silence, masked out.
        minimum = max(max(lengths), 400)
        encoded = extractor(
            [wave if len(wave) else np.zeros(minimum, np.float32) for wave in waves],
            sampling_rate=rate,
            padding="longest",
            return_attention_mask=True,
            return_tensors="pt",
        )
        values = encoded["input_values"]
        mask = encoded.get("attention_mask")
        if mask is None:
            mask = torch.ones(values.shape, dtype=torch.long)
        for i, length in enumerate(lengths):
            if length == 0:
                mask[i] = 0
        return {"audio_input_values": values, "audio_attention_mask": mask}
