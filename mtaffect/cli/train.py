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
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from accelerate import PartialState
from transformers.trainer_utils import get_last_checkpoint

from mtaffect.cli.encoders import add_encoder_arguments, apply_encoder_arguments
from mtaffect.cli.inputs import flag_value, load_corpora, pick_split, set_threads
from mtaffect.cli.main import command_help
from mtaffect.config_files import check_values, field_types, read_mapping_file
from mtaffect.configuration_mtaffect import WEAK_LABEL_MODES, MTAffectConfig
from mtaffect.output_folder import OutputFolder
from mtaffect.recipes import LOSS_SETTINGS, fit, model_encoders, parse_task_loss_weights, training_arguments
from mtaffect.tasks import TASK_NAMES
from mtaffect.training import MultiTaskTrainingArguments
from mtaffect.training.arguments import MultiTaskTrainingArgumentError

logger = logging.getLogger(__name__)

#: Where the command writes when neither the config nor --output-dir says. The training
#: defaults are the recipe's (``mtaffect.recipes.TRAINING_DEFAULTS``), the same as the study's.
DEFAULT_OUTPUT_DIR = "mtaffect-train-output"
#: The config format, shown by ``mtaffect train --help``.
CONFIG_HELP = """\
config file (YAML or JSON; every key optional, but corpora must come from it or --corpora):

  corpora:                       # name -> where the corpus comes from (mtaffect.data.sources)
    mosei: data/mosei_unified    # a folder written by DatasetDict.save_to_disk
    mustard: synthetic_mustard   # or a synthetic corpus name
    mosi: data/mosi_unaligned_50.pkl            # or the files as published, read by the loader NAME
    meld: {loader: meld, path: data/MELD.Raw}   # or a mapping (loader, format, options, ...)
    sims: hub:someone/affect-corpora:sims       # or a corpus pushed to the Hub
  synthetic: {size_scale: 0.5, seed: 0}         # options of the synthetic corpora
  splits: {train: train, eval: validation, test: test}
  tasks: [emotion, sentiment, sarcasm]          # default: tasks some corpus has gold labels for
  model: {hidden_size: 64, encoder_type: transformer}    # MTAffectConfig arguments
  # model: {from_pretrained: path/to/checkpoint}         # or start from a checkpoint
  # model:                                               # or fine-tune a pretrained encoder
  #   pretrained_encoders:                               # on the raw transcripts (--text-encoder)
  #     text: {name_or_path: sentence-transformers/all-MiniLM-L6-v2, finetune: top-2, max_length: 64}
  # training: {encoder_learning_rate: 1.0e-4}            # its own rate (--encoder-learning-rate)
  training: {num_train_epochs: 8, corpus_sampling: temperature}   # updates the recipe's defaults
                                 # (mtaffect.recipes.TRAINING_DEFAULTS: 5 epochs, lr 2e-3, batch 32, best epoch)

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
        help="corpora to train on, as [NAME=]LOCATION: a saved corpus folder, published files (NAME= the "
        "loader), a synthetic corpus name or hub:OWNER/REPO[:CONFIG] (replaces the config's corpora)",
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
    parser.add_argument("--weak-label-mode", choices=WEAK_LABEL_MODES)
    parser.add_argument("--seed", type=int, help="training seed")
    parser.add_argument(
        "--threads", type=int, metavar="N",
        help="torch CPU threads (default: torch's; 1 is fastest on a machine shared with other jobs)",
    )
    parser.add_argument("--hidden-size", type=int, help="model hidden size")
    parser.add_argument("--encoder", choices=["transformer", "bilstm", "mean"], help="per-modality encoder")
    add_encoder_arguments(parser)
    parser.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                        help="resume from the last checkpoint in the output dir, or from CHECKPOINT")
    # Conversational context (mtaffect.data.context): the model's config.context, and the loaders'
    # context option for corpora read from their published files.
    parser.add_argument("--context-past", type=int, metavar="K",
                        help="preceding turns of the dialogue the model reads (model.context.past; 0 = none)")
    parser.add_argument("--context-future", type=int, metavar="J",
                        help="following turns the model reads (model.context.future; feature models only)")
    parser.add_argument("--no-context-speakers", action="store_true",
                        help="no same-speaker marker / 'speaker:' prefix on the context turns")
    parser.add_argument("training_args", nargs=argparse.REMAINDER,
                        help="after '--': any MultiTaskTrainingArguments flag, e.g. -- --warmup_steps 100")
    parser.set_defaults(func=_train)


# ---- configuration ----------------------------------------------------------------------


def read_config(path: Path) -> dict[str, Any]:
    """The config file as a dict (YAML for .yaml/.yml, JSON otherwise)."""
    known = {"corpora", "synthetic", "splits", "tasks", "model", "training"}
    return read_mapping_file(path, known, what="training config")


def check_settings(settings: dict[str, Any], where: str) -> None:
    """Type and range of every value of a training config, before any corpus is read.

    Each error names ``where`` (the file), the key and what it should be, rather than
    surfacing later as a bad ``--flag`` of ``HfArgumentParser`` or a traceback.
    """
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
    misplaced = sorted(set(settings.get("training") or {}) & set(LOSS_SETTINGS))
    if misplaced:
        raise ValueError(
            f"{where}: training: {misplaced} are loss settings, which the model config owns: move them under 'model'."
        )
    if settings.get("training"):
        settings["training"] = check_values(
            dict(settings["training"]), field_types(MultiTaskTrainingArguments), where, "training."
        )
    model = dict(settings.get("model") or {})
    pretrained = model.pop("from_pretrained", None)
    if model:
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
        settings["corpora"] = list(args.corpora)
    if not settings.get("corpora"):
        raise ValueError("No corpora: give --corpora NAME=PATH ... or a config file with a 'corpora' mapping.")
    if args.tasks:
        settings["tasks"] = args.tasks
    model = dict(settings.get("model") or {})
    if args.hidden_size is not None:
        model["hidden_size"] = args.hidden_size
    if args.encoder is not None:
        model["encoder_type"] = args.encoder
    if args.weak_loss_weight is not None:
        model["weak_loss_weight"] = args.weak_loss_weight
    if args.weak_label_mode is not None:
        model["weak_label_mode"] = args.weak_label_mode
    settings["model"] = model
    context_flags(args, model)
    training = dict(settings.get("training") or {})
    flags = {key: flag_value(args, flag) for key, flag in TRAINING_FLAGS.items()}
    training.update({key: value for key, value in flags.items() if value is not None})
    apply_encoder_arguments(args, model, training)
    training.setdefault("output_dir", DEFAULT_OUTPUT_DIR)
    settings["training"] = training
    return settings


# ---- command ----------------------------------------------------------------------------


#: ``MultiTaskTrainingArguments`` field -> the ``mtaffect train`` flag that sets it.
TRAINING_FLAGS: dict[str, str] = {
    "output_dir": "--output-dir",
    "num_train_epochs": "--epochs",
    "max_steps": "--max-steps",
    "per_device_train_batch_size": "--batch-size",
    "learning_rate": "--learning-rate",
    "corpus_sampling": "--sampling",
    "sampling_temperature": "--temperature",
    "batch_composition": "--composition",
    "seed": "--seed",
    "encoder_learning_rate": "--encoder-learning-rate",
}
#: ``MTAffectConfig`` argument -> the ``mtaffect train`` flag that sets it.
MODEL_FLAGS: dict[str, str] = {
    "hidden_size": "--hidden-size",
    "encoder_type": "--encoder",
    "weak_loss_weight": "--weak-loss-weight",
    "weak_label_mode": "--weak-label-mode",
}


def _origin(field: str, args: argparse.Namespace, section: str, flags: dict[str, str]) -> str:
    """Where a value came from, as the user wrote it: its flag, ``FILE: section.field``, or ``-- --field``."""
    flag = flags.get(field)
    if flag and flag_value(args, flag) is not None:
        return flag
    if f"--{field}" in (args.training_args or []):
        return f"-- --{field}"
    return f"{args.config}: {section}.{field}" if args.config else f"{section}.{field}"


def check_training(settings: dict[str, Any], training: dict[str, Any], args: argparse.Namespace) -> None:
    """Every training argument and model setting checked before any corpus is read or folder made.

    The arguments are built as ``fit`` will build them (the recipe's defaults, the config, the
    flags, the tokens after ``--``), so a value out of range (``--learning-rate -1e-3``,
    ``lora.r: 0``) fails here in one line naming its flag or config key and the fix, instead
    of in torch or peft after the data loaded.
    """
    try:
        training_arguments({**training, "output_dir": "."}, args.training_args or [])
    except MultiTaskTrainingArgumentError as error:
        raise ValueError(f"{_origin(error.field, args, 'training', TRAINING_FLAGS)} = {error.value!r}: "
                         f"{error.requirement}.") from None
    except ValueError as error:
        where = f"{args.config}: training" if args.config else "training arguments"
        raise ValueError(f"{where}: {error}") from None
    model = dict(settings.get("model") or {})
    if model.pop("from_pretrained", None) is not None:
        return  # build_model checks what may change on a loaded checkpoint
    if model.get("task_loss_weights") is not None:
        model["task_loss_weights"] = parse_task_loss_weights(model["task_loss_weights"])
    try:
        MTAffectConfig(**model)  # its own range checks (hidden_size > 0, encoder options, LoRA...)
    except (TypeError, ValueError) as error:
        flags = [flag for field, flag in MODEL_FLAGS.items() if field in model and _origin(field, args, "model", MODEL_FLAGS) == flag]
        where = (f"{args.config}: model" if args.config else "model settings") + (f" (or {', '.join(flags)})" if flags else "")
        raise ValueError(f"{where}: {error}") from None


def _train(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    settings = build_settings(args)
    training = dict(settings["training"])
    target = Path(training.pop("output_dir"))
    check_training(settings, training, args)
    created = [parent for parent in (target, *target.parents) if not parent.exists()]
    folder, scratch = _output_folder(target, args)
    try:
        return _train_into(args, settings, training, target, folder, scratch)
    except BaseException:
        # A failed run leaves nothing behind but checkpoints worth resuming.
        if scratch.is_dir() and last_complete_checkpoint(scratch) is None:
            shutil.rmtree(scratch, ignore_errors=True)
        for parent in created:  # deepest first: the folders this command created, if still empty
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
        raise


def _train_into(
    args: argparse.Namespace, settings: dict[str, Any], training: dict[str, Any], target: Path, folder: Any, scratch: Path
) -> int:
    corpora = load_context_corpora(settings, raw_text="text" in model_encoders(settings["model"]))
    splits = {"train": "train", "eval": "validation", "test": "test", **dict(settings.get("splits") or {})}
    train = {name: pick_split(corpus, splits["train"], name, required=True) for name, corpus in corpora.items()}
    evaluation = {name: pick_split(corpus, splits["eval"], name, False) for name, corpus in corpora.items()}
    test = {name: pick_split(corpus, splits["test"], name, False) for name, corpus in corpora.items()}
    resume = args.resume
    if resume is True:
        resume = last_complete_checkpoint(scratch)
    if resume is None and args.resume is True:
        # Nothing interrupted: continue from the last checkpoint of the finished run, if any.
        resume = get_last_checkpoint(str(target)) if target.is_dir() else None
        if resume is None:
            raise FileNotFoundError(f"--resume: no checkpoint in {target} or {scratch} to resume from.")
    main_process = PartialState().is_main_process
    sizes = ", ".join(f"{name} ({len(split)})" for name, split in train.items())

    def announce(model: Any) -> None:
        if main_process:
            print(f"mtaffect train: tasks {model.config.tasks} on {sizes} -> {target}", flush=True)

    try:
        fitted = fit(
            train,
            evaluation,
            test,
            output_dir=scratch,
            model=settings["model"],
            tasks=settings.get("tasks"),
            training=training,
            extra_arguments=args.training_args or [],
            config_corpora=corpora,
            resume_from_checkpoint=resume,
            prepare=announce,
        )
    except KeyboardInterrupt:
        if main_process and last_complete_checkpoint(scratch) is not None:
            print(f"\nmtaffect train: interrupted; checkpoints are kept in {scratch}. Run the same command with "
                  "--resume to continue.", file=sys.stderr, flush=True)
        elif main_process:
            shutil.rmtree(scratch, ignore_errors=True)
            print("\nmtaffect train: interrupted before the first checkpoint; nothing was kept.", file=sys.stderr,
                  flush=True)
        return 130
    trainer = fitted.trainer
    record_teachers(trainer.model, train)
    trainer.save_model()
    for split, metrics in (("train", fitted.train_metrics), ("eval", fitted.eval_metrics), ("test", fitted.test_metrics)):
        if metrics:
            trainer.log_metrics(split, metrics)
            trainer.save_metrics(split, metrics)
    trainer.save_state()
    if trainer.args.world_size > 1:
        trainer.end()
    if main_process:
        commit = folder.commit(scratch)
        if commit.summary(target):
            print(commit.summary(target))
        print(f"mtaffect train: model and metrics saved to {target}", flush=True)
    return 0


def context_flags(args: argparse.Namespace, model: dict[str, Any]) -> None:
    """``--context-past`` / ``--context-future`` / ``--no-context-speakers`` into ``model["context"]`` (flags win)."""
    flags = {"past": args.context_past, "future": args.context_future}
    if all(value is None for value in flags.values()) and not args.no_context_speakers:
        return
    for name, value in flags.items():
        if value is not None and value < 0:
            raise ValueError(f"--context-{name} must be a number of turns >= 0, got {value}.")
    context = dict(model.get("context") or {})
    context.update({name: value for name, value in flags.items() if value is not None})
    if args.no_context_speakers:
        context["speakers"] = False
    model["context"] = context


def load_context_corpora(settings: dict[str, Any], raw_text: bool = False) -> dict[str, Any]:
    """The corpora of ``settings``; with ``model.context``, read with as many context turns as the model reads.

    ``raw_text``: the model reads transcripts with its own text encoder (``load_corpora``).

    A corpus read from its published files by a loader with a ``context`` option (MELD,
    EmoryNLP, MUStARD, tables) gets ``context={"past": K, "future": J}`` unless its own options
    say otherwise; a converted folder keeps the context columns it was saved with. A model with
    context and no corpus holding context columns is an error, raised before training.
    """
    from mtaffect.data.context import ContextOptions, require_context
    from mtaffect.data.sources import load_sources, parse_sources

    options = ContextOptions.from_value((settings.get("model") or {}).get("context"), where="model.context")
    past, future = options.past, options.future
    if not past and not future:
        return load_corpora(settings, raw_text=raw_text)
    sources = [source.with_context(past, future) for source in parse_sources(settings["corpora"])]
    corpora = load_sources(sources, settings.get("synthetic"), raw_text=raw_text)
    require_context(corpora, f"model.context asks for {past} past / {future} future turns")
    return corpora


def record_teachers(model: Any, train: dict[str, Any]) -> None:
    """Record in the model's config what it can teach (``mtaffect.teachers``), so that the model
    ``mtaffect train`` saves can be the ``--teacher`` of ``mtaffect weak-label`` as it is.

    One record per task the model learned, from the corpora with gold labels for it; a task whose
    corpora cannot make one teacher (multi- and single-label emotion together) is left without.
    """
    from mtaffect.data.schema import gold_tasks
    from mtaffect.teachers import TeacherError, record_teacher, teacher_record_from_corpora

    for task in model.config.tasks:
        annotated = {name: split for name, split in train.items() if task in gold_tasks(split)}
        if not annotated:
            continue
        try:
            record_teacher(model, teacher_record_from_corpora(task, annotated))
        except TeacherError as error:
            logger.info("The model is no %s teacher: %s", task, error)


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint in ``folder`` that the Trainer finished writing (``None`` if none).

    The Trainer writes ``trainer_state.json`` last; a Ctrl-C during a save leaves a checkpoint
    without it, which ``get_last_checkpoint`` would pick (it goes by the step number alone) and
    resuming would then fail on. Such a checkpoint is removed: its step is trained again.
    """
    if not folder.is_dir():
        return None
    steps = sorted(
        (int(path.name.split("-", 1)[1]), path)
        for path in folder.glob("checkpoint-*")
        if path.is_dir() and path.name.split("-", 1)[1].isdigit()
    )
    while steps and not (steps[-1][1] / "trainer_state.json").is_file():
        _, partial = steps.pop()
        logger.warning("%s was not finished (interrupted while saving); resuming from the one before.", partial)
        shutil.rmtree(partial)
    return str(steps[-1][1]) if steps else None


def _output_folder(target: Path, args: argparse.Namespace) -> tuple[Any, Path]:
    """The output folder's rules, and the scratch folder beside it the Trainer writes into.

    The scratch folder has a fixed name, so the checkpoints of an interrupted run are where
    ``--resume`` looks; the finished model moves into the output folder at the end.
    """
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
