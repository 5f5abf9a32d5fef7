"""``top-K`` against full fine-tuning: MiniLM on MELD emotion through mtaffect, paired by seed.

The same model, data and schedule as ``benchmarks/finetune_parity.py`` (its mtaffect side:
single-task MELD emotion, 64 tokens, batch 32, 10% warm-up, encoder 1e-4, the rest 1e-3),
trained once with ``finetune="full"`` and once with ``finetune="top-K"`` (the embeddings and
the lower layers frozen, their output computed once per example and cached; only the top K
layers, the pooling and the heads train) for each seed. Reported: test weighted F1 (the full
MELD test split, or its first ``--test-limit``), training time (wall and CPU; for ``top-K``
the one-off encoding of the cache is inside ``train_seconds``, since the Trainer builds it),
and ``top-K − full`` as paired differences with 95% t-intervals. Runs are appended to
``--results`` (resumable) like the parity benchmark's.

``--full-from parity.json`` takes the full fine-tuning runs from the parity benchmark's results
instead of training them again: its mtaffect side is this very run (the same function,
``finetune="full"``), so a record with the same setting and seed is reused as it stands, and
the table says so. Only the ``top-K`` runs are trained then.

    python benchmarks/finetune_top_k.py --train-limit 3000 --epochs 2 --seeds 0 1 --top 2 \\
        --results top_k.json --threads 1
    python benchmarks/finetune_top_k.py --epochs 2 --seeds 0 1 2 --top 2 --results top_k_full.json \\
        --full-from parity.json --threads 1
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _sibling(name: str):
    """A script beside this one, by path (the benchmarks folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PARITY = _sibling("finetune_parity")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("/work/shared/corpora/meld"))
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--top", type=int, default=2, help="K: the layers that train in top-K mode")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=0.1)
    parser.add_argument("--encoder-lr", type=float, default=1e-4)
    parser.add_argument("--head-lr", type=float, default=1e-3)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--pooling", default="mean", choices=["mean", "cls"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--full-from", type=Path, help="the parity benchmark's results: its mtaffect runs with the same "
                        "setting are the full fine-tuning runs (not trained again)")
    parser.add_argument("--table", action="store_true", help="only print the table of what --results holds")
    return parser.parse_args(argv)


def reused_full_runs(parity: Path, setting: dict[str, Any], seeds: list[int]) -> list[dict[str, Any]]:
    """The parity benchmark's mtaffect runs of ``setting`` (full fine-tuning, the same code) as full records."""
    return [{**{k: v for k, v in r.items() if k != "side"}, "finetune": "full", "from": str(parity)}
            for r in PARITY.load_results(parity)
            if r.get("side") == "mtaffect" and r["setting"] == setting and r["seed"] in seeds]


def table(records: list[dict[str, Any]], top: str) -> str:
    from mtaffect.statistics import paired_delta

    by_mode: dict[str, dict[int, dict[str, Any]]] = {"full": {}, top: {}}
    for record in records:
        if record["finetune"] in by_mode:
            by_mode[record["finetune"]][record["seed"]] = record
    lines = [f"| seed | full wF1 | {top} wF1 | Δ wF1 (pt) | full train s (wall / CPU) | {top} train s (wall / CPU) |",
             "|---|---|---|---|---|---|"]
    for seed in sorted(set(by_mode["full"]) | set(by_mode[top])):
        f, t = by_mode["full"].get(seed), by_mode[top].get(seed)
        score = [100 * r["weighted_f1"] if r else math.nan for r in (f, t)]
        times = [f"{r['train_seconds']:.0f} / {r['cpu_seconds']:.0f}" if r else "–" for r in (f, t)]
        if f and f.get("from"):
            times[0] += " (parity run)"
        lines.append(f"| {seed} | {score[0]:.2f} | {score[1]:.2f} | {score[1] - score[0]:+.2f} | {times[0]} | {times[1]} |")
    paired = sorted(set(by_mode["full"]) & set(by_mode[top]))
    if paired:
        f1 = paired_delta({s: by_mode[top][s]["weighted_f1"] for s in paired},
                          {s: by_mode["full"][s]["weighted_f1"] for s in paired})
        lines += ["", f"Paired over seeds {paired}, {top} − full, 95% t-interval:",
                  f"- test weighted F1: {f1.format(scale=100, digits=2)} points"]
        for key, name in (("train_seconds", "wall clock"), ("cpu_seconds", "CPU time")):
            ratio = [by_mode[top][s][key] / by_mode["full"][s][key] for s in paired]
            lines.append(f"- training cost {top} / full ({name}): {np.mean(ratio):.3f}")
    return "\n".join(lines)


def main() -> None:
    options = parse_args()
    top = f"top-{options.top}"
    setting = {key: getattr(options, key) for key in PARITY.SETTING_KEYS}
    if options.full_from is not None:
        recorded = {(r["finetune"], r["seed"]) for r in PARITY.load_results(options.results) if r["setting"] == setting}
        for record in reused_full_runs(options.full_from, setting, options.seeds):
            if ("full", record["seed"]) not in recorded:
                PARITY.append_result(options.results, record)
    if options.table:
        records = [r for r in PARITY.load_results(options.results) if r["setting"] == setting]
        print(table(records, top))
        return
    torch.set_num_threads(options.threads)
    corpus = PARITY.meld_splits(options)
    print(f"MELD: {len(corpus['train'])} train / {len(corpus['test'])} test utterances; {json.dumps(setting)}", flush=True)
    for seed in options.seeds:
        for mode in ("full", top):
            done = [r for r in PARITY.load_results(options.results)
                    if r["finetune"] == mode and r["seed"] == seed and r["setting"] == setting]
            if done:
                print(f"{mode} seed {seed}: recorded, skipped", flush=True)
                continue
            options.finetune = mode
            with tempfile.TemporaryDirectory() as output_dir:
                result = PARITY.run_mtaffect(corpus, options, seed, output_dir)
            PARITY.append_result(options.results, {
                "finetune": mode, "seed": seed, "setting": setting, "threads": options.threads, **result,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            })
            print(f"{mode} seed {seed}: weighted F1 {100 * result['weighted_f1']:.2f}, "
                  f"{result['train_seconds']:.0f} s wall / {result['cpu_seconds']:.0f} s CPU", flush=True)
    records = [r for r in PARITY.load_results(options.results) if r["setting"] == setting]
    print(table(records, top))


if __name__ == "__main__":
    main()
