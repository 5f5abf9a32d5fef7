"""``mtaffect train``: train a multi-task (or single-task) model on unified corpora.

A YAML/JSON config names the corpora, the tasks, the model and the training arguments;
flags override the common ones, and any ``MultiTaskTrainingArguments`` field can follow a
``--`` separator. Progress bar, logging, checkpoints and resume are the Trainer's:

    mtaffect train --config train.yaml
    mtaffect train --corpora synthetic_mosei synthetic_mustard --epochs 3 --output-dir out
    mtaffect train --config train.yaml -- --learning_rate 3e-4 --warmup_steps 100

Multi-GPU: ``accelerate launch --multi_gpu --num_processes 4 -m mtaffect.cli.main train --config train.yaml``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mtaffect.cli.inputs import corpora_from_flags, load_corpora, load_model, pick_split
from mtaffect.cli.main import command_help
from mtaffect.tasks import TASK_NAMES

#: Training-argument defaults of the command (the library's defaults stay the Trainer's).
CLI_TRAINING_DEFAULTS: dict[str, Any] = {
    "output_dir": "mtaffect-train-output",
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 2,
    "load_best_model_at_end": True,
    "metric_for_best_model": "combined_score",
    "logging_steps": 50,
    "report_to": "none",
}
#: The config format, shown by ``mtaffect train --help``.
CONFIG_HELP = """\
config file (YAML or JSON; every key optional, but corpora must come from it or --corpora):

  corpora:                       # name -> where the corpus comes from
    mosei: data/mosei_unified    # a folder written by DatasetDict.save_to_disk
    mustard: synthetic_mustard   # or a synthetic corpus name
    meld: {loader: meld, path: data/MELD.Raw}   # or a registered loader (load_corpus)
  synthetic: {size_scale: 0.5, seed: 0}         # options of the synthetic corpora
  splits: {train: train, eval: validation, test: test}
  tasks: [emotion, sentiment, sarcasm]          # default: tasks some corpus has gold labels for
  model: {hidden_size: 64, encoder_type: transformer}    # MTAffectConfig arguments
  # model: {from_pretrained: path/to/checkpoint}         # or start from a checkpoint
  training: {num_train_epochs: 5, corpus_sampling: temperature, learning_rate: 1.0e-3}

multi-GPU: accelerate launch --multi_gpu --num_processes 4 -m mtaffect.cli.main train --config c.yaml
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help=command_help("train"),
        description=(
            "Train MTAffectForMultiTaskAffect with MultiTaskTrainer on unified corpora (folders from "
            "save_to_disk, synthetic corpus names, or registered loaders), evaluating per corpus. Any "
            "MultiTaskTrainingArguments field can be given after '--', e.g. "
            "'mtaffect train --config c.yaml -- --learning_rate 3e-4'."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=CONFIG_HELP,
    )
    parser.add_argument("--config", type=Path, help="YAML or JSON file (see below)")
    parser.add_argument(
        "--corpora",
        nargs="+",
        metavar="CORPUS",
        help="corpora to train on, as NAME=PATH, a saved corpus folder, or a synthetic corpus name "
        "(replaces the config's corpora)",
    )
    parser.add_argument("--tasks", nargs="+", choices=TASK_NAMES, help="tasks the model learns")
    parser.add_argument("--output-dir", help="checkpoints, final model and metrics")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what mtaffect wrote in the output dir earlier (files mtaffect did not write are kept)",
    )
    parser.add_argument("--epochs", type=float, help="num_train_epochs")
    parser.add_argument("--max-steps", type=int, help="max_steps (overrides --epochs)")
    parser.add_argument("--batch-size", type=int, help="per_device_train_batch_size")
    parser.add_argument("--learning-rate", type=float, help="learning_rate")
    parser.add_argument("--sampling", choices=["proportional", "temperature", "round_robin", "uniform"])
    parser.add_argument("--temperature", type=float, help="sampling_temperature")
    parser.add_argument("--composition", choices=["homogeneous", "mixed"], help="batch_composition")
    parser.add_argument("--weak-loss-weight", type=float, help="λ of the weak-label losses")
    parser.add_argument("--weak-label-mode", choices=["soft", "hard"])
    parser.add_argument("--seed", type=int, help="training seed")
    parser.add_argument("--hidden-size", type=int, help="model hidden size")
    parser.add_argument("--encoder", choices=["transformer", "bilstm", "mean"], help="per-modality encoder")
    parser.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                        help="resume from the last checkpoint in the output dir, or from CHECKPOINT")
    parser.add_argument("training_args", nargs=argparse.REMAINDER,
                        help="after '--': any MultiTaskTrainingArguments flag, e.g. -- --warmup_steps 100")
    parser.set_defaults(func=_train)


# ---- configuration ----------------------------------------------------------------------


