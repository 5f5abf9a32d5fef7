"""``mtaffect data``: list the corpus loaders, convert published corpora, describe unified ones.

* ``mtaffect data list`` — registered corpora, their formats and options;
* ``mtaffect data convert --corpus NAME --input PATH [--format F] --output DIR [--option K=V ...]``
  — read a corpus as published into a unified corpus folder (``datasets.load_from_disk``
  opens it memory-mapped);
* ``mtaffect data describe DIR|NAME [--input PATH ...]`` — splits, sizes, modalities, labels.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict, load_from_disk

from mtaffect.cli.inputs import set_threads
from mtaffect.cli.main import command_help
from mtaffect.data.arrow import sequence_lengths
from mtaffect.data.corpora import corpus_names, list_corpora, load_corpus
from mtaffect.data.schema import feature_column, feature_dims, get_corpus_info
from mtaffect.data.sources import CorpusSource
from mtaffect.output_folder import OutputFolder
from mtaffect.tasks import EMOTION_LABELS, SENTIMENT_CLASSES

_OPTION_HELP = (
    'a loader option, repeatable: fold=2, aligned=false, features.text=text.npz, transpose=["audio"] '
    "(values are read as JSON when they parse, else as strings; dotted keys build dicts)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help=command_help("data"))
    commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    describe = commands.add_parser(
        "describe", help="print a corpus' splits, sizes, modalities, tasks and label distributions"
    )
    describe.add_argument(
        "corpus",
        help="a saved unified corpus (folder from `data convert` / save_to_disk), a synthetic corpus name "
        "(e.g. synthetic_mosei), or a registered corpus name (e.g. meld) with --input",
    )
    describe.add_argument("--input", help="for a registered corpus name: its published file or folder")
    describe.add_argument("--format", help="format of --input (detected from the file names when omitted)")
    describe.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help=_OPTION_HELP)
    describe.set_defaults(func=_describe)

    convert = commands.add_parser(
        "convert",
        help="read a corpus as published (MMSA/MulT pickles, CMU-SDK .csd, MUStARD, MELD) into a unified "
        "corpus folder (Arrow, opened memory-mapped by datasets.load_from_disk)",
    )
    convert.add_argument("--corpus", required=True, help="corpus name (see `mtaffect data list`)")
    convert.add_argument("--input", required=True, help="the published file or folder")
    convert.add_argument("--format", help="mmsa, mult, cmu_sdk, mustard or meld (detected when omitted)")
    convert.add_argument(
        "--output", required=True, help="folder to write (new or empty; see --overwrite for one that is not)"
    )
    convert.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help=_OPTION_HELP)
    convert.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what mtaffect wrote in --output earlier (listed in its .mtaffect-manifest.json); "
        "files mtaffect did not write are kept",
    )
    convert.add_argument("--limit", type=int, metavar="N", help="only the first N utterances of each split (a dry run)")
    convert.add_argument(
        "--threads", type=int, metavar="N", help="torch CPU threads for feature extraction (default: torch's)"
    )
    convert.set_defaults(func=_convert)

    listing = commands.add_parser("list", help="list the registered corpora, their formats and options")
    listing.set_defaults(func=_list)
    data.set_defaults(func=lambda args: data.print_help() or 0)


def parse_options(items: list[str]) -> dict[str, Any]:
    """``["fold=2", "features.text=a.npz"]`` -> ``{"fold": 2, "features": {"text": "a.npz"}}``.

    Examples:
        >>> parse_options(["fold=2", "aligned=False", "features.text=t.npz", "transpose=[\\"audio\\"]"])
        {'fold': 2, 'aligned': False, 'features': {'text': 't.npz'}, 'transpose': ['audio']}
    """
    options: dict[str, Any] = {}
    literals = {"True": True, "False": False, "None": None}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--option {item!r}: expected KEY=VALUE.")
        value: Any
        if raw in literals:
            value = literals[raw]
        else:
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
        *parents, leaf = key.split(".")
        target = options
        for parent in parents:
            node = target.setdefault(parent, {})
            if not isinstance(node, dict):
                raise ValueError(f"--option {item!r}: {parent!r} was already given a value.")
            target = node
        target[leaf] = value
    return options


def _list(args: argparse.Namespace) -> int:
    for entry in list_corpora():
        print(f"{entry.corpus} ({entry.format}): {entry.description}")
        for option in entry.options:
            print(f"    {option.name}={option.default!r}  {option.help}")
    return 0


def _load(name_or_path: str, args: argparse.Namespace | None = None) -> DatasetDict:
    """The corpus ``data describe`` names: a ``CorpusSource``, or a registered name with ``--input``."""
    options = parse_options(getattr(args, "option", None) or [])
    source_path = getattr(args, "input", None)
    format = getattr(args, "format", None)
    name = name_or_path.lower()
    if source_path is not None:
        return CorpusSource(name=name, path=source_path, format=format, options=options).load()
    if not Path(name_or_path).exists() and name in corpus_names():
        entries = [e for e in list_corpora() if e.corpus == name]
        if all(e.needs_path for e in entries):
            formats = "\n".join(
                f"  {e.format}: {e.description}\n    options: " + ", ".join(f"{o.name}={o.default!r}" for o in e.options)
                for e in entries
            )
            raise ValueError(
                f"{name} is read from its published files: pass --input PATH (and --format / --option KEY=VALUE "
                f"as needed). Formats:\n{formats}"
            )
    source = CorpusSource.parse(name_or_path, where="data describe")
    source.format, source.options = format, options
    return source.load()


def describe_corpus(corpus: DatasetDict) -> str:
    """A human-readable summary of a unified corpus."""
    info = get_corpus_info(corpus)
    lines = [f"corpus: {info.corpus}   feature set: {info.feature_set}"]
    first = next(iter(corpus.values()))
    dims = feature_dims(first.features)
    lines.append("modalities: " + (", ".join(f"{m} (D={d})" for m, d in dims.items())
                                   or "none: text-only (raw transcripts, for a model with a text encoder)"))
    if info.tasks:
        lines.append("gold tasks: " + ", ".join(info.tasks))
    if info.replaced_nonfinite:
        lines.append(f"non-finite feature values replaced by the loader: {info.replaced_nonfinite}")
    # What the loader recorded (options, drops, protocol); long entries (file metadata) stay in the info.
    notes = {key: json.dumps(value, default=str) for key, value in sorted(info.notes.items())}
    short = [f"{key}={value}" for key, value in notes.items() if len(value) <= 100]
    if short:
        lines.append("loader notes: " + "; ".join(short))
    for split_name, split in corpus.items():
        lines.append(f"\n[{split_name}] {split.num_rows} examples")
        lines.extend("  " + line for line in _split_summary(split, dims))
    return "\n".join(lines)


def _split_summary(split: Dataset, dims: dict[str, int]) -> list[str]:
    if split.num_rows == 0:
        return ["(empty)"]
    lines = []
    for modality in dims:
        lengths = sequence_lengths(split, feature_column(modality))
        lines.append(
            f"{modality}: length min/median/max {lengths.min()}/{int(np.median(lengths))}/{lengths.max()}"
            + (f", {int((lengths == 0).sum())} empty" if (lengths == 0).any() else "")
        )
    label_columns = [c for c in split.column_names if c.startswith(("emotion", "sentiment", "sarcasm"))]
    # One slice per column set: datasets 5 answers np.asarray(ds["col"]) row by row.
    table = split.select_columns(label_columns).with_format("numpy")[:]
    emotion_mask = np.asarray(table["emotion_mask"])
    if emotion_mask.any():
        known = emotion_mask.any(1)
        emotion = np.asarray(table["emotion"])[known]
        kind = "multi-label" if np.asarray(table["emotion_multilabel"])[known].any() else "single-label"
        counts = ", ".join(
            f"{name} {int(emotion[:, j].sum())}"
            for j, name in enumerate(EMOTION_LABELS)
            if emotion_mask[known][:, j].any()
        )
        lines.append(f"emotion ({kind}, {int(known.sum())} labelled): {counts}")
    sentiment_mask = np.asarray(table["sentiment_mask"])
    if sentiment_mask.any():
        scores = np.asarray(table["sentiment"])[sentiment_mask]
        classes = np.asarray(table["sentiment_class"])[sentiment_mask]
        line = f"sentiment ({int(sentiment_mask.sum())} labelled): mean {scores.mean():+.2f}, std {scores.std():.2f}"
        if (classes >= 0).any():
            line += ", classes " + ", ".join(
                f"{name} {int((classes == c).sum())}" for c, name in enumerate(SENTIMENT_CLASSES)
            )
        lines.append(line)
    sarcasm_mask = np.asarray(table["sarcasm_mask"])
    if sarcasm_mask.any():
        sarcasm = np.asarray(table["sarcasm"])[sarcasm_mask]
        lines.append(f"sarcasm ({int(sarcasm_mask.sum())} labelled): {int(sarcasm.sum())} sarcastic")
    for task in ("emotion", "sentiment", "sarcasm"):
        weak_mask = np.asarray(table[f"{task}_weak_mask"])
        weak_known = weak_mask.any(1) if weak_mask.ndim == 2 else weak_mask
        if weak_known.any():
            confidence = np.asarray(table[f"{task}_weak_confidence"])[weak_known]
            lines.append(
                f"{task} weak labels: {int(weak_known.sum())}, mean confidence {confidence.mean():.2f}"
            )
    return lines


def _describe(args: argparse.Namespace) -> int:
    print(describe_corpus(_load(args.corpus, args)))
    return 0


def convert_corpus(
    corpus: str,
    input: str | Path,
    output: str | Path,
    format: str | None = None,
    overwrite: bool = False,
    **options: Any,
) -> DatasetDict:
    """Convert a published corpus into ``output`` (a ``save_to_disk`` folder) and open it.

    The folder follows :class:`~mtaffect.output_folder.OutputFolder`'s rules: the conversion
    goes to a scratch folder beside ``output`` and is moved into place at the end, so an error
    or Ctrl-C leaves no partial ``output`` (and an earlier conversion whole). A folder holding
    files mtaffect did not write is refused unless ``overwrite``; with it, only the files of an
    earlier conversion (listed in the folder's manifest) are replaced and the user's are kept.
    """
    folder = OutputFolder(output, command="mtaffect data convert", overwrite=overwrite)
    return _convert_into(folder, corpus, input, format, options)


def _convert_into(folder: Any, corpus: str, input: str | Path, format: str | None, options: dict[str, Any]) -> DatasetDict:
    with folder.staging() as scratch:
        converted = load_corpus(corpus, input, format, cache_dir=scratch.parent / "cache", **options)
        converted.save_to_disk(str(scratch))
        del converted
    return load_from_disk(str(folder.target))


def _convert(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    options = parse_options(args.option)
    if args.limit is not None:
        options["limit"] = args.limit
    folder = OutputFolder(args.output, command="mtaffect data convert", overwrite=args.overwrite)
    started = time.perf_counter()
    corpus = _convert_into(folder, args.corpus, args.input, args.format, options)
    elapsed = time.perf_counter() - started
    print(describe_corpus(corpus))
    if folder.last_commit.summary(folder.target):
        print("\n" + folder.last_commit.summary(folder.target))
    print(f"\nconverted in {elapsed:.1f} s -> {args.output} (open it with datasets.load_from_disk)")
    return 0
