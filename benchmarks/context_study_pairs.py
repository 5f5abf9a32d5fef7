"""Pair a study run with conversational context against the recorded context-free study, seed by seed.

Both runs are ``mtaffect run`` outputs of the same recipe (``examples/real_corpora/study.yaml``
and ``study-context.yaml``: same corpora, same seeds, only ``model.context`` differs). For every
setting and headline metric, prints the mean over the seeds both ran, without and with context,
and the paired difference with its 95% t-interval (``mtaffect.statistics.paired_delta``).

    python benchmarks/context_study_pairs.py docs/results/speaker-independent/results.jsonl \\
        docs/results/context/study-context-2-seeds/results.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SETTINGS = ("single-task", "multi-task", "multi-task-weak", "multi-task-gold")
METRICS = {
    ("meld", "emotion"): "emotion_weighted_f1",
    ("meld", "sentiment"): "sentiment_weighted_f1",
    ("emorynlp", "emotion"): "emotion_weighted_f1",
    ("mustard", "sarcasm"): "sarcasm_weighted_f1",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("without", type=Path, help="results.jsonl of the context-free study")
    parser.add_argument("with_context", type=Path, help="results.jsonl of the study with context")
    return parser.parse_args(argv)


def scores(path: Path) -> dict[tuple[str, str, str, str, int], float]:
    """(setting, corpus, task, metric, seed) -> test value of every model record of a study."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.strip() else {}
        if record.get("record") != "model":
            continue
        for result in record.get("results", []):
            out[(record["setting"], result["corpus"], result["task"], result["metric"], record["seed"])] = result["value"]
    return out


def main(argv: list[str] | None = None) -> None:
    from mtaffect.statistics import paired_delta

    args = parse_args(argv)
    base, context = scores(args.without), scores(args.with_context)
    for setting in SETTINGS:
        for (corpus, task), metric in METRICS.items():
            key = (setting, corpus, task, metric)
            with_ = {k[-1]: v for k, v in context.items() if k[:4] == key}
            without = {k[-1]: v for k, v in base.items() if k[:4] == key}
            seeds = sorted(set(with_) & set(without))
            if not seeds:
                continue
            delta = paired_delta(with_, without)
            before = 100 * sum(without[s] for s in seeds) / len(seeds)
            after = 100 * sum(with_[s] for s in seeds) / len(seeds)
            print(f"{setting:16s} {corpus:8s} {task:9s} seeds {seeds}: without {before:.2f}  "
                  f"with {after:.2f}  Δ {delta.format(scale=100, digits=2)}")


if __name__ == "__main__":
    main()
