"""``mtaffect data``: inspect (and, with the loaders, convert) unified corpora."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, load_from_disk

from mtaffect.data.schema import feature_column, feature_dims, get_corpus_info
from mtaffect.tasks import EMOTION_LABELS, SENTIMENT_CLASSES


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="describe or convert corpora")
    commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    describe = commands.add_parser(
        "describe", help="print a corpus' splits, sizes, modalities, tasks and label distributions"
    )
    describe.add_argument(
        "corpus",
        help="a saved unified corpus (folder from save_to_disk) or a synthetic corpus name, e.g. synthetic_mosei",
    )
    describe.set_defaults(func=_describe)
    data.set_defaults(func=lambda args: data.print_help() or 0)


def _load(name_or_path: str) -> DatasetDict:
    from mtaffect.data.corpora.synthetic import SPECS, make_synthetic_corpus

    if name_or_path in SPECS:
        return make_synthetic_corpus(name_or_path)
    path = Path(name_or_path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such corpus folder (or synthetic corpus name: {', '.join(sorted(SPECS))})."
        )
    loaded = load_from_disk(str(path))
    return loaded if isinstance(loaded, DatasetDict) else DatasetDict({"data": loaded})


def describe_corpus(corpus: DatasetDict) -> str:
    """A human-readable summary of a unified corpus."""
    info = get_corpus_info(corpus)
    lines = [f"corpus: {info.corpus}   feature set: {info.feature_set}"]
    first = next(iter(corpus.values()))
    dims = feature_dims(first.features)
    lines.append("modalities: " + ", ".join(f"{m} (D={d})" for m, d in dims.items()))
    if info.replaced_nonfinite:
        lines.append(f"non-finite feature values replaced by the loader: {info.replaced_nonfinite}")
    for split_name, split in corpus.items():
        lines.append(f"\n[{split_name}] {split.num_rows} examples")
        lines.extend("  " + line for line in _split_summary(split, dims))
    return "\n".join(lines)


def _split_summary(split: Dataset, dims: dict[str, int]) -> list[str]:
    if split.num_rows == 0:
        return ["(empty)"]
    table = split.with_format("numpy")
    lines = []
    for modality in dims:
        lengths = np.asarray([len(x) for x in table[feature_column(modality)]])
        lines.append(
            f"{modality}: length min/median/max {lengths.min()}/{int(np.median(lengths))}/{lengths.max()}"
            + (f", {int((lengths == 0).sum())} empty" if (lengths == 0).any() else "")
        )
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
    print(describe_corpus(_load(args.corpus)))
    return 0