def read_config(path: Path) -> dict[str, Any]:
    """The config file as a dict (YAML for .yaml/.yml, JSON otherwise)."""
    from mtaffect.config_files import read_mapping_file

    known = {"corpora", "synthetic", "splits", "tasks", "model", "training"}
    return read_mapping_file(path, known, what="training config")


def check_settings(settings: dict[str, Any], where: str) -> None:
    """Type and range of every value of a training config, before any corpus is read.

    Each error names ``where`` (the file), the key and what it should be, rather than
    surfacing later as a bad ``--flag`` of ``HfArgumentParser`` or a traceback.
    """
    from mtaffect.config_files import check_values, field_types

    for key, expected in (("corpora", dict), ("synthetic", dict), ("splits", dict), ("model", dict), ("training", dict)):
        if key in settings and settings[key] is not None and not isinstance(settings[key], expected):
            raise ValueError(f"{where}: '{key}' should be a mapping (key: value lines), got {settings[key]!r}.")
    tasks = settings.get("tasks")
    if tasks is not None:
        if isinstance(tasks, str) or not isinstance(tasks, list):
            raise ValueError(f"{where}: tasks = {tasks!r}: expected a list, e.g. tasks: [emotion, sentiment].")
        unknown = [task for task in tasks if task not in TASK_NAMES]
        if unknown:
            raise ValueError(f"{where}: tasks: unknown task(s) {unknown}; choose from {list(TASK_NAMES)}.")
    if settings.get("training"):
        from mtaffect.training import MultiTaskTrainingArguments

        settings["training"] = check_values(
            dict(settings["training"]), field_types(MultiTaskTrainingArguments), where, "training."
        )
    model = dict(settings.get("model") or {})
    pretrained = model.pop("from_pretrained", None)
    if model:
        from mtaffect.configuration_mtaffect import MTAffectConfig

        model = check_values(model, field_types(MTAffectConfig), where, "model.", open_ended=True)
        settings["model"] = {**model, **({"from_pretrained": pretrained} if pretrained else {})}
        try:
            MTAffectConfig(**model)  # its own range checks (hidden_size > 0, known encoder...)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where}: model: {error}") from None


def build_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Merge the config file and the flags (flags win)."""
    settings = read_config(args.config) if args.config else {}
    if args.config:
        check_settings(settings, str(args.config))
    if args.corpora:
        settings["corpora"] = corpora_from_flags(args.corpora)
    if not settings.get("corpora"):
        raise ValueError("No corpora: give --corpora NAME=PATH ... or a config file with a 'corpora' mapping.")
    if args.tasks:
        settings["tasks"] = args.tasks
    model = dict(settings.get("model") or {})
    if args.hidden_size is not None:
        model["hidden_size"] = args.hidden_size
    if args.encoder is not None:
        model["encoder_type"] = args.encoder
    settings["model"] = model
    user_training = dict(settings.get("training") or {})
    training = {**CLI_TRAINING_DEFAULTS, **user_training}
    if "dataloader_pin_memory" not in user_training:
        import torch

        # Pinned memory only helps copies to an accelerator; without one torch warns per loader.
        training["dataloader_pin_memory"] = torch.cuda.is_available()
    if "eval_strategy" in user_training and "save_strategy" not in user_training:
        # load_best_model_at_end (a command default) needs checkpoints where evaluations are.
        training["save_strategy"] = user_training["eval_strategy"]
        if "eval_steps" in user_training and "save_steps" not in user_training:
            training["save_steps"] = user_training["eval_steps"]
    flags = {
        "output_dir": args.output_dir,
        "num_train_epochs": args.epochs,
        "max_steps": args.max_steps,
        "per_device_train_batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "corpus_sampling": args.sampling,
        "sampling_temperature": args.temperature,
        "batch_composition": args.composition,
        "weak_loss_weight": args.weak_loss_weight,
        "weak_label_mode": args.weak_label_mode,
        "seed": args.seed,
    }
    training.update({key: value for key, value in flags.items() if value is not None})
    settings["training"] = training
    return settings


def training_arguments(training: Mapping[str, Any], extra: list[str]) -> Any:
    """``MultiTaskTrainingArguments`` from a dict plus raw ``--flag value`` tokens, via HfArgumentParser."""
    from transformers import HfArgumentParser

    from mtaffect.training import MultiTaskTrainingArguments

    argv: list[str] = []
    for key, value in training.items():
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
            argv.append(str(value))
    extra = [token for token in extra if token != "--"]
    parser = HfArgumentParser(MultiTaskTrainingArguments)
    try:
        (arguments,) = parser.parse_args_into_dataclasses(args=argv + extra, look_for_args_file=False)
    except SystemExit as exit_:
        raise ValueError(f"invalid training arguments {argv + extra} (see the message above).") from exit_
    except ValueError as error:  # TrainingArguments.__post_init__ range checks
        raise ValueError(f"training arguments: {error}") from None
    return arguments


# ---- data -------------------------------------------------------------------------------


def _non_empty(splits: Mapping[str, Any]) -> dict[str, Any]:
    return {name: split for name, split in splits.items() if split is not None and len(split)}


def _without_evaluation(training: dict[str, Any]) -> None:
    """Drop the command's evaluation defaults when no corpus has an evaluation split."""
    for key, off in (("eval_strategy", "no"), ("load_best_model_at_end", False), ("metric_for_best_model", None)):
        if training.get(key) == CLI_TRAINING_DEFAULTS[key]:
            training[key] = off
        elif training.get(key) not in (None, False, "no"):
            raise ValueError(f"training.{key}={training[key]!r} needs evaluation data, but no corpus has an eval split.")


