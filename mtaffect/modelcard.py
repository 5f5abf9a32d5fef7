"""Model cards for mtaffect checkpoints: card data, a Trainer callback that fills it, rendering.

A checkpoint on the Hub is only reusable if it says what it predicts, which features it
expects, what it was trained on (with which weak labels) and how well it did. This module
keeps that as ``MTAffectModelCardData`` (a ``huggingface_hub.CardData``) attached to the
model, lets ``ModelCardCallback`` fill it during training (hyperparameters at train
begin, metrics at every evaluation), and renders it with ``huggingface_hub.ModelCard`` and
the package's Jinja template into ``README.md``:

* YAML metadata: ``library_name: mtaffect``, tags, ``datasets``, ``metrics`` and a
  ``model-index`` with the evaluation results per corpus and task;
* tasks and label spaces, feature sets and extractors, training corpora and their weak-label
  settings, hyperparameters, the evaluation table, a usage snippet and the paper's citation.

Where the card gets written:

* ``write_model_card`` — call it at the end of ``save_pretrained`` (so every save, and so
  ``Trainer.push_to_hub``, carries the card);
* ``trainer_create_model_card`` — the body of ``MultiTaskTrainer.create_model_card``
  (``Trainer.push_to_hub`` otherwise overwrites ``README.md`` with transformers' generic card);
* ``push_to_hub`` — what ``model.push_to_hub`` should do (transformers' version also
  replaces ``README.md`` after ``save_pretrained``).

Examples:
    >>> from mtaffect.modelcard import MTAffectModelCardData
    >>> MTAffectModelCardData(model_id="user/mtaffect-demo").library_name
    'mtaffect'
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import CardData, ModelCard
from huggingface_hub.repocard_data import EvalResult, eval_results_to_model_index
from huggingface_hub.utils import yaml_dump
from transformers import TrainerCallback

from mtaffect.data.schema import get_corpus_info
from mtaffect.metrics import (
    PRIMARY_SCORE_KEY,
    is_one_vs_rest,
    is_predicted_count,
    order_metrics,
    split_metric_key,
)
from mtaffect.tasks import EMOTION_LABELS, SENTIMENT_RANGE, TASK_NAMES

if TYPE_CHECKING:
    from transformers import PreTrainedModel, Trainer, TrainerControl, TrainerState, TrainingArguments

logger = logging.getLogger(__name__)

TEMPLATE_PATH = Path(__file__).parent / "templates" / "model_card_template.md"
#: Machine-readable copy of the card data, saved next to ``README.md`` so a checkpoint folder
#: can be re-carded later (e.g. by ``hub_scripts/push_checkpoint.py`` for another repo id).
CARD_DATA_FILE = "mtaffect_card_data.json"

#: Fields of the card data that go into the YAML front matter (the rest feed the template).
YAML_FIELDS: tuple[str, ...] = (
    "language",
    "license",
    "library_name",
    "tags",
    "base_model",
    "datasets",
    "metrics",
    "model-index",
)

DEFAULT_TAGS: tuple[str, ...] = (
    "mtaffect",
    "multimodal",
    "affective-computing",
    "multi-task-learning",
    "weak-supervision",
)
TASK_TAGS: dict[str, str] = {
    "emotion": "emotion-recognition",
    "sentiment": "sentiment-analysis",
    "sarcasm": "sarcasm-detection",
}
#: ``task.type`` and ``task.name`` of each task in the model-index.
TASK_TYPES: dict[str, tuple[str, str]] = {
    "emotion": ("multimodal-emotion-recognition", "Multimodal Emotion Recognition"),
    "sentiment": ("multimodal-sentiment-analysis", "Multimodal Sentiment Analysis"),
    "sarcasm": ("multimodal-sarcasm-detection", "Multimodal Sarcasm Detection"),
}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import datasets
    import huggingface_hub
    import torch
    import transformers

    try:
        mtaffect_version = version("mtaffect")
    except PackageNotFoundError:  # running from a source tree that is not installed
        mtaffect_version = "unknown"
    return {
        "Python": platform.python_version(),
        "mtaffect": mtaffect_version,
        "Transformers": transformers.__version__,
        "PyTorch": torch.__version__,
        "Datasets": datasets.__version__,
        "huggingface_hub": huggingface_hub.__version__,
    }


@dataclass
class MTAffectModelCardData(CardData):
    """What an mtaffect model card says; the fields a user may set are the constructor's.

    Args:
        language: language(s) of the training transcripts, e.g. ``"en"``.
        license: license of the weights (mind the corpora's licenses).
        model_name: title of the card and name in the ``model-index``.
        model_id: Hub id the model is (or will be) pushed to; used in the usage snippet.
        base_model: Hub id of the checkpoint this one was fine-tuned from.
        tags: Hub tags (mtaffect's defaults plus one per task are always added).
        datasets: Hub ids of the training datasets (added to those of the recorded corpora).
        training_corpora: one dict per training corpus (see ``describe_corpus``).

    Filled by ``ModelCardCallback`` (or set by hand): ``hyperparameters`` (dict),
    ``eval_results`` (flat ``Trainer.evaluate`` metrics, latest value per key),
    ``eval_corpora`` (names of the evaluation corpora) and ``eval_lines`` (training log rows).
    """

    language: str | list[str] | None = None
    license: str | None = None
    model_name: str | None = None
    model_id: str | None = None
    base_model: str | None = None
    tags: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    training_corpora: list[dict[str, Any]] = field(default_factory=list)

    hyperparameters: dict[str, Any] = field(default_factory=dict, init=False)
    eval_results: dict[str, float] = field(default_factory=dict, init=False)
    eval_corpora: list[str] = field(default_factory=list, init=False)
    eval_lines: list[dict[str, Any]] = field(default_factory=list, init=False)
    library_name: str = field(default="mtaffect", init=False)

    def __post_init__(self) -> None:
        if self.model_id is not None and self.model_id.count("/") != 1:
            raise ValueError(
                f"model_id {self.model_id!r} must be a Hub id 'namespace/name', e.g. 'my-user/mtaffect-mosei'."
            )
        if isinstance(self.tags, str):
            self.tags = [self.tags]
        if isinstance(self.datasets, str):
            self.datasets = [self.datasets]

    # ``CardData.__init__`` is replaced by the dataclass one; these keep its dict-like API.
    def update(self, **values: Any) -> None:
        """Set card fields by name; an unknown name is an error listing the known ones."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown model card field(s) {unknown}: expected some of {sorted(known)}.")
        for name, value in values.items():
            if name in ("tags", "datasets") and isinstance(value, str):
                value = [value]
            if name in ("tags", "datasets"):
                value = _merge(getattr(self, name), value or [])
            setattr(self, name, value)
        self.__post_init__()

    def to_json(self) -> str:
        """All fields as JSON (for ``CARD_DATA_FILE``)."""
        payload = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "library_name"}
        return json.dumps(payload, indent=2, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> MTAffectModelCardData:
        payload = json.loads(text)
        if not isinstance(payload, dict):
            raise ValueError("Model card data must be a JSON object.")
        init_names = {f.name for f in fields(cls) if f.init}
        data = cls(**{k: v for k, v in payload.items() if k in init_names})
        for f in fields(cls):
            if not f.init and f.name in payload and f.name != "library_name":
                setattr(data, f.name, payload[f.name])
        return data

    def eval_result_list(self, config: Any) -> list[EvalResult]:
        """The evaluation results as ``EvalResult`` s (one per corpus, task and headline metric)."""
        results = []
        names = [corpus["name"] for corpus in self.training_corpora] + list(self.eval_corpora)
        dataset_ids = {c["name"]: c.get("dataset_id") for c in self.training_corpora}
        configs = {c["name"]: c.get("config_name") for c in self.training_corpora}
        parsed_keys = []
        for key, value in self.eval_results.items():
            parsed = split_metric_key(key, names)
            # One-vs-rest scores (and their means) are not results to list beside weighted F1:
            # ~0.85 on a 7-class corpus whose weighted F1 is 0.4 (mtaffect.metrics.HEADLINE_METRICS).
            if (parsed is not None and parsed.task is not None and _is_number(value) and not is_predicted_count(parsed.name)
                    and not is_one_vs_rest(parsed.name)):
                parsed_keys.append((parsed, value))
        # Per split and corpus, the literature's headline metrics first (mtaffect.metrics.order_metrics).
        groups = {group: i for i, group in enumerate(dict.fromkeys((p.split, p.corpus) for p, _ in parsed_keys))}
        rank: dict[tuple[Any, Any, str], int] = {}
        for group in groups:
            keys = [p.name for p, _ in parsed_keys if (p.split, p.corpus) == group]
            rank.update({(*group, key): i for i, key in enumerate(order_metrics(keys))})
        parsed_keys.sort(key=lambda item: (groups[(item[0].split, item[0].corpus)],
                                           rank[(item[0].split, item[0].corpus, item[0].name)]))
        for parsed, value in parsed_keys:
            split, corpus, task, metric = parsed.split, parsed.corpus, parsed.task, parsed.metric
            if config is not None and task not in getattr(config, "tasks", TASK_NAMES):
                continue
            if _is_per_label(metric):
                continue
            corpus_name = corpus or "evaluation"
            task_type, task_name = TASK_TYPES[task]
            results.append(
                EvalResult(
                    task_type=task_type,
                    task_name=task_name,
                    dataset_type=dataset_ids.get(corpus_name) or corpus_name,
                    dataset_name=corpus_name,
                    dataset_config=configs.get(corpus_name),
                    dataset_split=split,
                    metric_type=_metric_type(metric),
                    metric_name=f"{task} {metric}",
                    metric_value=float(value),
                )
            )
        return results

    def to_dict(self) -> dict[str, Any]:
        """Every field (for the template) plus the derived YAML fields."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["tags"] = list(self.tags)
        data["datasets"] = _merge(
            self.datasets, [c["dataset_id"] for c in self.training_corpora if c.get("dataset_id")]
        )
        return data

    def to_yaml(self, line_break: str | None = None, original_order: list[str] | None = None) -> str:
        return _card_yaml(self.to_dict(), line_break)


def _merge(first: Iterable[str], second: Iterable[str]) -> list[str]:
    merged: list[str] = []
    for item in [*first, *second]:
        if item not in merged:
            merged.append(item)
    return merged


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_per_label(metric: str) -> bool:
    from mtaffect.tasks import LABEL_SPACES

    names = set(EMOTION_LABELS) | {label for space in LABEL_SPACES.values() for label in space.labels}
    return any(metric.startswith(f"{label}_") for label in names)


def _metric_type(metric: str) -> str:
    lowered = metric.lower()
    if lowered == "mae":
        return "mae"
    if lowered == "corr":
        return "pearsonr"
    for name in ("f1", "precision", "recall"):
        if name in lowered:
            return name
    if "acc" in lowered:
        return "accuracy"
    return lowered


def describe_corpus(
    name: str, corpus: Any, dataset_id: str | None = None, config_name: str | None = None
) -> dict[str, Any]:
    """What the card records about one training corpus (a unified ``Dataset``/``DatasetDict``).

    Reads its ``CorpusInfo`` (feature set, extractors, weak-label
    provenance) and counts rows per split and which tasks have gold / weak labels.
    """
    import numpy as np
    from datasets import DatasetDict

    info = get_corpus_info(corpus)
    splits = dict(corpus.items()) if isinstance(corpus, DatasetDict) else {"train": corpus}
    reference = splits["train"] if "train" in splits else next(iter(splits.values()))
    masks = [c for t in TASK_NAMES for c in (f"{t}_mask", f"{t}_weak_mask") if c in reference.column_names]
    table = reference.with_format("numpy", columns=masks)[:] if masks else {}  # one slice (see data.arrow.column_values)
    gold = [task for task in TASK_NAMES if f"{task}_mask" in table and np.asarray(table[f"{task}_mask"]).any()]
    weak = [task for task in TASK_NAMES if f"{task}_weak_mask" in table and np.asarray(table[f"{task}_weak_mask"]).any()]
    return {
        "name": name,
        "dataset_id": dataset_id,
        "config_name": config_name,
        "feature_set": info.feature_set,
        "dims": dict(info.dims),
        "extractors": dict(info.extractors),
        "gold_tasks": gold,
        "weak_tasks": weak,
        "weak_labels": dict(info.notes.get("weak_labels", {})),
        "splits": {split: len(dataset) for split, dataset in splits.items()},
    }


def get_model_card_data(model: Any) -> MTAffectModelCardData:
    """The card data attached to ``model`` (created on first use)."""
    data = getattr(model, "model_card_data", None)
    if not isinstance(data, MTAffectModelCardData):
        data = MTAffectModelCardData()
        base = getattr(getattr(model, "config", None), "_name_or_path", None) or None
        if isinstance(base, str) and base.count("/") == 1 and not os.path.exists(base):
            data.base_model = base
        model.model_card_data = data
    return data


def record_training_corpora(
    model: Any,
    corpora: Mapping[str, Any],
    dataset_ids: Mapping[str, str] | None = None,
) -> None:
    """Record ``corpora`` (name -> unified corpus) as the model's training data.

    Also stores each corpus' extractor descriptions in ``model.config.feature_extractors``
    (feature set -> modality -> description), which travels in ``config.json`` so the
    pipeline can rebuild the extractors at inference time.
    """
    data = get_model_card_data(model)
    dataset_ids = dict(dataset_ids or {})
    described = [describe_corpus(name, corpus, dataset_ids.get(name)) for name, corpus in corpora.items()]
    known = {c["name"]: c for c in data.training_corpora}
    for corpus in described:
        previous = known.get(corpus["name"], {})
        corpus["dataset_id"] = corpus["dataset_id"] or previous.get("dataset_id")
        corpus["config_name"] = corpus["config_name"] or previous.get("config_name")
        known[corpus["name"]] = corpus
    data.training_corpora = list(known.values())
    config = getattr(model, "config", None)
    if config is not None:
        extractors = dict(getattr(config, "feature_extractors", None) or {})
        for corpus in described:
            if corpus["extractors"] and corpus["feature_set"] not in ("", "unknown"):
                extractors.setdefault(corpus["feature_set"], corpus["extractors"])
        if extractors:
            config.feature_extractors = extractors


class ModelCardCallback(TrainerCallback):
    """Fill the model's card data while a ``Trainer`` runs.

    At train begin: hyperparameters (transformers' summary plus the mtaffect training
    arguments) and the training corpora (when ``train_dataset`` is a dict name -> corpus).
    At every evaluation: the metrics (latest value per key) and, during training, one row
    per corpus in the training log.
    """

    def __init__(self, trainer: Trainer) -> None:
        super().__init__()
        self.trainer = trainer

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model: Any = None, **kwargs: Any
    ) -> None:
        model = model if model is not None else self.trainer.model
        data = get_model_card_data(model)
        data.hyperparameters = trainer_hyperparameters(self.trainer)
        train = self.trainer.train_dataset
        if isinstance(train, Mapping):
            record_training_corpora(model, train)
        evaluation = self.trainer.eval_dataset
        if isinstance(evaluation, Mapping):
            data.eval_corpora = _merge(data.eval_corpora, [str(name) for name in evaluation])

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        model = model if model is not None else self.trainer.model
        if not metrics:
            return
        data = get_model_card_data(model)
        evaluation = self.trainer.eval_dataset
        if isinstance(evaluation, Mapping):
            data.eval_corpora = _merge(data.eval_corpora, [str(name) for name in evaluation])
        numbers = {key: float(value) for key, value in metrics.items() if _is_number(value)}
        data.eval_results.update(numbers)
        if self.trainer.is_in_train:
            data.eval_lines.extend(_log_rows(numbers, state, data))


def _log_rows(metrics: Mapping[str, float], state: Any, data: MTAffectModelCardData) -> list[dict[str, Any]]:
    names = [c["name"] for c in data.training_corpora] + list(data.eval_corpora)
    rows: dict[str, dict[str, Any]] = {}
    for key, value in metrics.items():
        prefix, _, rest = key.partition("_")
        corpus = next((n for n in sorted(set(names), key=len, reverse=True) if rest.startswith(n + "_")), None)
        metric = rest[len(corpus) + 1 :] if corpus else rest
        if metric not in ("loss", PRIMARY_SCORE_KEY):
            continue
        row = rows.setdefault(
            corpus or "all",
            {
                "Epoch": round(float(state.epoch or 0.0), 4),
                "Step": int(state.global_step),
                "Corpus": corpus or "all",
                "Validation loss": "-",
                "Primary score": "-",
            },
        )
        row["Validation loss" if metric == "loss" else "Primary score"] = round(value, 4)
    return list(rows.values())


def trainer_hyperparameters(trainer: Any) -> dict[str, Any]:
    """transformers' hyperparameter summary plus every field the mtaffect arguments add."""
    from transformers import TrainingArguments
    from transformers.modelcard import extract_hyperparameters_from_trainer

    hyperparameters = extract_hyperparameters_from_trainer(trainer)
    base = {f.name for f in dataclasses.fields(TrainingArguments)}
    args = trainer.args
    if dataclasses.is_dataclass(args):
        for f in dataclasses.fields(args):
            if f.name in base or f.name.startswith("_"):
                continue
            value = getattr(args, f.name)
            if value is None:
                continue
            hyperparameters[f.name] = getattr(value, "value", value)
    return hyperparameters


# --------------------------------------------------------------------------------------------
# Rendering


def _task_rows(config: Any) -> list[dict[str, str]]:
    """One row per head: what it outputs and what its outputs mean (the config's label spaces)."""
    rows = []
    for key, space in (getattr(config, "label_spaces", None) or {}).items():
        kind, labels = space["kind"], list(space.get("labels", []))
        if kind == "score":
            low, high = space.get("score_range", SENTIMENT_RANGE)
            output, meaning = f"`head_outputs['{key}']` [batch]", f"score in [{low:g}, {high:g}] ({space['loss']} loss)"
        elif kind == "binary":
            output, meaning = f"`head_outputs['{key}']` [batch]", f"logit of {labels[-1]!r} (sigmoid); {labels[-1]} if > 0.5"
        else:
            activation = "sigmoid per label, multi-label" if kind == "multilabel" else "softmax, single-label"
            output = f"`head_outputs['{key}']` [batch, {len(labels)}]"
            meaning = ", ".join(labels) + f" ({activation})"
        rows.append({"task": key, "output": output, "labels": meaning})
    return rows


def _describe_extractor(description: Any) -> str:
    if isinstance(description, Mapping):
        name = description.get("name") or description.get("class") or "?"
        step = description.get("step")
        config = description.get("config") or {}
        model = config.get("model_name_or_path") if isinstance(config, Mapping) else None
        parts = [f"`{name}`"]
        if description.get("class"):
            parts.append(f"({description['class']}{', ' + str(model) if model else ''}{', per ' + step if step else ''})")
        return " ".join(parts)
    return f"`{description}`" if description else "not recorded"


def _feature_rows(config: Any, data: MTAffectModelCardData) -> list[dict[str, Any]]:
    extractors: dict[str, Any] = dict(getattr(config, "feature_extractors", None) or {})
    for corpus in data.training_corpora:
        extractors.setdefault(corpus.get("feature_set"), corpus.get("extractors") or {})
    rows = []
    for feature_set, dims in (getattr(config, "feature_sets", None) or {}).items():
        for modality, dim in dims.items():
            rows.append({
                "feature_set": feature_set,
                "modality": modality,
                "dim": dim,
                "extractor": _describe_extractor((extractors.get(feature_set) or {}).get(modality)),
            })
    return rows


def usage_snippet(config: Any, model_id: str) -> str:
    """A Python snippet that loads the model and predicts on random features of the right shape."""
    feature_sets = getattr(config, "feature_sets", None) or {}
    feature_set, dims = next(iter(feature_sets.items()), ("features", {"text": 8}))
    lines = [
        "import torch",
        "from transformers import AutoModel",
        "",
        f'model = AutoModel.from_pretrained("{model_id}", trust_remote_code=True).eval()',
        "",
        f'# One utterance of feature set "{feature_set}": a [batch, frames, dim] tensor per modality.',
        "frames = 20",
        "batch = {",
        f'    "feature_set": "{feature_set}",',
    ]
    for modality, dim in dims.items():
        lines.append(f'    "{modality}_features": torch.randn(1, frames, {dim}),')
        lines.append(f'    "{modality}_mask": torch.ones(1, frames, dtype=torch.bool),')
    lines += [
        "}",
        "with torch.no_grad():",
        "    predictions = model.predict(batch)",
        "print(predictions)",
    ]
    return "\n".join(lines)


def generate_model_card(model: Any, **card_data: Any) -> ModelCard:
    """Render ``model``'s card (its card data updated with ``card_data``) as a ``ModelCard``."""
    data = get_model_card_data(model)
    if card_data:
        data.update(**card_data)
    config = getattr(model, "config", None)
    tasks = list(getattr(config, "tasks", TASK_NAMES))
    data.tags = _merge(_merge(DEFAULT_TAGS, [TASK_TAGS[t] for t in tasks if t in TASK_TAGS]), data.tags)
    if data.base_model and data.base_model == data.model_id:
        data.base_model = None
    if not data.model_name:
        data.model_name = (
            data.model_id.split("/")[-1] if data.model_id else f"mtaffect model for {', '.join(tasks)}"
        )
    eval_results = data.eval_result_list(config)
    yaml_extra: dict[str, Any] = {}
    if eval_results:
        yaml_extra["model-index"] = eval_results_to_model_index(data.model_name, eval_results)
        yaml_extra["metrics"] = _merge([], [r.metric_type for r in eval_results])
    elif not getattr(data, "_warned_no_eval", False):
        # Once per model: a training run saves many checkpoints before its first evaluation.
        data._warned_no_eval = True
        logger.warning(
            "No evaluation results are recorded for this model, so its model card has no model-index "
            "and says so. Run MultiTaskTrainer.evaluate() before saving (the ModelCardCallback records "
            "the metrics) to publish them."
        )
    card = ModelCard.from_template(
        card_data=_YamlView(data, yaml_extra),
        template_path=str(TEMPLATE_PATH),
        **_template_values(model, data, config, eval_results),
    )
    return card


def _card_yaml(data: Mapping[str, Any], line_break: str | None) -> str:
    """The card's YAML header: the set fields of ``YAML_FIELDS``, in the Hub's order."""
    return yaml_dump(
        {key: data[key] for key in YAML_FIELDS if data.get(key) not in (None, [], {})},
        sort_keys=False,
        line_break=line_break,
    ).strip()


class _YamlView(CardData):
    """Card data plus derived YAML fields (model-index, metrics), in Hub order."""

    def __init__(self, data: MTAffectModelCardData, extra: dict[str, Any]):
        super().__init__()
        self._data, self._extra = data, extra

    def to_dict(self) -> dict[str, Any]:
        return {**self._data.to_dict(), **self._extra}

    def to_yaml(self, line_break: str | None = None, original_order: list[str] | None = None) -> str:
        return _card_yaml(self.to_dict(), line_break)


def _template_values(
    model: Any, data: MTAffectModelCardData, config: Any, eval_results: list[EvalResult]
) -> dict[str, Any]:
    from transformers.modelcard import make_markdown_table

    num_parameters = None
    if hasattr(model, "num_parameters"):
        num_parameters = f"{model.num_parameters():,}"
    corpora = []
    for corpus in data.training_corpora:
        splits = corpus.get("splits") or {}
        rows = " / ".join(str(splits.get(s, "-")) for s in ("train", "validation", "test"))
        dataset_id = corpus.get("dataset_id")
        link = f"[{dataset_id}](https://huggingface.co/datasets/{dataset_id})" if dataset_id else "-"
        if dataset_id and corpus.get("config_name"):
            link += f" (config `{corpus['config_name']}`)"
        corpora.append({**corpus, "rows": rows, "dataset_link": link})
    weak_settings = {
        name: getattr(config, name, None)
        for name in (
            "weak_loss_weight", "weak_label_mode", "weak_hard_threshold", "weak_use_confidence",
            "weak_confidence_threshold",
        )
    }
    weak_corpora = [
        {"name": c["name"], "weak_labels": {t: _options_text(o) for t, o in c.get("weak_labels", {}).items()}}
        for c in corpora
        if c.get("weak_labels")
    ]
    eval_rows = [
        {
            "Corpus": r.dataset_name,
            "Split": r.dataset_split or "-",
            "Task": (r.metric_name or "").split(" ", 1)[0],
            "Metric": (r.metric_name or "").split(" ", 1)[-1],
            "Value": round(float(r.metric_value), 4),
        }
        for r in eval_results
    ]
    usage_id = data.model_id or "path/to/this/model"
    return {
        "tasks": list(getattr(config, "tasks", TASK_NAMES)),
        "modalities": list(getattr(config, "modalities", [])) or ["text"],
        "encoder_type": getattr(config, "encoder_type", "?"),
        "fusion": getattr(config, "fusion", "?"),
        "hidden_size": getattr(config, "hidden_size", "?"),
        "num_parameters": num_parameters,
        "base_model_url": f"https://huggingface.co/{data.base_model}" if data.base_model else None,
        "task_rows": _task_rows(config),
        "feature_rows": _feature_rows(config, data),
        "training_corpora": corpora,
        "weak_label_corpora": weak_corpora,
        "weak_settings": weak_settings,
        "eval_lines": make_markdown_table(data.eval_lines) if data.eval_lines else "",
        "eval_table": make_markdown_table(eval_rows) if eval_rows else "",
        "usage_snippet": usage_snippet(config, usage_id),
        "usage_model_id": usage_id,
        "version": _versions(),
    }


def _options_text(options: Any) -> str:
    if not isinstance(options, Mapping):
        return str(options)
    shown = {k: v for k, v in options.items() if v is not None and k != "teacher_sha256"}
    text = ", ".join(f"{k}={v}" for k, v in shown.items())
    if options.get("teacher_sha256"):
        text += f"{', ' if text else ''}teacher sha256 {str(options['teacher_sha256'])[:12]}"
    return text or "default settings"


def write_model_card(model: Any, save_directory: str | os.PathLike, **card_data: Any) -> Path:
    """Render ``model``'s card and write it as ``README.md`` in ``save_directory``.

    Call it at the end of ``save_pretrained``; ``card_data`` updates the card fields
    (``MTAffectModelCardData``), e.g. ``model_id="user/repo"``.
    """
    directory = Path(save_directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} is a file; write_model_card needs the save_pretrained folder.")
    directory.mkdir(parents=True, exist_ok=True)
    card = generate_model_card(model, **card_data)
    path = directory / "README.md"
    card.save(str(path))
    (directory / CARD_DATA_FILE).write_text(get_model_card_data(model).to_json(), encoding="utf-8")
    return path


def load_model_card_data(model: Any, directory: str | os.PathLike) -> MTAffectModelCardData:
    """Attach the card data saved in ``directory`` (by ``write_model_card``) to ``model``.

    Without a saved copy the model keeps (or gets fresh) card data, and that is logged.
    """
    path = Path(directory) / CARD_DATA_FILE
    if not path.is_file():
        logger.info("%s has no %s: the card is built from the config alone.", directory, CARD_DATA_FILE)
        return get_model_card_data(model)
    try:
        data = MTAffectModelCardData.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path} is not valid mtaffect model card data: {error}") from error
    model.model_card_data = data
    return data


