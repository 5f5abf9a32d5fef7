"""``mtaffect report``: one report from the per-seed results of one or several study runs.

Seeds are independent, so a study can run in pieces (other machines, other days) and be
reported as one: each ``mtaffect run`` writes ``results.jsonl`` (one line per number) next to
its report, and this command merges them and writes report.json / report.md / report.png
as ``mtaffect run`` does, without training anything::

    mtaffect run --seeds 0 1 --output-dir runs/a
    mtaffect run --seeds 2 3 4 --output-dir runs/b
    mtaffect report runs/a runs/b --output-dir runs/all
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from mtaffect.cli.main import command_help
from mtaffect.output_folder import OutputFolder
from mtaffect.report import (
    Result,
    append_results,
    build_report,
    primary_tasks_of,
    terminal_summary,
    write_report,
)
from mtaffect.study import read_records, recorded_choices, records_results

#: What ``mtaffect run`` writes; ``report`` writes the same names (never over existing files).
REPORT_FILES: tuple[str, ...] = ("report.json", "report.md", "report.png", "results.jsonl")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help=command_help("report"),
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("results", nargs="+", type=Path, help="study output folders or their results.jsonl files")
    parser.add_argument("--output-dir", type=Path, required=True, help="where the merged report goes (a new folder)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what mtaffect wrote in --output-dir earlier (files mtaffect did not write are kept)",
    )
    parser.set_defaults(func=_report)


def results_file(path: Path) -> Path:
    """``path`` itself, or the ``results.jsonl`` in a study output folder."""
    candidate = path / "results.jsonl" if path.is_dir() else path
    if not candidate.is_file():
        raise FileNotFoundError(f"{candidate}: no such results file (mtaffect run writes results.jsonl in its output folder).")
    return candidate


def merge_results(paths: list[Path]) -> tuple[list[Any], dict[str, Any]]:
    """Every result of every file, refusing two different values for one (setting, seed, corpus, task, metric).

    Also returns what the runs' report.json files say was chosen on validation, per seed.
    """
    merged: dict[tuple, Any] = {}
    origin: dict[tuple, Path] = {}
    chosen: dict[str, Any] = {}
    for path in paths:
        try:
            results, recorded_chosen = read_any_results(path)
        except (json.JSONDecodeError, TypeError, KeyError) as error:
            raise ValueError(f"{path}: not a results file of mtaffect run ({error}).") from None
        chosen.update(recorded_chosen)
        for result in results:
            key = (result.setting, result.seed, result.corpus, result.task, result.metric)
            if key in merged and not _same(merged[key].value, result.value):
                raise ValueError(
                    f"{path} and {origin[key]} disagree on {key}: {result.value} vs {merged[key].value}. "
                    "Merge runs of different seeds (or identical reruns), not different studies."
                )
            merged[key], origin[key] = result, path
        report = path.with_name("report.json")
        if report.is_file() and not recorded_chosen:
            metadata = json.loads(report.read_text(encoding="utf-8")).get("metadata", {})
            chosen.update(metadata.get("chosen on validation (per seed)") or {})
    return list(merged.values()), chosen


def read_any_results(path: Path) -> tuple[list[Any], dict[str, Any]]:
    """The results of a file: model records of ``mtaffect run`` (one line per trained model,
    whatever was recorded before an interruption) or lines of single numbers (``mtaffect report``'s
    own output, older runs). Also what validation chose, per seed, when the records say."""
    text = path.read_text(encoding="utf-8")
    if '"record": "model"' not in text:
        return [Result(**json.loads(line)) for line in text.splitlines() if line.strip()], {}
    records = read_records(path)
    return records_results(records), recorded_choices(records)


def _same(a: float, b: float) -> bool:
    """Equal up to float noise (the same seed rerun in another process may differ in the last bits)."""
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))


def _report(args: argparse.Namespace) -> int:
    folder = OutputFolder(args.output_dir, command="mtaffect report", overwrite=args.overwrite)
    folder.check(will_write=REPORT_FILES)
    paths = [results_file(path) for path in args.results]

    results, chosen = merge_results(paths)
    if not results:
        raise ValueError(f"{', '.join(map(str, paths))}: no results to report.")
    seeds = sorted({result.seed for result in results})
    metadata: dict[str, Any] = {"seeds": seeds, "merged from": [str(path) for path in paths]}
    corpora = recorded_corpora(paths)
    if corpora:
        metadata["corpora"] = corpora
    if chosen:
        metadata["chosen on validation (per seed)"] = {str(seed): chosen[str(seed)] for seed in seeds if str(seed) in chosen}
    with folder.staging(will_write=REPORT_FILES) as scratch:
        write_report(results, scratch, metadata=metadata)
        append_results(scratch / "results.jsonl", results)
    written = {kind: args.output_dir / f"report.{kind}" for kind in ("json", "md", "png")}
    print(f"mtaffect report: {len(results)} results of seeds {seeds} from {len(paths)} file(s)\n")
    print(terminal_summary(build_report(results, primary_tasks=primary_tasks_of(metadata))))
    print()
    print(f"Full tables in {written['md']}; also wrote:")
    for path in (written["json"], written["png"], args.output_dir / "results.jsonl"):
        print(f"  {path}")
    return 0


def recorded_corpora(paths: list[Path]) -> dict[str, Any]:
    """What the runs' report.json files record about their corpora (tasks, primary task)."""
    corpora: dict[str, Any] = {}
    for path in paths:
        report = path.with_name("report.json")
        if report.is_file():
            corpora.update(json.loads(report.read_text(encoding="utf-8")).get("metadata", {}).get("corpora") or {})
    return corpora