# ---- command ----------------------------------------------------------------------------


def _train(args: argparse.Namespace) -> int:
    settings = build_settings(args)
    target = Path(settings["training"]["output_dir"])
    folder, scratch = _output_folder(target, args)
    settings["training"]["output_dir"] = str(scratch)

    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
    from mtaffect.training import MultiTaskTrainer

    corpora = load_corpora(settings)
    splits = {"train": "train", "eval": "validation", "test": "test", **dict(settings.get("splits") or {})}
    train = {name: pick_split(corpus, splits["train"], name, required=True) for name, corpus in corpora.items()}
    evaluation = _non_empty({name: pick_split(corpus, splits["eval"], name, False) for name, corpus in corpora.items()})
    test = _non_empty({name: pick_split(corpus, splits["test"], name, False) for name, corpus in corpora.items()})
    if not evaluation:
        _without_evaluation(settings["training"])
    training = training_arguments(settings["training"], args.training_args or [])

    model_settings = dict(settings["model"])
    pretrained = model_settings.pop("from_pretrained", None)
    if pretrained:
        if model_settings:
            raise ValueError(f"model.from_pretrained cannot be combined with other model settings {sorted(model_settings)}.")
        model = load_model(pretrained)
    else:
        config = MTAffectConfig.from_corpora(corpora, tasks=settings.get("tasks"), **model_settings)
        model = MTAffectForMultiTaskAffect(config)

    trainer = MultiTaskTrainer(model=model, args=training, train_dataset=train, eval_dataset=evaluation or None)
    main_process = trainer.is_world_process_zero()
    if main_process:
        sizes = ", ".join(f"{name} ({len(split)})" for name, split in train.items())
        print(f"mtaffect train: tasks {model.config.tasks} on {sizes} -> {target}", flush=True)
    resume = args.resume
    if resume is True and not any(scratch.glob("checkpoint-*")):
        from transformers.trainer_utils import get_last_checkpoint

        # Nothing interrupted: continue from the last checkpoint of the finished run, if any.
        resume = get_last_checkpoint(str(target)) if target.is_dir() else None
        if resume is None:
            raise FileNotFoundError(f"--resume: no checkpoint in {target} or {scratch} to resume from.")
    try:
        result = trainer.train(resume_from_checkpoint=resume)
    except KeyboardInterrupt:
        if main_process:
            print(f"\nmtaffect train: interrupted; checkpoints are kept in {scratch}. Run the same command with "
                  "--resume to continue.", file=sys.stderr, flush=True)
        return 130
    trainer.save_model()
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    if evaluation:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
    if test:
        metrics = trainer.evaluate(eval_dataset=test, metric_key_prefix="test")
        trainer.log_metrics("test", metrics)
        trainer.save_metrics("test", metrics)
    trainer.save_state()
    if training.world_size > 1:
        trainer.end()
    if main_process:
        commit = folder.commit(scratch)
        if commit.summary(target):
            print(commit.summary(target))
        print(f"mtaffect train: model and metrics saved to {target}", flush=True)
    return 0


def _output_folder(target: Path, args: argparse.Namespace) -> tuple[Any, Path]:
    """The output folder's rules, and the scratch folder beside it the Trainer writes into.

    The scratch folder has a fixed name, so the checkpoints of an interrupted run are where
    ``--resume`` looks; the finished model moves into the output folder at the end.
    """
    import shutil

    from mtaffect.output_folder import OutputFolder

    folder = OutputFolder(target, command="mtaffect train", overwrite=args.overwrite, resume=bool(args.resume))
    folder.check()
    scratch = folder.persistent_scratch("training")
    if scratch.exists() and not args.resume:
        if not args.overwrite:
            raise FileExistsError(
                f"{scratch}: an interrupted `mtaffect train` into {target} left its checkpoints here; pass --resume "
                "to continue it, or --overwrite to start afresh (this folder is then deleted)."
            )
        shutil.rmtree(scratch)
    return folder, scratch
