"""Entry point of the ``mtaffect`` command.

Each sub-command lives in its own module under ``mtaffect.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the
parsed arguments and returning an exit code. Only the module of the command being run is
imported: ``mtaffect --help`` imports none (the one-line help of each command lives in
``COMMANDS``), so it starts without torch, and a broken optional extra breaks only its own
command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback

#: Command -> (its module, its one-line help in ``mtaffect --help``).
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("mtaffect.cli.run", "run the study: single-task vs multi-task (gold, weak, gold auxiliary) over seeds"),
    "report": ("mtaffect.cli.report", "merge the per-seed results of study runs into one report (no training)"),
    "data": ("mtaffect.cli.data", "list, convert or describe corpora"),
    "train": ("mtaffect.cli.train", "train a multi-task (or single-task) model on saved unified corpora"),
    "evaluate": ("mtaffect.cli.evaluate", "score a trained checkpoint on corpora with the literature's metrics"),
    "predict": (
        "mtaffect.cli.predict",
        "emotion / sentiment / sarcasm of raw utterances (text, WAV, video) with a trained model",
    ),
    "demo": ("mtaffect.cli.demo", "a Gradio app to try a checkpoint: type an utterance, add audio or video"),
    "weak-label": (
        "mtaffect.cli.weak",
        "write a teacher's weak labels for one task into a saved corpus (new folder)",
    ),
    "extract": ("mtaffect.cli.extract", "extract text/audio/visual features from raw media into a unified corpus"),
}
COMMAND_MODULES: tuple[str, ...] = tuple(module for module, _ in COMMANDS.values())


def command_help(name: str) -> str:
    """The one-line help of a command (what its module passes to ``add_parser``)."""
    return COMMANDS[name][1]


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``mtaffect`` parser.

    Args:
        argv: the arguments about to be parsed. When they name a command, only that
            command's module is imported and the others are listed by name and help alone;
            ``None`` builds every command's full parser.
    """
    parser = argparse.ArgumentParser(
        prog="mtaffect",
        description="Weakly-supervised multi-task multimodal affect recognition (emotion, sentiment, sarcasm).",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log at INFO level and show the traceback behind an error (also MTAFFECT_DEBUG=1); "
        "accepted anywhere before a '--'",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = None if argv is None else next((word for word in argv if not word.startswith("-")), "")
    for name, (module_name, help_text) in COMMANDS.items():
        if chosen is not None and name != chosen:
            subparsers.add_parser(name, help=help_text, add_help=False)
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:  # the command is not part of this build
                continue
            raise
        module.register(subparsers)
    return parser


#: Environment variable that, set to a non-empty value other than 0, shows the traceback
#: behind a one-line error (for a bug report), as ``-v`` does.
DEBUG_VARIABLE = "MTAFFECT_DEBUG"


def split_verbose(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``-v`` / ``--verbose``, and whether one was given.

    The flag belongs to ``mtaffect`` itself, but users type it after the command too
    (``mtaffect train -v ...``); it is taken from anywhere before a ``--`` (what follows a
    ``--`` belongs to the Trainer).

    Examples:
        >>> split_verbose(["train", "-v", "--epochs", "1", "--", "-v"])
        (['train', '--epochs', '1', '--', '-v'], True)
    """
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [word for word in argv[:end] if word not in ("-v", "--verbose")]
    return kept + argv[end:], len(kept) < end


def debugging(verbose: bool) -> bool:
    """Whether a caught error also prints its traceback (``-v`` or ``MTAFFECT_DEBUG=1``)."""
    return verbose or os.environ.get(DEBUG_VARIABLE, "").strip() not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    argv, verbose = split_verbose(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    args.verbose = args.verbose or verbose
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError) as error:
        # User errors (bad paths, bad options, malformed corpora, unwritable folders) end in one clear
        # line; -v / MTAFFECT_DEBUG=1 shows the traceback behind it (for a bug report).
        if debugging(args.verbose):
            traceback.print_exc()
        print(f"mtaffect {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Commands that can resume print how before re-raising; the rest has nothing to add.
        print(f"\nmtaffect {args.command}: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
