"""The one training recipe: build the config, the arguments and the Trainer, fit, evaluate.

Every front door that trains a model calls ``fit``: ``mtaffect train``, the study (every
single-task, multi-task and weak model of every seed) and ``mtaffect.teachers.train_teacher``.
So they share one set of training defaults (``TRAINING_DEFAULTS``, chosen for the small
models mtaffect trains from scratch: the Trainer's own 5e-5 learning rate leaves such a model a
constant predictor), one way of turning settings into ``MultiTaskTrainingArguments``
(``training_arguments``). Checkpoints load through ``mtaffect.checkpoints.load_model``
(imported here too), which needs no training code.

The model config alone owns λ and every loss setting: pass them with the other
``MTAffectConfig`` arguments (``model={"weak_loss_weight": 0.5}``); the training arguments
hold sampling and Trainer fields only.

Examples:
    >>> from mtaffect.data.corpora.synthetic import make_synthetic_family
    >>> family = make_synthetic_family(size_scale=0.05, corpora=["synthetic_mustard"])
    >>> fitted = fit(
    ...     {name: corpus["train"] for name, corpus in family.items()},
    ...     {name: corpus["validation"] for name, corpus in family.items()},
    ...     output_dir=str(getfixture("tmp_path")),
    ...     model={"hidden_size": 8, "num_heads": 2},
    ...     training={"num_train_epochs": 1, "disable_tqdm": True},
    ... )  # doctest: +SKIP
    >>> sorted(fitted.eval_metrics)[:1]  # doctest: +SKIP
    ['eval_combined_score']
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import HfArgumentParser, PrinterCallback, set_seed

from mtaffect.checkpoints import CheckpointError, load_model  # noqa: F401  (CheckpointError re-exported)
from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
from mtaffect.tasks import TASK_NAMES
from mtaffect.training import MultiTaskTrainer, MultiTaskTrainingArguments

logger = logging.getLogger(__name__)

#: The training defaults of every front door; a ``training`` mapping updates them. Tuned for
#: models trained from scratch on corpus features (a few 10k parameters to a few M): on shared
#: MUStARD features the Trainer's 5e-5 ends as a constant predictor (weighted F1 0.256), 2e-3
#: learns (0.546). The best epoch on the validation splits (``eval_combined_score``) is kept.
TRAINING_DEFAULTS: dict[str, Any] = {
    "num_train_epochs": 5,
    "learning_rate": 2e-3,
    "weight_decay": 0.01,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 256,
    "seed": 0,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 1,
    "load_best_model_at_end": True,
    "metric_for_best_model": "combined_score",
    "greater_is_better": True,
    "logging_strategy": "epoch",
    "report_to": "none",
}
#: What a model with a pretrained encoder that trains (``full``, ``lora``, ``top-K``) changes in
#: ``TRAINING_DEFAULTS``: the encoder at 1e-4, the layers after it at 1e-3, 10% linear warm-up,
#: 3 epochs. The schedule of ``benchmarks/finetune_parity.py``, where MiniLM fine-tuned this way
#: on MELD matches ``AutoModelForSequenceClassification`` under the plain ``Trainer``; the
#: from-scratch rate 2e-3 would wreck a pretrained encoder in its first steps.
ENCODER_TRAINING_DEFAULTS: dict[str, Any] = {
    "num_train_epochs": 3,
    "learning_rate": 1e-3,
    "encoder_learning_rate": 1e-4,
    "warmup_steps": 0.1,
}
#: The config's loss settings: the only model settings that may change on a loaded checkpoint.
LOSS_SETTINGS: tuple[str, ...] = (
    "emotion_pos_weight",
    "emotion_single_label_loss",
    "weak_loss_weight",
    "weak_label_mode",
    "weak_hard_threshold",
    "weak_use_confidence",
    "weak_confidence_threshold",
    "task_loss_weights",
)
#: The defaults that need evaluation data, and what they become without it.
_WITHOUT_EVALUATION: dict[str, Any] = {
    "eval_strategy": "no",
    "load_best_model_at_end": False,
    "metric_for_best_model": None,
    "greater_is_better": None,
}


# --------------------------------------------------------------------------------------------
# Settings -> config and arguments


def parse_task_loss_weights(value: Any) -> dict[str, float] | None:
    """Read per-task loss weights from a dict, JSON, ``"task=w,task=w"`` or a list of ``"task=w"``.

    Examples:
        >>> parse_task_loss_weights("emotion=1, sarcasm=0.5")
        {'emotion': 1.0, 'sarcasm': 0.5}
        >>> parse_task_loss_weights('{"sentiment": 2}')
        {'sentiment': 2.0}
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.startswith("{"):
            value = json.loads(text)
        else:
            value = [part for part in text.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        pairs = {}
        for item in value:
            name, sep, weight = str(item).partition("=")
            if not sep:
                raise ValueError(f"task_loss_weights entry {item!r} must look like 'task=weight', e.g. 'sarcasm=0.5'.")
            pairs[name.strip()] = weight.strip()
        value = pairs
    if not isinstance(value, Mapping):
        raise ValueError(f"task_loss_weights must be a dict or 'task=w' strings, got {type(value).__name__}.")
    weights = {}
    for name, weight in value.items():
        if name not in TASK_NAMES:
            raise ValueError(f"task_loss_weights names unknown task {name!r}; tasks are {', '.join(TASK_NAMES)}.")
        try:
            weights[name] = float(weight)
        except (TypeError, ValueError):
            raise ValueError(f"task_loss_weights[{name!r}] must be a number, got {weight!r}.") from None
        if weights[name] < 0:
            raise ValueError(f"task_loss_weights[{name!r}] must be >= 0, got {weights[name]}.")
    return weights


def model_encoders(model: Mapping[str, Any] | MTAffectForMultiTaskAffect | None) -> dict[str, dict[str, Any]]:
    """Modality -> pretrained-encoder spec of a model, of its settings or of the checkpoint they name.

    Front doors ask this before reading corpora: a model whose text encoder reads raw
    transcripts takes published text corpora without features (``CorpusSource.load(raw_text=True)``),
    and one whose encoders train gets ``ENCODER_TRAINING_DEFAULTS``.

    Examples:
        >>> model_encoders({"hidden_size": 16})
        {}
    """
    if model is None:
        return {}
    if isinstance(model, MTAffectForMultiTaskAffect):
        return dict(model.config.pretrained_encoders)
    if model.get("from_pretrained"):
        try:
            config = MTAffectConfig.from_pretrained(model["from_pretrained"])
        except (OSError, ValueError):
            return {}  # load_model, called later, says what is wrong with the checkpoint
        return dict(config.pretrained_encoders)
    encoders = model.get("pretrained_encoders") or {}
    if not isinstance(encoders, Mapping):
        return {}  # MTAffectConfig's own check names the problem
    return {m: ({"name_or_path": spec} if isinstance(spec, str) else dict(spec)) for m, spec in encoders.items()}


def trains_an_encoder(encoders: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether one of these encoder specs trains (``full`` by default, ``lora``, ``top-K``)."""
    return any(spec.get("finetune", "full") != "frozen" for spec in encoders.values())


def training_arguments(
    settings: Mapping[str, Any] | None = None,
    extra: Sequence[str] = (),
    evaluation: bool = True,
    encoders: bool = False,
) -> MultiTaskTrainingArguments:
    """``MultiTaskTrainingArguments`` from ``TRAINING_DEFAULTS`` updated by ``settings``.

    Args:
        settings: any ``MultiTaskTrainingArguments`` fields (``output_dir`` among them).
        extra: raw ``--flag value`` tokens (what follows ``--`` on ``mtaffect train``), parsed
            by ``HfArgumentParser`` after ``settings``.
        evaluation: whether there is evaluation data. Without it the defaults that need it
            (evaluate and keep the best epoch) are switched off; asking for them explicitly
            is an error.
        encoders: the model fine-tunes a pretrained encoder: ``ENCODER_TRAINING_DEFAULTS``
            update the defaults (``settings`` still win).
    """
    user = dict(settings or {})
    for name in LOSS_SETTINGS:
        if name in user:
            raise ValueError(
                f"training.{name} is a loss setting: the model config owns it (model.{name} in a config "
                f"file, MTAffectConfig({name}=...) in Python)."
            )
    merged = {**TRAINING_DEFAULTS, **(ENCODER_TRAINING_DEFAULTS if encoders else {}), **user}
    if "eval_strategy" in user and "save_strategy" not in user:
        # load_best_model_at_end (a default) needs checkpoints where the evaluations are.
        merged["save_strategy"] = user["eval_strategy"]
        if "eval_steps" in user and "save_steps" not in user:
            merged["save_steps"] = user["eval_steps"]
    if not evaluation:
        for key, off in _WITHOUT_EVALUATION.items():
            if key not in user:
                merged[key] = off
            elif user[key] not in (None, False, "no"):
                raise ValueError(f"training.{key}={user[key]!r} needs evaluation data, but no corpus has an eval split.")
    # Pinned memory only helps copies to an accelerator; without one torch warns per loader.
    merged.setdefault("dataloader_pin_memory", torch.cuda.is_available())
    tokens = [token for token in extra if token != "--"]
    if not tokens:
        return MultiTaskTrainingArguments(**{key: value for key, value in merged.items() if value is not None})
    argv: list[str] = []
    for key, value in merged.items():
        if value is None:
            continue
        argv.append(f"--{key}")
        if isinstance(value, bool):
            argv.append(str(value).lower())
        elif isinstance(value, Mapping):
            argv.append(json.dumps(value))
        elif isinstance(value, (list, tuple)):
            argv.extend(str(item) for item in value)
        else:
            argv.append(str(getattr(value, "value", value)))
    try:
        (arguments,) = HfArgumentParser(MultiTaskTrainingArguments).parse_args_into_dataclasses(
            args=argv + tokens, look_for_args_file=False
        )
    except SystemExit as exit_:
        raise ValueError(f"invalid training arguments {tokens} (see the message above).") from exit_
    return arguments


def build_model(
    corpora: Mapping[str, Any],
    tasks: Sequence[str] | None = None,
    model: Mapping[str, Any] | None = None,
) -> MTAffectForMultiTaskAffect:
    """A fresh model whose feature sets (and, by default, tasks) are those of ``corpora``.

    ``model`` holds ``MTAffectConfig`` arguments, loss settings included
    (``task_loss_weights`` may be given as ``"sarcasm=0.5"``); ``from_pretrained`` there
    loads a checkpoint to fine-tune instead, whose loss settings (``LOSS_SETTINGS``) may be
    changed next to it.
    """
    settings = dict(model or {})
    if "task_loss_weights" in settings:
        settings["task_loss_weights"] = parse_task_loss_weights(settings["task_loss_weights"])
    pretrained = settings.pop("from_pretrained", None)
    if pretrained:
        architecture = sorted(set(settings) - set(LOSS_SETTINGS))
        if architecture:
            raise ValueError(
                f"model.from_pretrained cannot be combined with the architecture settings {architecture} "
                f"(only loss settings {list(LOSS_SETTINGS)} may change for fine-tuning)."
            )
        loaded = load_model(pretrained)
        if settings:
            # Validated by the config's own checks before the loaded config takes them.
            checked = MTAffectConfig(**{**loaded.config.to_dict(), **settings})
            for name in settings:
                setattr(loaded.config, name, getattr(checked, name))
        return loaded
    config = MTAffectConfig.from_corpora(dict(corpora), tasks=None if tasks is None else list(tasks), **settings)
    return MTAffectForMultiTaskAffect.from_encoders(config)  # loads the pretrained encoders' weights, if any


def _check_context_inputs(model: MTAffectForMultiTaskAffect, train: Mapping[str, Any]) -> None:
    """A model with ``config.context`` needs training corpora that carry context turns (else it would
    silently learn only its "no context" embedding)."""
    context = getattr(model.config, "context", None) or {}
    if not (context.get("past") or context.get("future")):
        return
    from mtaffect.data.context import has_context

    if not any(has_context(split) for split in train.values()):
        raise ValueError(
            f"The model reads context ({context}), but no training corpus ({', '.join(train)}) has context columns: "
            "load them with context={'past': K} (load_corpus, a study's corpus options, mtaffect train "
            "--context-past), or drop model.context."
        )


# --------------------------------------------------------------------------------------------
# Fitting


@dataclass
class Fitted:
    """What ``fit`` returns: the trainer (its model is the best epoch's) and its metrics."""

    trainer: MultiTaskTrainer
    train_metrics: dict[str, float]
    eval_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def model(self) -> MTAffectForMultiTaskAffect:
        return self.trainer.model


def fit(
    train: Mapping[str, Any],
    eval: Mapping[str, Any] | None = None,
    test: Mapping[str, Any] | None = None,
    *,
    output_dir: str | os.PathLike,
    model: Mapping[str, Any] | MTAffectForMultiTaskAffect | None = None,
    tasks: Sequence[str] | None = None,
    training: Mapping[str, Any] | MultiTaskTrainingArguments | None = None,
    extra_arguments: Sequence[str] = (),
    config_corpora: Mapping[str, Any] | None = None,
    callbacks: list[Any] | None = None,
    resume_from_checkpoint: str | bool | None = None,
    quiet: bool = False,
    prepare: Any = None,
    compute_metrics: Any = None,
) -> Fitted:
    """Train one model with ``MultiTaskTrainer`` and score it on ``eval`` and ``test``.

    Args:
        train: corpus name -> training split.
        eval: corpus name -> validation split; the best epoch on ``eval_combined_score`` is
            kept (``TRAINING_DEFAULTS``). ``None`` or empty: the last epoch.
        test: corpus name -> test split, scored once after training (``test_*`` metrics).
        output_dir: the Trainer's folder (checkpoints, logs).
        model: ``MTAffectConfig`` arguments for a fresh model (see ``build_model``), or a model.
        tasks: enabled tasks of a fresh model (default: those with gold labels in the corpora).
        training: ``MultiTaskTrainingArguments`` (used as they are) or fields updating
            ``TRAINING_DEFAULTS`` (``output_dir`` comes from the argument above).
        extra_arguments: raw ``--flag value`` tokens for ``HfArgumentParser``.
        config_corpora: corpora the fresh model's feature sets come from (default: ``train``).
        callbacks: Trainer callbacks (e.g. ``EarlyStoppingCallback``).
        resume_from_checkpoint: passed to ``Trainer.train``.
        quiet: no Trainer progress lines (callers that report progress themselves).
        prepare: called with the fresh model before training (e.g. to record what it is).
        compute_metrics: the Trainer's ``compute_metrics`` (default: ``make_compute_metrics()``),
            e.g. ``make_compute_metrics(include_counts=True)`` to add predicted-class counts.
    """
    eval = {name: split for name, split in (eval or {}).items() if split is not None and len(split)} or None
    test = {name: split for name, split in (test or {}).items() if split is not None and len(split)} or None
    if isinstance(training, MultiTaskTrainingArguments):
        args = training
    else:
        settings = {**dict(training or {}), "output_dir": str(output_dir)}
        encoders = trains_an_encoder(model_encoders(model))
        args = training_arguments(settings, extra_arguments, evaluation=eval is not None, encoders=encoders)
    # The Trainer seeds only models it builds itself (model_init); a fresh model is seeded here.
    set_seed(args.seed)
    if not isinstance(model, MTAffectForMultiTaskAffect):
        model = build_model(config_corpora or train, tasks, model)
    _check_context_inputs(model, train)
    if prepare is not None:
        prepare(model)
    trainer = MultiTaskTrainer(model=model, args=args, train_dataset=dict(train), eval_dataset=eval, callbacks=callbacks,
                               compute_metrics=compute_metrics)
    if quiet:
        trainer.remove_callback(PrinterCallback)
    result = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    fitted = Fitted(trainer, dict(result.metrics))
    if eval:
        fitted.eval_metrics = trainer.evaluate()
    if test:
        fitted.test_metrics = trainer.evaluate(eval_dataset=test, metric_key_prefix="test")
    return fitted
