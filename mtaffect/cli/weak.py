"""``mtaffect weak-label``: fill a saved corpus' missing task labels with a teacher's predictions."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from mtaffect.cli.main import command_help
from mtaffect.configuration_mtaffect import WEAK_LABEL_MODES
from mtaffect.output_folder import OutputFolder
from mtaffect.tasks import TASK_NAMES
from mtaffect.weak_labels import add_weak_labels, weak_label_quality


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "weak-label",
        help=command_help("weak-label"),
        description=(
            "Label the rows of a saved unified corpus (a folder from save_to_disk) that have no gold "
            "label for TASK with a teacher's predictions, and save the result as a new DatasetDict. "
            "Results are cached next to the input's Arrow files (as any datasets.map), so re-running "
            "the same command is free; --no-cache writes nothing there."
        ),
    )
    parser.add_argument("--teacher", help="teacher checkpoint folder (save_pretrained); not needed with --ablation hide")
    parser.add_argument("--task", required=True, choices=TASK_NAMES, help="task to label")
    parser.add_argument("--input", required=True, help="saved corpus folder (load_from_disk)")
    parser.add_argument("--output", required=True, help="folder for the labelled corpus (new or empty; see --overwrite)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what mtaffect wrote in --output earlier; files mtaffect did not write are kept",
    )
    parser.add_argument("--mode", choices=WEAK_LABEL_MODES, default="soft", help="soft probabilities/score or hard labels")
    parser.add_argument(
        "--threshold", type=float, default=None, help="confidence in [0, 1] below which the weak mask stays off"
    )
    parser.add_argument(
        "--ablation",
        choices=("replace", "hide"),
        default=None,
        help="replace: hide the gold TASK labels and label every row; hide: only hide the gold labels",
    )
    parser.add_argument(
        "--overwrite-gold", action="store_true", help="same as --ablation replace"
    )
    parser.add_argument(
        "--label-gold",
        action="store_true",
        help="also label rows with a gold label (gold kept), to measure the teacher against it",
    )
    parser.add_argument(
        "--sentiment-confidence",
        choices=("boundary", "mc_dropout"),
        default="boundary",
        help="how sentiment confidence is computed (see mtaffect.weak_labels)",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="rows per teacher forward")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the datasets cache")
    parser.add_argument("--report", default=None, help="also write the teacher-quality report as JSON to this file")
    parser.set_defaults(func=_weak_label)


def _check_paths(source: Path, target: Path) -> None:
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such corpus folder (expected a folder written by save_to_disk).")
    source_resolved, target_resolved = source.resolve(), target.resolve()
    if target_resolved == source_resolved or source_resolved in target_resolved.parents:
        raise ValueError(f"--output {target} is inside --input {source}: choose a new folder; the input is never modified.")
    if target_resolved in source_resolved.parents:
        raise ValueError(f"--output {target} contains --input {source}: choose a new folder.")


def _weak_label(args: argparse.Namespace) -> int:
    from datasets import DatasetDict, load_from_disk

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise ValueError(f"--threshold must be a confidence in [0, 1], got {args.threshold}.")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}.")
    source, target = Path(args.input), Path(args.output)
    _check_paths(source, target)
    folder = OutputFolder(target, command="mtaffect weak-label", overwrite=args.overwrite)
    folder.check()
    if args.report and Path(args.report).exists():
        raise FileExistsError(f"--report {args.report} exists; mtaffect writes only new report files: pick another name.")
    ablation = args.ablation
    if args.overwrite_gold:
        if ablation not in (None, "replace"):
            raise ValueError("--overwrite-gold means --ablation replace; it contradicts --ablation hide.")
        ablation = "replace"
    if ablation != "hide" and not args.teacher:
        raise ValueError("--teacher is required (unless --ablation hide).")
    corpus = load_from_disk(str(source))
    labelled = add_weak_labels(
        corpus,
        None if ablation == "hide" else args.teacher,
        args.task,
        mode=args.mode,
        threshold=args.threshold,
        ablation=ablation,
        label_gold=args.label_gold,
        batch_size=args.batch_size,
        device=args.device,
        cache=not args.no_cache,
        sentiment_confidence=args.sentiment_confidence,
    )
    with folder.staging() as scratch:
        labelled.save_to_disk(str(scratch))
    if folder.last_commit.summary(target):
        print(folder.last_commit.summary(target))
    splits = dict(labelled.items()) if isinstance(labelled, DatasetDict) else {"dataset": labelled}
    report: dict[str, Any] = {name: _summary(split, args.task) for name, split in splits.items()}
    for name, summary in report.items():
        print(_summary_line(name, summary, args.task))
    if ablation == "replace" or (args.label_gold and ablation is None):
        # Weak and gold labels exist on the same rows only then: score the teacher against the gold.
        quality = weak_label_quality(labelled, args.task, gold=corpus if ablation == "replace" else None)
        quality = quality if isinstance(labelled, DatasetDict) else {"dataset": quality}
        for name, split_report in quality.items():
            report[name]["quality"] = split_report
            if split_report.get("n_compared"):
                print(_quality_line(name, split_report))
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    print(f"saved to {target}")
    return 0


def _summary(split: Any, task: str) -> dict[str, Any]:
    import numpy as np

    table = split.with_format("numpy", columns=[f"{task}_weak_mask", f"{task}_weak_confidence", f"{task}_mask"])[:]
    weak = np.asarray(table[f"{task}_weak_mask"], dtype=bool)
    gold = np.asarray(table[f"{task}_mask"], dtype=bool)
    weak_rows = weak.any(1) if weak.ndim == 2 else weak
    gold_rows = gold.any(1) if gold.ndim == 2 else gold
    confidence = np.asarray(table[f"{task}_weak_confidence"], dtype=np.float64)
    return {
        "rows": split.num_rows,
        "gold": int(gold_rows.sum()),
        "weak": int(weak_rows.sum()),
        "mean_confidence": float(confidence[weak_rows].mean()) if weak_rows.any() else None,
    }


def _summary_line(name: str, summary: dict[str, Any], task: str) -> str:
    mean = summary["mean_confidence"]
    return (
        f"[{name}] {summary['rows']} rows: {summary['gold']} gold {task}, {summary['weak']} weak {task}"
        + (f", mean confidence {mean:.3f}" if mean is not None else "")
    )


def _quality_line(name: str, report: dict[str, Any]) -> str:
    keys = ("accuracy", "weighted_f1", "weighted_acc", "Corr", "MAE")
    parts = []
    for key in keys:
        if key in report and math.isfinite(report[key]):
            chance = report.get(f"majority_{key}")
            parts.append(f"{key} {report[key]:.3f}" + (f" (majority {chance:.3f})" if chance is not None else ""))
    return f"[{name}] teacher vs gold on {report['n_compared']} rows: " + ", ".join(parts)


def _json_default(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