def trainer_create_model_card(trainer: Any, **kwargs: Any) -> Path | None:
    """``Trainer.create_model_card`` for mtaffect: write our card into ``args.output_dir``.

    Accepts the stock keyword arguments: ``language``, ``license``, ``tags``, ``model_name``,
    ``finetuned_from`` (-> ``base_model``), ``dataset`` (Hub ids -> ``datasets``);
    ``tasks``, ``dataset_tags`` and ``dataset_args`` are ignored (the config says the tasks).
    """
    if not trainer.is_world_process_zero():
        return None
    mapping = {"finetuned_from": "base_model", "dataset": "datasets"}
    ignored = {"tasks", "dataset_tags", "dataset_args"}
    card_data = {mapping.get(k, k): v for k, v in kwargs.items() if v is not None and k not in ignored}
    model_id = getattr(trainer, "hub_model_id", None) or getattr(trainer.args, "hub_model_id", None)
    if model_id and "model_id" not in card_data and model_id.count("/") == 1:
        card_data["model_id"] = model_id
    model = trainer.accelerator.unwrap_model(trainer.model) if hasattr(trainer, "accelerator") else trainer.model
    return write_model_card(model, trainer.args.output_dir, **card_data)


def push_to_hub(
    model: PreTrainedModel,
    repo_id: str,
    *,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    max_shard_size: int | str | None = "50GB",
    tags: list[str] | None = None,
    extra_files: Mapping[str, str | os.PathLike] | None = None,
    **card_data: Any,
) -> Any:
    """Push ``model`` with its card: ``save_pretrained`` + ``README.md`` + ``extra_files``, one commit.

    transformers' ``push_to_hub`` replaces ``README.md`` after saving, which would drop the
    mtaffect card; this is what ``MTAffectForMultiTaskAffect.push_to_hub`` should call.
    A repo this call created is deleted again if the upload fails, so a failed push leaves
    no half-written repo. ``extra_files`` maps a path in the repo to a local file (e.g. the
    study's ``report.json``).

    Returns the ``huggingface_hub.CommitInfo`` of the commit.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    api = HfApi()
    try:
        existed = api.repo_exists(repo_id, token=token)
    except RepositoryNotFoundError:
        existed = False
    repo_url = api.create_repo(repo_id, private=private, token=token, exist_ok=True)
    repo_id = repo_url.repo_id
    try:
        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp, max_shard_size=max_shard_size)
            write_model_card(model, tmp, model_id=repo_id, **({"tags": tags} if tags else {}), **card_data)
            for path_in_repo, local in (extra_files or {}).items():
                target = Path(tmp) / path_in_repo
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(Path(local).read_bytes())
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=tmp,
                commit_message=commit_message or "Upload mtaffect model",
                commit_description=commit_description,
                token=token,
                revision=revision,
                create_pr=create_pr,
            )
    except BaseException:
        if not existed:
            logger.error("Pushing to %s failed; deleting the repo this push created.", repo_id)
            try:
                api.delete_repo(repo_id, token=token, missing_ok=True)
            except Exception as cleanup_error:  # keep the original error; say the cleanup failed
                logger.error("Could not delete %s after the failed push: %s", repo_id, cleanup_error)
        raise
