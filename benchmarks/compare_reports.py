"""Are two study reports the same numbers? The refactor check of the default ``mtaffect run``.

The default study is deterministic, so a change that keeps behaviour must reproduce every
number of ``report.json``: each (setting, corpus, task, metric) cell's per-seed values, mean
and std, what validation chose per seed, the weak-label notes and the corpora. Only what
describes the run, not the result (``wall_time_seconds``, ``workers``, ``model seconds per
setting``, ``backend``), may differ; the
recorded config is compared too but reported apart (a renamed field changes it, not the
numbers).

    mtaffect run --output-dir /tmp/after
    python benchmarks/compare_reports.py /work/baseline-run/report.json /tmp/after/report.json
    python benchmarks/compare_reports.py --write-numbers tests/data/default_run_numbers.json /tmp/after/report.json

``--write-numbers`` stores just the numbers (``numbers()`` below), the copy the slow test
``tests/test_study.py::test_default_run_reproduces_the_recorded_numbers`` compares against.
Exit status 0 when the numbers are equal, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: Metadata that describes the run (machine, time), not its result.
RUN_ONLY = ("wall_time_seconds", "workers", "config", "model seconds per setting", "backend")


def numbers(report: dict[str, Any]) -> dict[str, Any]:
    """The part of a ``report.json`` a behaviour-preserving change must reproduce exactly."""
    metadata = {key: value for key, value in report["metadata"].items() if key not in RUN_ONLY}
    cells = {
        "/".join((r["setting"], r["corpus"], r["task"], r["metric"])): {
            "values": r["values"], "mean": r["mean"], "std": r["std"], "n_seeds": r["n_seeds"],
        }
        for r in report["records"]
    }
    return {"metadata": metadata, "settings": report["settings"], "cells": cells}


def differences(before: Any, after: Any, where: str = "") -> list[str]:
    """Every path at which two JSON values differ (floats compared exactly; NaN equals NaN)."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = [f"{where}/{key}: only in the first" for key in before if key not in after]
        found += [f"{where}/{key}: only in the second" for key in after if key not in before]
        for key in before:
            if key in after:
                found += differences(before[key], after[key], f"{where}/{key}")
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [d for i, (a, b) in enumerate(zip(before, after)) for d in differences(a, b, f"{where}[{i}]")]
    same = before == after or (isinstance(before, float) and isinstance(after, float) and before != before and after != after)
    return [] if same else [f"{where}: {before!r} != {after!r}"]


def _read(path: Path) -> dict[str, Any]:
    payload = json.loads(path.read_text(encoding="utf-8"))
    return payload if "cells" in payload else numbers(payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, help="report.json files (or stored numbers) to compare")
    parser.add_argument("--write-numbers", type=Path, help="store the numbers of the (one) report here")
    args = parser.parse_args(argv)
    if args.write_numbers:
        (report,) = args.reports
        args.write_numbers.write_text(json.dumps(_read(report), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {args.write_numbers}")
        return 0
    if len(args.reports) != 2:
        parser.error("give two reports to compare")
    first, second = (_read(path) for path in args.reports)
    found = differences(first, second)
    cells = len(first["cells"])
    if found:
        print(f"{len(found)} difference(s) between {args.reports[0]} and {args.reports[1]}:")
        print("\n".join("  " + line for line in found[:50]))
        return 1
    print(f"same numbers: {cells} cells (setting/corpus/task/metric, per-seed values, mean, std), "
          "validation choices, weak-label notes and corpora are equal.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
