"""Teachers: single-task models trained on the corpora that carry a task's gold labels.

A teacher is an ordinary ``MTAffectForMultiTaskAffect``
with one task enabled, trained with the same ``MultiTaskTrainer``
as every other model (train splits for training, validation splits for model selection
through ``eval_combined_score``), saved with ``save_pretrained``. Its config also records
what ``mtaffect.data.weak_labels.add_weak_labels`` needs to use it
(``config.mtaffect_teacher[task]``: training corpora, the feature sets and modalities it
was trained on, and for emotion the labels it knows and whether it is multi-label).

A teacher only labels corpora of a feature set it was trained on (its input projection is
per feature set), so the corpora it will label can be named up front (``label_corpora``)
and are checked before any training starts.

Examples:
    >>> from mtaffect.data.corpora.synthetic import make_synthetic_family  # doctest: +SKIP
    >>> family = make_synthetic_family(size_scale=0.2)                      # doctest: +SKIP
    >>> path = train_teacher("sentiment", family, "teachers/sentiment",
    ...                      label_corpora={"synthetic_iemocap": family["synthetic_iemocap"]},
    ...                      training_args={"num_train_epochs": 5})          # doctest: +SKIP
    >>> from mtaffect.data.weak_labels import add_weak_labels              # doctest: +SKIP
    >>> iemocap = add_weak_labels(family["synthetic_iemocap"], path, "sentiment")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict

from mtaffect.data.weak_labels import (
    TeacherError,
    check_teacher_for_dataset,
    record_teacher,
    teacher_record_from_corpora,
)
from mtaffect.tasks import check_task

logger = logging.getLogger(__name__)

#: Training defaults of a teacher; ``training_args`` given as a dict update them.
TEACHER_TRAINING_DEFAULTS: dict[str, Any] = {
    "num_train_epochs": 10,
    "learning_rate": 1e-3,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 128,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "load_best_model_at_end": True,
    "metric_for_best_model": "combined_score",
    "greater_is_better": True,
    "save_total_limit": 1,
    "logging_strategy": "epoch",
    "report_to": "none",
    "seed": 0,
}


def train_teacher(
    task: str,
    corpora: Mapping[str, DatasetDict],
    output_dir: str | Path,
    label_corpora: Mapping[str, Dataset | DatasetDict] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    training_args: Any = None,
    keep_checkpoints: bool = False,
    callbacks: list[Any] | None = None,
) -> Path:
    """Train a single-task teacher for ``task`` and save it to ``output_dir``.

    Args:
        task: ``"emotion"``, ``"sentiment"`` or ``"sarcasm"``.
        corpora: corpus name -> ``DatasetDict`` with a ``train`` (and ideally a
            ``validation``) split. Corpora without gold ``task`` labels in ``train`` are
            skipped (so a whole family can be passed); at least one must have them.
        output_dir: where the teacher is saved (``save_pretrained``); must not hold a
            ``config.json`` already.
        label_corpora: corpora the teacher will label. Their feature sets (name and dims)
            must be ones the teacher is trained on: checked before training, a
            ``TeacherError`` otherwise.
        model_kwargs: ``MTAffectConfig`` arguments
            (``hidden_size``, ``encoder_type``...); feature sets and ``tasks`` come from the
            corpora. A multi-label emotion teacher defaults to ``emotion_pos_weight="balanced"``.
        training_args: a ``MultiTaskTrainingArguments`` (used as
            is), or a dict of its fields updating ``TEACHER_TRAINING_DEFAULTS``
            (``output_dir`` then defaults to ``<output_dir>/checkpoints``).
        keep_checkpoints: keep the Trainer's checkpoint folder of a dict/default
            ``training_args`` (removed after the final save otherwise).
        callbacks: Trainer callbacks (e.g. ``EarlyStoppingCallback``).

    Returns:
        ``Path(output_dir)``, a checkpoint ``add_weak_labels`` and ``from_pretrained`` load.
    """
    from transformers import set_seed

    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
    from mtaffect.training import MultiTaskTrainer, MultiTaskTrainingArguments

    check_task(task)
    output = Path(output_dir)
    if (output / "config.json").exists():
        raise FileExistsError(f"{output} already holds a model (config.json): choose a new folder.")
    gold = _corpora_with_gold(task, corpora)
    record = teacher_record_from_corpora(task, gold)

    kwargs = dict(model_kwargs or {})
    if task == "emotion" and record.emotion_multilabel:
        kwargs.setdefault("emotion_pos_weight", "balanced")
    for reserved in ("tasks", "feature_sets"):
        if reserved in kwargs:
            raise ValueError(f"model_kwargs[{reserved!r}] is set by train_teacher (from task and corpora).")
    validation = {name: corpus["validation"] for name, corpus in gold.items() if "validation" in corpus}
    if isinstance(training_args, MultiTaskTrainingArguments):
        args, owned_checkpoints = training_args, None
    else:
        settings = {**TEACHER_TRAINING_DEFAULTS, **dict(training_args or {})}
        settings.setdefault("output_dir", str(output / "checkpoints"))
        if not validation:
            logger.warning("No validation split in %s: the teacher is the last epoch's model.", sorted(gold))
            settings.update(eval_strategy="no", load_best_model_at_end=False)
        args = MultiTaskTrainingArguments(**settings)
        owned_checkpoints = Path(args.output_dir)

    config = MTAffectConfig.from_corpora(gold, tasks=[task], **kwargs)
    set_seed(args.seed)  # the Trainer seeds only models it builds itself (model_init)
    model = MTAffectForMultiTaskAffect(config)
    record_teacher(model, record)
    for name, corpus in (label_corpora or {}).items():
        for split in corpus.values() if isinstance(corpus, DatasetDict) else [corpus]:
            try:
                check_teacher_for_dataset(model, record, split)
            except TeacherError as error:
                raise TeacherError(f"label_corpora[{name!r}]: {error}") from None

    trainer = MultiTaskTrainer(
        model=model,
        args=args,
        train_dataset={name: corpus["train"] for name, corpus in gold.items()},
        eval_dataset=validation or None,
        callbacks=callbacks,
    )
    trainer.train()
    if validation:
        metrics = trainer.evaluate()
        record.notes = {"validation": {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}}
    record_teacher(trainer.model, record)
    trainer.save_model(str(output))
    if owned_checkpoints is not None and not keep_checkpoints and trainer.is_world_process_zero():
        shutil.rmtree(owned_checkpoints, ignore_errors=True)
    logger.info("%s teacher trained on %s saved to %s.", task, ", ".join(gold), output)
    return output


def _corpora_with_gold(task: str, corpora: Mapping[str, DatasetDict]) -> dict[str, DatasetDict]:
    import numpy as np

    gold: dict[str, DatasetDict] = {}
    for name, corpus in corpora.items():
        if not isinstance(corpus, DatasetDict) or "train" not in corpus:
            raise TeacherError(
                f"Corpus {name!r} must be a DatasetDict with a 'train' split (got "
                f"{type(corpus).__name__}{' with splits ' + str(sorted(corpus)) if isinstance(corpus, DatasetDict) else ''})."
            )
        mask = np.asarray(corpus["train"].with_format("numpy")[f"{task}_mask"], dtype=bool)
        if mask.any():
            gold[name] = corpus
        else:
            logger.info("Corpus %s has no gold %s label: not a %s teacher corpus.", name, task, task)
    if not gold:
        raise TeacherError(
            f"None of the corpora {sorted(corpora)} has gold {task} labels in its train split: a "
            f"{task} teacher needs at least one corpus annotated for {task}."
        )
    return gold
