"""Entry point of the ``mtaffect`` command.

Each sub-command lives in its own module under ``mtaffect.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the
parsed arguments and returning an exit code. Modules are imported lazily by name so that
``mtaffect --help`` stays fast and a broken optional extra breaks only its own command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMAND_MODULES: tuple[str, ...] = (
    "mtaffect.cli.run",
    "mtaffect.cli.report",
    "mtaffect.cli.data",
    "mtaffect.cli.train",
    "mtaffect.cli.evaluate",
    "mtaffect.cli.predict",
    "mtaffect.cli.weak",
    "mtaffect.cli.extract",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtaffect",
        description="Weakly-supervised multi-task multimodal affect recognition (emotion, sentiment, sarcasm).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name == name:  # the command is not part of this build
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        # User errors (bad paths, bad options, malformed corpora) end in one clear line.
        print(f"mtaffect {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
