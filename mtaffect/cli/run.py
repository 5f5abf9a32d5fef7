"""``mtaffect run``: the weak-supervision study (synthetic corpora by default)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mtaffect.cli.encoders import add_encoder_arguments, apply_encoder_arguments
from mtaffect.cli.inputs import flag_value
from mtaffect.cli.main import command_help
from mtaffect.configuration_mtaffect import WEAK_LABEL_MODES
from mtaffect.report import build_report, primary_tasks_of, results_from_report, terminal_summary
from mtaffect.study import RESULTS_FILE, StudyConfig, StudyInterrupted, StudyProgress, run_study


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help=command_help("run"),
        description=(
            "Train single-task baselines, use them as teachers to weak-label the tasks each corpus lacks, "
            "train multi-task models with and without weak labels, and write report.json / report.md / "
            "report.png. Without --config it runs on the embedded synthetic corpora."
        ),
    )
    run.add_argument("--config", type=Path, help="YAML/JSON study config (corpora paths, formats, options...)")
    run.add_argument("--output-dir", help="where the report goes (default: mtaffect-output)")
    run.add_argument("--seeds", type=int, nargs="+", help="training seeds (default: 0 1 2)")
    run.add_argument("--tasks", nargs="+", choices=["emotion", "sentiment", "sarcasm"], help="restrict to tasks")
    run.add_argument("--corpora", nargs="+", help="synthetic corpus names to use (default: all four)")
    run.add_argument("--weak-loss-weights", type=float, nargs="+", help="λ values to choose from on validation")
    run.add_argument("--weak-label-modes", nargs="+", choices=WEAK_LABEL_MODES, help="weak label modes to try")
    run.add_argument("--sampling", choices=["proportional", "temperature", "round_robin", "uniform"])
    run.add_argument("--temperature", type=float, help="T of temperature sampling")
    run.add_argument("--hidden-size", type=int, help="model hidden size")
    run.add_argument("--encoder", choices=["transformer", "bilstm", "mean"], help="per-modality encoder")
    run.add_argument("--fusion", choices=["concat", "late"], help="fusion of the modalities")
    run.add_argument("--epochs", type=float, help="training epochs per model")
    run.add_argument("--size-scale", type=float, help="synthetic corpora size multiplier")
    add_encoder_arguments(run)
    run.add_argument("--context-grid", type=int, nargs="+", metavar="K",
                     help="also train every single-task and multi-task model with K preceding turns of conversational "
                     "context, K chosen per task on validation, and report them beside the context-free ones "
                     "(context_grid; corpora with dialogues: meld, emorynlp, mustard, tables with dialogue_column)")
    run.add_argument("--workers", type=int, help="jobs trained in parallel processes by the local backend "
                     "(default: one per CPU core)")
    run.add_argument("--backend", choices=["local", "ray"], help="who runs the jobs: processes on this machine "
                     "(local, the default) or Ray tasks (ray; pip install 'mtaffect[ray]')")
    run.add_argument("--address", help="the Ray cluster to join (auto: the one `ray start` started; "
                     "default: a Ray instance on this machine); implies --backend ray")
    run.add_argument("--plan", action="store_true", help="print the job graph, its cost (recorded seconds of a "
                     "study of the same config in --output-dir, if any), critical path and fewest workers; train nothing")
    run.add_argument("--quiet", action="store_true", help="no per-model progress lines")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the study in --output-dir: models already in its results.jsonl are not trained again "
        "(refused if the config changed)",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier study in --output-dir (only what mtaffect wrote there; your files are kept)",
    )
    run.set_defaults(func=_run)


def build_config(args: argparse.Namespace) -> StudyConfig:
    config = StudyConfig.from_file(args.config) if args.config else StudyConfig()
    if args.output_dir:
        config.output_dir = args.output_dir
    if args.seeds:
        config.seeds = args.seeds
    if args.tasks:
        config.tasks = args.tasks
    if args.corpora:
        if config.corpora:
            raise ValueError("--corpora picks synthetic corpora; with --config list corpora in the config file.")
        config.synthetic = {**config.synthetic, "corpora": args.corpora}
    if args.size_scale is not None:
        config.synthetic = {**config.synthetic, "size_scale": args.size_scale}
    if args.weak_loss_weights:
        config.weak_loss_weights = args.weak_loss_weights
    if args.weak_label_modes:
        config.weak_label_modes = args.weak_label_modes
    if args.sampling:
        config.corpus_sampling = args.sampling
    if args.temperature is not None:
        config.sampling_temperature = args.temperature
    for flag, key in (("hidden_size", "hidden_size"), ("encoder", "encoder_type"), ("fusion", "fusion")):
        value = getattr(args, flag)
        if value is not None:
            config.model = {**config.model, key: value}
    model, training = dict(config.model), dict(config.training)
    apply_encoder_arguments(args, model, training)  # the same keys as the config file's model / training
    config.model, config.training = model, training
    if args.context_grid:
        config.context_grid = list(args.context_grid)
    if args.workers is not None:
        config.workers = args.workers
    if args.backend or args.address:
        if args.backend == "local" and args.address:
            raise ValueError("--address names a Ray cluster: use it with --backend ray (or alone).")
        config.backend = {"name": "ray", **({"address": args.address} if args.address else {})} if (
            args.backend == "ray" or args.address) else {"name": "local"}
    if args.epochs is not None:
        config.training = {**config.training, "num_train_epochs": args.epochs}
    check_training(config, args)  # first: it names the flag (StudyConfig.validate names the config key)
    config.validate()
    return config


#: Study training fields the ``mtaffect run`` flags set, and those flags.
TRAINING_FLAGS: dict[str, str] = {
    "num_train_epochs": "--epochs",
    "seed": "--seeds",
    "encoder_learning_rate": "--encoder-learning-rate",
}


def check_training(config: StudyConfig, args: argparse.Namespace) -> None:
    """The training arguments of every model, checked before anything is trained
    (``StudyConfig.check_training``), naming the flag a value came from."""
    given = {field: flag for field, flag in TRAINING_FLAGS.items() if flag_value(args, flag) is not None}
    config.check_training(str(args.config) if args.config else "study config", given)


def _remove_if_nothing_recorded(created: list[Path]) -> None:
    """After a failed study: the folders this command created, if no model was recorded in them
    (a study that recorded models keeps them, for --resume)."""
    import shutil

    output = created[0] if created else None
    if output is not None and output.is_dir() and not (output / RESULTS_FILE).is_file():
        shutil.rmtree(output, ignore_errors=True)
    for folder in created[1:]:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _print_progress(event: StudyProgress) -> None:
    eta = f", ETA {event.eta:.0f}s" if event.eta is not None else ""
    print(
        f"[{event.step}/{event.total}] seed {event.seed} · {event.setting} · {event.detail} "
        f"(elapsed {event.elapsed:.0f}s{eta})",
        flush=True,
    )


def _print_plan(config: StudyConfig) -> int:
    from mtaffect.study.runner import plan_study

    summary = plan_study(config, Path(config.output_dir) / RESULTS_FILE)
    print(f"mtaffect run --plan: {len(summary.jobs)} jobs, seeds {config.seeds} (nothing is trained)\n")
    print("\n".join(summary.lines()))
    return 0


def _run(args: argparse.Namespace) -> int:
    config = build_config(args)
    if args.plan:
        return _print_plan(config)
    source = "config " + str(args.config) if args.config else "the embedded synthetic corpora"
    print(f"mtaffect run: the weak-supervision study on {source}, seeds {config.seeds}", flush=True)
    output = Path(config.output_dir)
    created = [folder for folder in (output, *output.parents) if not folder.exists()]
    try:
        paths = run_study(
            config, progress=None if args.quiet else _print_progress, resume=args.resume, overwrite=args.overwrite
        )
    except StudyInterrupted as interrupted:
        print(f"\nmtaffect run: {interrupted}", file=sys.stderr, flush=True)
        return 130
    except Exception:
        _remove_if_nothing_recorded(created)
        raise
    payload = json.loads(paths["json"].read_text(encoding="utf-8"))
    report = build_report(results_from_report(payload), primary_tasks=primary_tasks_of(payload.get("metadata")))
    print()
    print(terminal_summary(report))
    print()
    print(f"Full tables in {paths['md']}; also wrote:")
    for key in ("json", "png", "results"):
        print(f"  {paths[key]}")
    return 0
