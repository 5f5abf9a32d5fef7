"""The study on the ``ray`` backend against the ``local`` one: wall time ratio, same numbers, how far it scales.

Runs the default study (or the seeds given) twice on this machine, same config, same number
of parallel jobs: first with the local executor (``workers`` processes), then with the Ray
executor on a Ray instance started here with ``workers`` CPUs (its start-up counted in its
wall time, as a user pays it). Prints both wall times and their ratio (the goal is ≤ 1.15 on
2 cores), checks that the two reports hold the same numbers cell for cell, and prints the
default study's critical path over its total work (``mtaffect run --plan``, costed with the
seconds the local run recorded): the share of the study that no number of machines shortens.

    python benchmarks/study_backends.py                       # the default study, 2 workers
    python benchmarks/study_backends.py --seeds 0 --workers 2 --output-dir /tmp/backends

All Ray traffic stays on 127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path


def cells(report: Path) -> dict[tuple[str, str, str, str], dict[str, float]]:
    payload = json.loads(report.read_text(encoding="utf-8"))
    return {(r["setting"], r["corpus"], r["task"], r["metric"]): r["values"] for r in payload["records"]}


def same(a: dict, b: dict) -> list[str]:
    """The cells where two reports differ (beyond float noise)."""
    differ = [str(key) for key in sorted(set(a) ^ set(b))]
    for key in set(a) & set(b):
        for seed in set(a[key]) | set(b[key]):
            x, y = a[key].get(seed, math.nan), b[key].get(seed, math.nan)
            if not (math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(x) and math.isnan(y))):
                differ.append(f"{key} seed {seed}: {x} vs {y}")
    return differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2, help="local processes = Ray CPUs (default 2)")
    parser.add_argument("--output-dir", type=Path, default=None)
    parser.add_argument("--ray-first", action="store_true", help="run the ray backend first (on a shared "
                        "machine, whichever runs second meets another load: run both orders)")
    args = parser.parse_args(argv)
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before Ray starts: every address 127.0.0.1

    import ray

    from mtaffect.study import RESULTS_FILE, StudyConfig, run_study
    from mtaffect.study.runner import plan_study

    root = args.output_dir or Path(tempfile.mkdtemp(prefix="mtaffect-backends-"))
    local = StudyConfig(seeds=args.seeds, workers=args.workers, output_dir=str(root / "local"))
    remote = StudyConfig(seeds=args.seeds, workers=args.workers, output_dir=str(root / "ray"),
                         backend={"name": "ray"})
    walls: dict[str, float] = {}
    paths: dict[str, dict] = {}
    for backend in ("ray", "local") if args.ray_first else ("local", "ray"):
        started = time.time()
        if backend == "ray":
            ray.init(address="local", num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
            assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
            ray_start = time.time() - started
        paths[backend] = run_study(remote if backend == "ray" else local)
        walls[backend] = time.time() - started
        if backend == "ray":
            ray.shutdown()
    local_paths, ray_paths, local_wall, ray_wall = paths["local"], paths["ray"], walls["local"], walls["ray"]

    differences = same(cells(local_paths["json"]), cells(ray_paths["json"]))
    summary = plan_study(local, root / "local" / RESULTS_FILE)
    path, chain = summary.critical
    print(f"seeds {args.seeds}, {args.workers} workers, {len(summary.jobs)} jobs, "
          f"{'ray' if args.ray_first else 'local'} first; load average now {os.getloadavg()[0]:.1f}")
    print(f"local wall: {local_wall:.1f} s")
    print(f"ray wall:   {ray_wall:.1f} s (of which Ray start-up {ray_start:.1f} s)")
    print(f"ray / local wall: {ray_wall / local_wall:.3f}")
    print(f"same numbers: {not differences}" + (f" ({len(differences)} cells differ: {differences[:3]})" if differences else ""))
    print(f"total work: {summary.total:.1f} s; critical path: {path:.1f} s over {len(chain)} jobs; "
          f"critical path / total work: {path / summary.total:.3f} (at most {summary.total / path:.1f}x faster "
          "on any number of machines)")
    return 0 if not differences else 1


if __name__ == "__main__":
    raise SystemExit(main())
