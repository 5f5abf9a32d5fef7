"""What the commands read: corpora and their splits, and the model, with one clear error each.

``train`` and ``evaluate`` take the same corpora (``mtaffect.data.sources``:
``[NAME=]LOCATION``, or a config file's mapping); ``evaluate``, ``predict`` and ``demo`` take the
checkpoint as ``--model`` (``add_model_argument``) and load it with
``mtaffect.checkpoints.load_model``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

#: The help of ``--model``, the same in every command.
MODEL_HELP = "checkpoint folder (save_pretrained) or Hub id"


def load_corpora(settings: Mapping[str, Any], raw_text: bool = False) -> dict[str, Any]:
    """Name -> DatasetDict for every corpus of a config (``corpora``, ``synthetic`` options).

    ``raw_text``: the model reads transcripts with its own text encoder, so published text
    corpora load without features (``mtaffect.data.sources.CorpusSource.load``).
    """
    # Imported here: predict and demo use this module for --model only, without datasets.
    from mtaffect.data.sources import load_sources, parse_sources

    return load_sources(parse_sources(settings["corpora"]), settings.get("synthetic"), raw_text=raw_text)


def pick_split(corpus: Any, wanted: str | None, name: str, required: bool) -> Any:
    """``corpus[wanted]`` (``valid``/``dev`` accepted for ``validation``), or ``None``."""
    from mtaffect.data.schema import find_split

    if wanted is None:
        return None
    split = find_split(corpus, wanted)
    if split is None and required:
        raise ValueError(f"Corpus {name!r} has no {wanted!r} split (it has {sorted(corpus)}).")
    return split


def add_model_argument(parser: argparse.ArgumentParser, positional: bool) -> None:
    """``--model MODEL``, the one way every command names its checkpoint.

    Args:
        parser: the command's parser.
        positional: also accept the model as the command's only positional argument
            (``mtaffect demo runs/mt-model``), an alias ``resolve_model`` settles.
    """
    parser.add_argument("--model", help=MODEL_HELP)  # required: resolve_model says so, naming the flag
    if positional:
        parser.add_argument("model_positional", nargs="?", metavar="MODEL", help="the same as --model MODEL")


def resolve_model(args: argparse.Namespace, command: str) -> str:
    """The checkpoint a command was given, by ``--model`` or by its positional alias.

    Raises:
        ValueError: no model, or two different ones; the message names ``--model``.
    """
    flag, positional = getattr(args, "model", None), getattr(args, "model_positional", None)
    if flag and positional and flag != positional:
        raise ValueError(f"two models given ({positional!r} and --model {flag!r}): give one, as --model MODEL.")
    if not (flag or positional):
        raise ValueError(f"no model: give the checkpoint as `mtaffect {command} --model MODEL` (a folder or Hub id).")
    if positional and not flag:
        print(f"mtaffect {command}: reading {positional!r} as --model {positional} (the flag every command takes).",
              file=sys.stderr)
    args.model = flag or positional
    return args.model


def set_threads(threads: int | None) -> None:
    """``--threads N`` of ``train``, ``data convert`` and ``extract``: torch's CPU threads (``None``: torch's default)."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}.")
    import torch

    torch.set_num_threads(threads)


def flag_value(args: argparse.Namespace, flag: str) -> Any:
    """The value of ``--some-flag`` (``args.some_flag``; ``None`` where the command has no such flag)."""
    return getattr(args, flag.lstrip("-").replace("-", "_"), None)
