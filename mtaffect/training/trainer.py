"""``MultiTaskTrainer``: the stock ``transformers.Trainer`` over several corpora at once.

Users keep everything the Trainer does (progress bars, ``report_to``, checkpoints and
exact resume, ``push_to_hub``, mixed precision, gradient accumulation, ``accelerate``
multi-GPU). The subclass overrides only:

* ``__init__`` -- ``train_dataset`` / ``eval_dataset`` are dicts corpus name -> ``Dataset``
  (a ``DatasetDict`` works), the default collator batches each feature set with its own
  dims, per-corpus metrics are on by default, and the arguments' loss settings are written
  into ``model.config``;
* ``train`` -- ``min_steps`` (at least that many optimisation steps) becomes ``max_steps``
  where ``num_train_epochs`` would give fewer;
* ``get_train_dataloader`` -- a ``MultiCorpusBatchSampler``
  over a ``CorpusConcatDataset``, rank-aware, so
  accelerate's own batch sharding is switched off for it (as the Trainer does for its
  ``BatchRebalanceSampler``);
* ``compute_loss`` / ``log`` -- each head's gold and weak loss (``MTAffectOutput.task_losses``)
  is summed on device and logged as ``loss_<task>/<space>`` / ``loss_<task>/<space>_weak`` next to ``loss``,
  averaged over the batches since the last log that had labels for that term (one
  host sync per log, not per step);
* ``prediction_step`` -- predictions and labels travel as dicts keyed by head name
  (``"sentiment/polarity"``) and label column, so ``compute_metrics`` receives them by name
  whatever heads the model has;
* ``create_optimizer`` / ``create_scheduler`` -- with ``encoder_learning_rate`` /
  ``encoder_warmup_steps``, the pretrained encoders' weights form their own parameter
  groups with their own rate and warm-up (same optimizer, same schedule shape);
* ``evaluate`` -- with a dict of eval corpora, each corpus gets its metrics under
  ``eval_<corpus>_<metric>``; the aggregate ``eval_combined_score`` (mean over corpora of
  ``mtaffect.metrics.primary_score``, higher is better) and ``eval_loss`` (mean of the
  corpus losses) are added, logged once and passed to callbacks once, so they work as
  ``metric_for_best_model`` and with ``EarlyStoppingCallback``.

Examples:
    >>> from mtaffect import make_synthetic_family                        # doctest: +SKIP
    >>> from mtaffect.configuration_mtaffect import MTAffectConfig        # doctest: +SKIP
    >>> from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect  # doctest: +SKIP
    >>> family = make_synthetic_family(size_scale=0.2)                     # doctest: +SKIP
    >>> model = MTAffectForMultiTaskAffect(MTAffectConfig.from_corpora(family, hidden_size=32))  # doctest: +SKIP
    >>> args = MultiTaskTrainingArguments("out", corpus_sampling="temperature", eval_strategy="epoch",
    ...                                   metric_for_best_model="combined_score", num_train_epochs=3)  # doctest: +SKIP
    >>> trainer = MultiTaskTrainer(model, args,
    ...     train_dataset={name: corpus["train"] for name, corpus in family.items()},
    ...     eval_dataset={name: corpus["validation"] for name, corpus in family.items()})  # doctest: +SKIP
    >>> trainer.train()                                                    # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from datasets import Dataset as HFDataset
from torch import nn
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import seed_worker, speed_metrics

from mtaffect.data.collator import MTAffectCollator, label_columns_read
from mtaffect.data.schema import LABEL_COLUMNS, MODALITIES, feature_column, feature_dims, get_corpus_info
from mtaffect.metrics import (
    GOLD_LABEL_COLUMNS,
    OUTPUT_NAMES,
    PRIMARY_SCORE_KEY,
    make_compute_metrics,
    metric_key,
    primary_score,
)
from mtaffect.tasks import EMOTION_LABELS
from mtaffect.training.arguments import MultiTaskTrainingArguments
from mtaffect.training.sampler import CorpusConcatDataset, MultiCorpusBatchSampler

logger = logging.getLogger(__name__)

#: Name of the aggregate evaluation metric (logged as ``eval_combined_score``).
COMBINED_SCORE = "combined_score"


def loss_terms(model: Any) -> tuple[str, ...]:
    """The loss terms logged per head, in a fixed order (every process reduces the same tensor)."""
    heads = list(getattr(getattr(model, "config", None), "label_spaces", None) or ())
    return tuple(term for head in heads for term in (head, f"{head}_weak"))

__all__ = ["COMBINED_SCORE", "FeatureSetCollator", "MultiTaskTrainer"]


class FeatureSetCollator:
    """Collate each batch with the ``MTAffectCollator`` of its feature set.

    A batch never mixes feature sets, but corpora with different extractors have
    different dims; the dims matter when every sequence of a modality in a batch is empty.
    Unknown feature sets fall back to a collator that infers dims from the batch.

    Examples:
        >>> collator = FeatureSetCollator({"cmu": MTAffectCollator(feature_dims={"text": 300})})
        >>> sorted(collator.collators)
        ['cmu']
    """

    def __init__(self, collators: Mapping[str, MTAffectCollator], default: MTAffectCollator | None = None) -> None:
        self.collators = dict(collators)
        self.default = default or MTAffectCollator()

    @classmethod
    def for_datasets(cls, datasets: Iterable[Any], **kwargs: Any) -> FeatureSetCollator:
        """One collator per feature set of ``datasets`` (unified-schema ``Dataset`` objects)."""
        dims_by_set: dict[str, dict[str, int]] = {}
        for dataset in datasets:
            dims = feature_dims(dataset.features)
            for feature_set in _feature_sets_of(dataset):
                known = dims_by_set.setdefault(feature_set, {})
                for modality, dim in dims.items():
                    # Corpora of one feature set may lack a modality, but never disagree on a dim.
                    if known.setdefault(modality, dim) != dim:
                        raise ValueError(
                            f"Feature set {feature_set!r} has {modality} dim {known[modality]} in one dataset "
                            f"and {dim} in another; corpora extracted differently need different feature_set names."
                        )
        collators = {name: MTAffectCollator(feature_dims=dims, **kwargs) for name, dims in dims_by_set.items()}
        return cls(collators, default=MTAffectCollator(**kwargs))

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if not rows:
            raise ValueError("Cannot collate an empty batch.")
        collator = self.collators.get(str(rows[0].get("feature_set", "")), self.default)
        present = [{column for column in _FEATURE_COLUMNS if column in row} for row in rows]
        union = set().union(*present)
        if any(columns != union for columns in present):
            # A mixed batch of corpora that share a feature set but not every modality (MELD
            # has no visual features, MOSEI has): the lacking rows get an empty sequence, which
            # the model treats as a missing modality, exactly as for a corpus without it.
            rows = [_with_empty(row, union - columns, collator.feature_dims) for row, columns in zip(rows, present)]
        return collator(rows)


_FEATURE_COLUMNS = tuple(feature_column(modality) for modality in MODALITIES)


def _with_empty(row: Mapping[str, Any], columns: set[str], dims: Mapping[str, int]) -> dict[str, Any]:
    filled = dict(row)
    for column in columns:
        modality = column[: -len("_features")]
        if modality not in dims:
            raise ValueError(
                f"Rows of one batch differ in {column!r} and the collator does not know its dim; "
                "build the collator with FeatureSetCollator.for_datasets(...)."
            )
        filled[column] = np.zeros((0, dims[modality]), dtype=np.float32)
    return filled


def _feature_sets_of(dataset: Any) -> list[str]:
    """The feature sets a unified dataset holds (normally exactly one)."""
    info = get_corpus_info(dataset)
    if info.feature_set not in ("", "unknown"):
        return [info.feature_set]
    if "feature_set" not in dataset.column_names:
        raise ValueError(
            "A dataset has no 'feature_set' column: MultiTaskTrainer needs unified-schema corpora "
            "(mtaffect.data.schema); load them with an mtaffect loader."
        )
    return sorted(str(name) for name in dataset.unique("feature_set"))


class _SamplerEpochCallback(TrainerCallback):
    """Point the batch sampler at the epoch about to run.

    ``Trainer._run_epoch`` calls ``set_epoch`` through accelerate's wrappers, but when it
    resumes mid-epoch under DDP the sampler sits below ``SkipBatchSampler`` and
    ``BatchSamplerShard``, which forward nothing. ``state.epoch`` at ``on_epoch_begin`` is
    the index of that epoch (it is restored from the checkpoint on resume), so setting it
    here keeps the resumed order exact on any number of processes.
    """

    def __init__(self, trainer: MultiTaskTrainer) -> None:
        self.trainer = trainer

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        sampler = self.trainer.train_batch_sampler
        if sampler is not None:
            sampler.set_epoch(int(math.floor(state.epoch or 0.0)))


class MultiTaskTrainer(Trainer):
    """``Trainer`` for multi-task affect models over a dict of corpora (see the module docstring).

    Args:
        model: an ``MTAffectForMultiTaskAffect`` (any model taking the collator's batches and
            returning ``loss`` and, optionally, ``task_losses`` works).
        args: `MultiTaskTrainingArguments`. Plain ``TrainingArguments`` are not accepted,
            because the sampling settings live in the subclass (loss settings live in the model config).
        train_dataset: `dict[str, Dataset]`. Corpus name -> training split (unified schema).
            A single ``Dataset`` is treated as one corpus.
        eval_dataset: `dict[str, Dataset]` or `Dataset`. A dict gives
            per-corpus metrics ``eval_<corpus>_<metric>`` plus ``eval_combined_score``.
        data_collator: Defaults to ``FeatureSetCollator`` over all datasets.
        compute_metrics: Defaults to ``mtaffect.metrics.make_compute_metrics``;
            it receives ``EvalPrediction`` whose ``predictions`` is a dict output name ->
            array and ``label_ids`` a dict label column -> array. Pass ``False`` for loss only.
        **kwargs: any other ``Trainer`` argument (callbacks, optimizers, model_init...).
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        args: MultiTaskTrainingArguments | None = None,
        data_collator: Callable[..., Any] | None = None,
        train_dataset: Mapping[str, Any] | Any | None = None,
        eval_dataset: Mapping[str, Any] | Any | None = None,
        compute_metrics: Callable[..., dict[str, float]] | bool | None = None,
        **kwargs: Any,
    ) -> None:
        if args is None:
            args = MultiTaskTrainingArguments(output_dir="trainer_output")
        if not isinstance(args, MultiTaskTrainingArguments):
            raise TypeError(
                f"MultiTaskTrainer needs MultiTaskTrainingArguments, got {type(args).__name__}: build "
                "MultiTaskTrainingArguments(...) with the same fields (it subclasses TrainingArguments)."
            )
        if args.remove_unused_columns:
            logger.warning("remove_unused_columns=True would drop label columns; MultiTaskTrainer sets it to False.")
            args.remove_unused_columns = False
        # The label columns its model reads (None: every one, for a collator of the caller's).
        self._label_columns = label_columns_of(model) if data_collator is None else None
        train_dataset = self._reading(_as_corpora(train_dataset, "train_dataset")) if train_dataset is not None else None
        if isinstance(eval_dataset, Mapping):
            eval_dataset = self._reading(_as_corpora(eval_dataset, "eval_dataset"))
        elif eval_dataset is not None:
            eval_dataset = _numpy_format(eval_dataset)
        encoders = getattr(getattr(model, "config", None), "pretrained_encoders", None) or {}
        if encoders and args.cache_frozen_encoders:
            from mtaffect.training.encoder_cache import cache_frozen_encoder_states

            size = args.per_device_eval_batch_size
            if train_dataset is not None:
                train_dataset = {n: cache_frozen_encoder_states(model, d, size) for n, d in train_dataset.items()}
            if isinstance(eval_dataset, Mapping):
                eval_dataset = {n: cache_frozen_encoder_states(model, d, size) for n, d in eval_dataset.items()}
            elif eval_dataset is not None:
                eval_dataset = cache_frozen_encoder_states(model, eval_dataset, size)
        if data_collator is None:
            datasets = list((train_dataset or {}).values())
            if isinstance(eval_dataset, Mapping):
                datasets += list(eval_dataset.values())
            elif eval_dataset is not None:
                datasets.append(eval_dataset)
            data_collator = FeatureSetCollator.for_datasets(datasets, label_columns=self._label_columns)
            if encoders:
                from mtaffect.data.raw_inputs import EncoderInputCollator

                # Raw text / audio go through the encoders' own tokenizer / feature extractor.
                data_collator = EncoderInputCollator.for_model(model, base=data_collator)
        if compute_metrics is None:
            compute_metrics = self._model_metrics
        elif compute_metrics is False:
            compute_metrics = None
        self.train_batch_sampler: MultiCorpusBatchSampler | None = None
        self._loss_terms = loss_terms(model)
        self._loss_sums: torch.Tensor | None = None
        self._loss_counts = [0] * len(self._loss_terms)
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            compute_metrics=compute_metrics,
            **kwargs,
        )
        if not self._loss_terms and self.model is not None:  # built by model_init
            self._loss_terms = loss_terms(self.model)
            self._loss_counts = [0] * len(self._loss_terms)
        if self.args.label_names is None:
            # Every batch carries the gold columns of the model's tasks (masked where unknown),
            # which the metrics need.
            read = self._label_columns
            self.label_names = [name for name in GOLD_LABEL_COLUMNS if read is None or name in read]
        self.add_callback(_SamplerEpochCallback(self))
        # Hyperparameters and evaluation results flow into the generated model card.
        from mtaffect.modelcard import ModelCardCallback

        self.add_callback(ModelCardCallback(self))

    def _reading(self, datasets: dict[str, Any]) -> dict[str, Any]:
        """Each dataset read without the label columns the model does not read (``label_columns_of``)."""
        if self._label_columns is None:
            return datasets
        return {name: _without_labels(dataset, self._label_columns) for name, dataset in datasets.items()}

    def _model_metrics(self, eval_prediction: Any) -> dict[str, float]:
        """The default ``compute_metrics``: read outputs by the heads of the model being evaluated."""
        config = getattr(self.model, "config", None)
        compute = make_compute_metrics(
            label_spaces=getattr(config, "label_spaces", None),
            emotion_labels=getattr(config, "emotion_labels", None) or EMOTION_LABELS,
        )
        return compute(eval_prediction)


    def create_model_card(self, **kwargs: Any) -> None:
        """Write mtaffect's card (not transformers' generic one) into ``output_dir`` before a push."""
        from mtaffect.modelcard import trainer_create_model_card

        trainer_create_model_card(self, **kwargs)

    # ---- optimisation: the pretrained encoders' own learning rate and warm-up -------------

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """The Trainer's optimizer; with ``encoder_learning_rate``, encoder weights get their own groups.

        Each of the Trainer's groups (with / without weight decay) is split into its encoder
        and other parameters; encoder groups carry ``lr=encoder_learning_rate`` and are marked
        ``mtaffect_encoder=True`` for ``create_scheduler``.
        """
        optimizer = super().create_optimizer(model)
        if self.args.encoder_learning_rate is None or getattr(self, "_encoder_groups_made", False):
            return optimizer
        opt_model = self.model if model is None else model
        encoder_ids = {id(p) for n, p in opt_model.named_parameters() if _is_encoder_parameter(n)}
        if not encoder_ids:
            logger.warning("encoder_learning_rate is set but the model has no pretrained encoder; it is ignored.")
            return optimizer
        groups = []
        for group in optimizer.param_groups:
            options = {k: v for k, v in group.items() if k not in ("params", "lr", "initial_lr")}
            rest = [p for p in group["params"] if id(p) not in encoder_ids]
            inside = [p for p in group["params"] if id(p) in encoder_ids]
            if rest:
                groups.append({**options, "params": rest})
            if inside:
                groups.append({**options, "params": inside, "lr": self.args.encoder_learning_rate, "mtaffect_encoder": True})
        # Rebuilt the way Trainer.create_optimizer builds it, from the same class and arguments.
        if self.optimizer_cls_and_kwargs is not None:
            optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs
        else:
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        if not isinstance(optimizer_cls, type) or {"params", "model"} & set(optimizer_kwargs):
            logger.warning(f"encoder_learning_rate is not supported with optim={self.args.optim!r}; it is ignored.")
            return optimizer
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        self._encoder_groups_made = True
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None) -> Any:
        """The Trainer's schedule; encoder groups warm up over ``encoder_warmup_steps`` when it is set."""
        created = self.lr_scheduler is None
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        if not created or self.args.encoder_warmup_steps is None:
            return scheduler
        optimizer = optimizer if optimizer is not None else self.optimizer
        encoder_groups = [i for i, g in enumerate(optimizer.param_groups) if g.get("mtaffect_encoder")]
        lambdas = getattr(scheduler, "lr_lambdas", None)
        if not encoder_groups:
            logger.warning("encoder_warmup_steps needs encoder_learning_rate (encoder parameter groups); it is ignored.")
            return scheduler
        if lambdas is None:
            logger.warning(f"encoder_warmup_steps is not supported with lr_scheduler_type={self.args.lr_scheduler_type!r}.")
            return scheduler
        from transformers import get_scheduler

        # The same schedule shape with the encoders' warm-up, built on a throwaway optimizer.
        probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        encoder_lambda = get_scheduler(
            self.args.lr_scheduler_type,
            optimizer=probe,
            num_warmup_steps=self.args.get_encoder_warmup_steps(num_training_steps),
            num_training_steps=num_training_steps,
            scheduler_specific_kwargs=self.args.lr_scheduler_kwargs,
        ).lr_lambdas[0]
        for index in encoder_groups:
            lambdas[index] = encoder_lambda
            optimizer.param_groups[index]["lr"] = scheduler.base_lrs[index] * encoder_lambda(scheduler.last_epoch)
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
        return scheduler

    # ---- training data -----------------------------------------------------------------

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """``Trainer.train``, with ``min_steps`` turned into ``max_steps`` where the epochs give fewer steps."""
        self._apply_min_steps()
        return super().train(*args, **kwargs)

    def _apply_min_steps(self) -> None:
        minimum = getattr(self.args, "min_steps", 0) or 0
        if minimum <= 0 or self.args.max_steps > 0 or self.train_dataset is None:
            return
        batches = len(self.get_train_batch_sampler(CorpusConcatDataset(self.train_dataset)))
        planned = math.ceil(self.args.num_train_epochs * max(batches // self.args.gradient_accumulation_steps, 1))
        if planned >= minimum:
            return
        logger.info("%g epoch(s) give %d steps, fewer than min_steps=%d: training %d steps.",
                    self.args.num_train_epochs, planned, minimum, minimum)
        self.args.max_steps = minimum
        # As many evaluations, checkpoints and logs as the epochs asked for, spread over the budget
        # (per epoch, a 24-row corpus would evaluate and save at every step).
        interval = max(math.ceil(minimum / max(self.args.num_train_epochs, 1)), 1)
        for strategy, steps in (("eval_strategy", "eval_steps"), ("save_strategy", "save_steps"),
                                ("logging_strategy", "logging_steps")):
            if getattr(getattr(self.args, strategy), "value", getattr(self.args, strategy)) == "epoch":
                setattr(self.args, strategy, type(getattr(self.args, strategy))("steps"))
                setattr(self.args, steps, interval)

    def get_train_batch_sampler(self, dataset: CorpusConcatDataset) -> MultiCorpusBatchSampler:
        """The batch sampler of the training corpora; override to change the sampling."""
        args = self.args
        if getattr(args, "train_sampling_strategy", "random") != "random":
            logger.warning(
                f"train_sampling_strategy={args.train_sampling_strategy!r} is ignored: MultiTaskTrainer draws "
                "batches with MultiCorpusBatchSampler (see corpus_sampling and batch_composition)."
            )
        feature_sets = {}
        for name, corpus in zip(dataset.names, dataset.datasets):
            sets = _feature_sets_of(corpus)
            if len(sets) != 1:
                raise ValueError(
                    f"Training corpus {name!r} holds several feature sets {sets}; split it by feature set "
                    "(e.g. corpus.filter(lambda r: r['feature_set'] == ...)) so each batch has one."
                )
            feature_sets[name] = sets[0]
        return MultiCorpusBatchSampler(
            dataset.corpus_sizes(),
            batch_size=self._train_batch_size,
            sampling=args.corpus_sampling,
            temperature=args.sampling_temperature,
            composition=args.batch_composition,
            feature_sets=feature_sets,
            drop_last=args.dataloader_drop_last,
            seed=args.data_seed if args.data_seed is not None else args.seed,
            num_replicas=self.accelerator.num_processes,
            rank=self.accelerator.process_index,
        )

    def get_train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            raise ValueError("MultiTaskTrainer: training needs train_dataset (a dict corpus name -> Dataset).")
        dataset = CorpusConcatDataset(self.train_dataset)
        sampler = self.get_train_batch_sampler(dataset)
        args = self.args
        params: dict[str, Any] = {
            "batch_sampler": sampler,
            "collate_fn": self.data_collator,
            "num_workers": args.dataloader_num_workers,
            "pin_memory": args.dataloader_pin_memory,
            "persistent_workers": args.dataloader_persistent_workers,
            "worker_init_fn": partial(seed_worker, num_workers=args.dataloader_num_workers, rank=args.process_index),
        }
        if args.dataloader_num_workers > 0:
            params["prefetch_factor"] = args.dataloader_prefetch_factor
            if args.dataloader_multiprocessing_context is not None:
                params["multiprocessing_context"] = args.dataloader_multiprocessing_context
        # even_batches=True would pad the epoch with recycled examples; the sampler already
        # gives every rank the same number of batches. Evaluation needs it True again.
        even_batches = self.accelerator.even_batches
        self.accelerator.even_batches = False
        try:
            dataloader = self.accelerator.prepare(DataLoader(dataset, **params))
        finally:
            self.accelerator.even_batches = even_batches
        # The sampler is rank-aware: make accelerate's BatchSamplerShard a pass-through.
        shard = getattr(dataloader, "batch_sampler", None)
        if shard is not sampler and getattr(shard, "batch_sampler", None) is sampler:
            shard.num_processes = 1
            shard.process_index = 0
        self.train_batch_sampler = sampler
        return dataloader

    # ---- loss logging ------------------------------------------------------------------

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        loss, outputs = super().compute_loss(
            model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
        )
        if model.training:
            task_losses = outputs.get("task_losses") if isinstance(outputs, Mapping) else None
            if task_losses:
                self._accumulate_task_losses(task_losses, loss)
        return (loss, outputs) if return_outputs else loss

    def _accumulate_task_losses(self, task_losses: Mapping[str, torch.Tensor], loss: torch.Tensor) -> None:
        # Sums stay on the device; counts are host ints (presence is known from the dict keys).
        if self._loss_sums is None or self._loss_sums.device != loss.device:
            self._loss_sums = torch.zeros(len(self._loss_terms), device=loss.device, dtype=torch.float32)
        present = [i for i, term in enumerate(self._loss_terms) if term in task_losses]
        if not present:
            return
        values = torch.stack([task_losses[self._loss_terms[i]].detach().float() for i in present])
        self._loss_sums.index_add_(0, torch.tensor(present, device=loss.device), values)
        for i in present:
            self._loss_counts[i] += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add ``loss_<head>`` / ``loss_<head>_weak`` to the training logs (every process reduces)."""
        if "loss" in logs and self.model is not None and self._loss_terms:
            device = self.args.device
            sums = self._loss_sums.to(device) if self._loss_sums is not None else torch.zeros(len(self._loss_terms), device=device)
            totals = torch.stack([sums, torch.tensor(self._loss_counts, dtype=torch.float32, device=device)])
            if self.accelerator.num_processes > 1:
                totals = self.accelerator.reduce(totals, reduction="sum")
            totals = totals.cpu().numpy()
            for i, term in enumerate(self._loss_terms):
                if totals[1, i] > 0:
                    logs[f"loss_{term}"] = round(float(totals[0, i] / totals[1, i]), 6)
            if self._loss_sums is not None:
                self._loss_sums.zero_()
            self._loss_counts = [0] * len(self._loss_terms)
        super().log(logs, start_time)

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        """0: the stock estimate counts ``input_ids`` tokens, which feature batches do not have.

        ``PreTrainedModel.floating_point_ops`` would return 0 as well, after walking every
        parameter each step (~4 ms a step on CPU in ``benchmarks/train_throughput.py``).
        """
        return 0

    # ---- evaluation --------------------------------------------------------------------

    def prediction_step(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor] | None, dict[str, torch.Tensor] | None]:
        """Loss, predictions by head name and labels by column name (dicts, not tuples).

        The heads depend on the config, so positions in a tuple would too; names do not.
        """
        inputs = self._prepare_inputs(inputs)
        missing = [name for name in self.label_names if name not in inputs]
        if missing:
            raise ValueError(
                f"An evaluation batch lacks label columns {missing}: every batch must carry every label "
                "column (masked where unknown), as MTAffectCollator produces."
            )
        with torch.no_grad(), self.compute_loss_context_manager():
            loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
        loss = loss.detach().mean() if loss is not None else None
        if prediction_loss_only:
            return loss, None, None
        ignore = set(ignore_keys or ())
        heads = outputs.get("head_outputs") if isinstance(outputs, Mapping) else None
        if heads is not None:
            predictions = {name: value.detach() for name, value in heads.items() if name not in ignore}
        else:  # a model with the single-head output names
            predictions = {
                name: outputs[name].detach()
                for name in OUTPUT_NAMES
                if name not in ignore and outputs.get(name) is not None
            }
        labels = {name: inputs[name] for name in self.label_names}
        return loss, predictions or None, labels

    def get_eval_dataloader(self, eval_dataset: str | Any | None = None) -> DataLoader:
        """The stock eval dataloader, reading a ``datasets.Dataset`` through the fast Arrow path.

        Same rows in the same order; the ``datasets`` numpy formatter would read them one by
        one, which made evaluation cost as much as training for small models.
        """
        dataset = eval_dataset
        if isinstance(eval_dataset, str):
            dataset = self.eval_dataset[eval_dataset]
        elif eval_dataset is None:
            dataset = self.eval_dataset
        if isinstance(dataset, HFDataset):
            name = eval_dataset if isinstance(eval_dataset, str) else "eval"
            dataset = CorpusConcatDataset({name: _numpy_format(dataset)})
        return super().get_eval_dataloader(dataset)

    def evaluate(
        self,
        eval_dataset: Any | Mapping[str, Any] | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Evaluate; a dict of corpora gives ``<prefix>_<corpus>_*`` metrics plus the aggregates.

        Aggregates: ``<prefix>_combined_score`` (mean over corpora of their primary score,
        ``mtaffect.metrics.primary_score``; absent if no corpus has one) and
        ``<prefix>_loss`` (mean of the per-corpus losses). The whole dict is logged once and
        passed once to ``on_evaluate`` (so ``EarlyStoppingCallback`` sees the aggregate).
        """
        override = eval_dataset is not None
        datasets = eval_dataset if override else self.eval_dataset
        if not isinstance(datasets, Mapping):
            return super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        if override:
            datasets = self._reading(_as_corpora(datasets, "eval_dataset"))
        self._memory_tracker.start()
        metrics: dict[str, float] = {}
        per_corpus: dict[str, dict[str, float]] = {}
        total_batch_size = self.args.eval_batch_size * self.args.world_size
        for name, dataset in datasets.items():
            prefix = metric_key(metric_key_prefix, name)  # the Trainer appends _<metric>
            start_time = time.time()
            dataloader = self.get_eval_dataloader(dataset if override else name)
            output = self.evaluation_loop(
                dataloader,
                description=f"Evaluation on {name}",
                prediction_loss_only=True if self.compute_metrics is None else None,
                ignore_keys=ignore_keys,
                metric_key_prefix=prefix,
            )
            output.metrics.update(
                speed_metrics(
                    prefix,
                    start_time,
                    num_samples=output.num_samples,
                    num_steps=math.ceil(output.num_samples / total_batch_size),
                )
            )
            per_corpus[name] = output.metrics
            metrics.update(output.metrics)
        metrics.update(self.combine_corpus_metrics(per_corpus, metric_key_prefix))
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        self._memory_tracker.stop_and_update_metrics(metrics)
        return metrics

    def evaluate_per_task(
        self,
        eval_dataset: Mapping[str, Any],
        selection: Any,
        metric_key_prefix: str = "test",
    ) -> dict[str, dict[str, dict[str, float]]]:
        """Each corpus' task metrics read with the weights of that task's best validation step.

        ``selection`` is the ``mtaffect.training.selection.PerTaskSelection`` callback that
        watched training. A (corpus, task) it has no choice for (no validation labels) is
        scored with the final weights. The model's weights are restored afterwards.

        Returns:
            corpus -> task -> metric name (as in the flat keys: ``sarcasm_weighted_f1``,
            predicted-class counts included) -> value. Each evaluation is also logged with
            the flat ``<prefix>_<corpus>_<task>_<metric>`` keys, as ``evaluate`` logs them.
        """
        from mtaffect.data.schema import gold_tasks
        from mtaffect.metrics import split_metric_key

        datasets = self._reading(_as_corpora(eval_dataset, "eval_dataset"))
        choices = selection.choices()

        def wanted_step(corpus: str, task: str) -> int | None:
            step = choices.get(f"{corpus}/{task}", {}).get("step")
            return step if step in selection.snapshots else None

        # Each chosen step scores the corpora whose tasks chose it; the final weights (None) score
        # the corpora with a gold task that has no validation choice (no validation labels).
        plan: dict[int | None, list[str]] = {}
        for corpus, dataset in datasets.items():
            if any(wanted_step(corpus, task) is None for task in gold_tasks(dataset)):
                plan.setdefault(None, []).append(corpus)
        for corpus in datasets:
            steps = {choice["step"] for name, choice in choices.items() if name.split("/", 1)[0] == corpus}
            for step in steps:
                if step in selection.snapshots:
                    plan.setdefault(step, []).append(corpus)
        final = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        result: dict[str, dict[str, dict[str, float]]] = {corpus: {} for corpus in datasets}
        try:
            for step, corpora in sorted(plan.items(), key=lambda item: -1 if item[0] is None else item[0]):
                self.model.load_state_dict(final if step is None else selection.snapshots[step])
                metrics = self.evaluate({name: datasets[name] for name in corpora}, metric_key_prefix=metric_key_prefix)
                for key, value in metrics.items():
                    parts = split_metric_key(key, list(datasets))
                    if parts is None or parts.corpus is None or parts.task is None or parts.prefix != metric_key_prefix:
                        continue
                    if wanted_step(parts.corpus, parts.task) == step:
                        result[parts.corpus].setdefault(parts.task, {})[parts.name] = float(value)
        finally:
            self.model.load_state_dict(final)
        return result

    def combine_corpus_metrics(
        self, per_corpus: Mapping[str, Mapping[str, float]], metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        """Aggregate metrics over corpora (override to weigh corpora differently)."""
        scores, losses = [], []
        for name, metrics in per_corpus.items():
            score = metrics.get(metric_key(metric_key_prefix, PRIMARY_SCORE_KEY, corpus=name))
            if score is None:
                score = primary_score(metrics, prefix=metric_key(metric_key_prefix, name) + "_")
            if score is not None and math.isfinite(score):
                scores.append(score)
            loss = metrics.get(metric_key(metric_key_prefix, "loss", corpus=name))
            if loss is not None and math.isfinite(loss):
                losses.append(loss)
        combined: dict[str, float] = {}
        if scores:
            combined[metric_key(metric_key_prefix, COMBINED_SCORE)] = float(np.mean(scores))
        if losses:
            combined[metric_key(metric_key_prefix, "loss")] = float(np.mean(losses))
        return combined


def label_columns_of(model: Any) -> tuple[str, ...] | None:
    """The label columns ``model`` reads: its tasks' gold columns, and their weak ones when it
    learns from weak labels (``weak_loss_weight`` > 0); ``None`` for a model without tasks."""
    config = getattr(model, "config", None)
    tasks = getattr(config, "tasks", None)
    if not tasks:
        return None
    return label_columns_read(tasks, weak=float(getattr(config, "weak_loss_weight", 0.0) or 0.0) > 0)


def _without_labels(dataset: Any, read: Sequence[str]) -> Any:
    """``dataset`` (numpy-formatted) reading no label column outside ``read``: a batch is built from
    Arrow column by column, so a column not read costs nothing."""
    names = getattr(dataset, "column_names", None)
    if names is None or not hasattr(dataset, "with_format"):
        return dataset
    keep = [name for name in names if name not in LABEL_COLUMNS or name in read]
    return dataset if len(keep) == len(names) else dataset.with_format("numpy", columns=keep)


def _is_encoder_parameter(name: str) -> bool:
    """Whether a parameter belongs to a pretrained encoder itself (not its layer mix or projection)."""
    return ".pretrained_encoders." in f".{name}" and ".model." in name


def _numpy_format(dataset: Any) -> Any:
    """Rows as numpy arrays: the collator's fast path (python lists of floats are ~10x slower)."""
    with_format = getattr(dataset, "with_format", None)
    if with_format is None or getattr(dataset, "format", {}).get("type") == "numpy":
        return dataset
    return with_format("numpy")


def _as_corpora(datasets: Any, argument: str) -> dict[str, Any]:
    """Normalise a dict / DatasetDict / single Dataset to a dict name -> numpy-formatted Dataset."""
    if isinstance(datasets, Mapping):
        corpora = dict(datasets)
    elif hasattr(datasets, "__len__") and hasattr(datasets, "__getitem__"):
        name = get_corpus_info(datasets).corpus if hasattr(datasets, "info") else "corpus"
        corpora = {name if name != "unknown" else "corpus": datasets}
    else:
        raise ValueError(f"{argument} must be a dict corpus name -> Dataset, got {type(datasets).__name__}.")
    if not corpora:
        raise ValueError(f"{argument} is empty: give at least one corpus.")
    for name, dataset in corpora.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{argument} keys must be corpus names (non-empty str), got {name!r}.")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise ValueError(f"{argument}[{name!r}] is a {type(dataset).__name__}, expected a datasets.Dataset.")
        if len(dataset) == 0:
            raise ValueError(f"{argument}[{name!r}] is empty.")
    return {name: _numpy_format(dataset) for name, dataset in corpora.items()}
