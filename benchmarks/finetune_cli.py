"""Single-task MELD emotion with a fine-tuned MiniLM, trained the way a user types it: ``mtaffect train``.

Each seed runs, as a subprocess, exactly::

    mtaffect train --corpora meld=CORPUS --tasks emotion --text-encoder sentence-transformers/all-MiniLM-L6-v2 \\
        --seed SEED --threads THREADS --output-dir OUT [EXTRA ...]

with the command's own defaults (``mtaffect.recipes.ENCODER_TRAINING_DEFAULTS``: full
fine-tuning, 3 epochs, the encoder at 1e-4 and the rest at 1e-3, 10% warm-up, 128 tokens,
the validation split read after every epoch and the best epoch kept), then reads the MELD
test weighted F1 from the ``test_results.json`` the command writes, with the predicted-class
counts and the weighted F1 ``mtaffect evaluate`` gives the saved model (the same number, read back
through the checkpoint). ``EXTRA`` (after ``--``) is passed
on unchanged, e.g. ``-- --finetune top-2``. Runs are appended to ``--results`` (JSON,
resumable); the table gives each seed, the mean with its 95% t-interval, and the CPU time.

    python benchmarks/finetune_cli.py --corpus /path/to/meld --seeds 0 1 2 --results cli.json
    python benchmarks/finetune_cli.py --results cli.json --table
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ENCODER = "sentence-transformers/all-MiniLM-L6-v2"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("/work/shared/corpora/meld"),
                        help="folder with MELD's train/dev/test_sent_emo.csv as published")
    parser.add_argument("--results", type=Path, required=True, help="JSON file the runs are appended to (resumable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2, help="mtaffect train --threads")
    parser.add_argument("--table", action="store_true", help="only print the table of what --results holds")
    parser.add_argument("extra", nargs="*", help="after '--': more mtaffect train arguments, passed on unchanged")
    return parser.parse_args(argv)


def command(options: argparse.Namespace, seed: int, output: Path) -> list[str]:
    return ["mtaffect", "train", "--corpora", f"meld={options.corpus}", "--tasks", "emotion", "--text-encoder",
            ENCODER, "--seed", str(seed), "--threads", str(options.threads), "--output-dir", str(output),
            *options.extra]


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_seed(options: argparse.Namespace, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mtaffect-cli-") as scratch:
        output = Path(scratch) / "model"
        argv = command(options, seed, output)
        print("$ " + " ".join(argv), flush=True)
        wall, cpu = time.perf_counter(), children_cpu_seconds()
        subprocess.run(argv, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        seconds = {"train_seconds": time.perf_counter() - wall, "cpu_seconds": children_cpu_seconds() - cpu}
        test = json.loads((output / "test_results.json").read_text())
        # The saved model, scored again by the command a user would run on it.
        subprocess.run(["mtaffect", "evaluate", "--model", str(output), "--corpora", f"meld={options.corpus}",
                        "--output", str(Path(scratch) / "evaluate.json")], check=True)
        evaluated = json.loads((Path(scratch) / "evaluate.json").read_text())["corpora"]["meld"]
    counts = {key.split("emotion_predicted_", 1)[1]: value for key, value in evaluated.items() if "emotion_predicted_" in key}
    return {**seconds, "weighted_f1": float(test["test_meld_emotion_weighted_f1"]),
            "accuracy": float(test.get("test_meld_emotion_accuracy", float("nan"))),
            "evaluate_weighted_f1": float(evaluated["emotion_weighted_f1"]), "predicted": counts}


def table(records: list[dict[str, Any]]) -> str:
    from mtaffect.statistics import paired_delta

    lines = ["| seed | test weighted F1 | accuracy | wall (min) | CPU (min) | classes predicted |", "|---|---|---|---|---|---|"]
    for r in sorted(records, key=lambda r: r["seed"]):
        predicted = sum(1 for value in r.get("predicted", {}).values() if value)
        lines.append(f"| {r['seed']} | {100 * r['weighted_f1']:.2f} | {100 * r['accuracy']:.2f} | "
                     f"{r['train_seconds'] / 60:.1f} | {r['cpu_seconds'] / 60:.1f} | {predicted or '?'} of 7 |")
    if len(records) >= 2:
        scores = {r["seed"]: r["weighted_f1"] for r in records}
        interval = paired_delta(scores, {seed: 0.0 for seed in scores})  # the mean's own t-interval
        lines += ["", f"mean over seeds {sorted(scores)}: {100 * np.mean(list(scores.values())):.2f} "
                      f"(95% t-interval {interval.format(scale=100, digits=2)}) test weighted F1"]
    return "\n".join(lines)


def main() -> None:
    options = parse_args()
    records = json.loads(options.results.read_text()) if options.results.is_file() else []
    wanted = {"corpus": str(options.corpus), "threads": options.threads, "extra": options.extra}
    if not options.table:
        for seed in options.seeds:
            if any(r["seed"] == seed and r["setting"] == wanted for r in records):
                print(f"seed {seed}: recorded, skipped", flush=True)
                continue
            result = run_seed(options, seed)
            records.append({"seed": seed, "setting": wanted, **result, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
            temporary = options.results.with_suffix(".tmp")
            temporary.write_text(json.dumps(records, indent=1))
            temporary.replace(options.results)
            print(f"seed {seed}: test weighted F1 {100 * result['weighted_f1']:.2f}", flush=True)
    print(table([r for r in records if r["setting"] == wanted]))


if __name__ == "__main__":
    sys.exit(main())
