"""Benchmark: time to collate one training batch of MOSEI-shaped rows.

Rows are what the Trainer's data loader hands the collator: per-example ``[T, D]`` float32
numpy arrays for text/audio/visual (D = 300/74/35, T uniform in [--min-len, --max-len]) and
the schema's label columns. Prints the median time per batch and per example over
``--repeats`` batches. Usage::

    python benchmarks/collate.py                      # batch 32, T in [40, 60]
    python benchmarks/collate.py --batch-size 256
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from mtaffect.data.collator import MTAffectCollator
from mtaffect.data.schema import unknown_labels

DIMS = {"text": 300, "audio": 74, "visual": 35}


def make_rows(n: int, min_len: int, max_len: int, rng: np.random.Generator) -> list[dict]:
    rows = []
    for _ in range(n):
        length = int(rng.integers(min_len, max_len + 1))
        row = {"feature_set": "cmu-mosei"}
        for modality, dim in DIMS.items():
            row[f"{modality}_features"] = rng.standard_normal((length, dim), dtype=np.float32)
        row.update(unknown_labels())
        rows.append(row)
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--min-len", type=int, default=40)
    parser.add_argument("--max-len", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=200)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    collator = MTAffectCollator(feature_dims=dict(DIMS))
    batches = [make_rows(args.batch_size, args.min_len, args.max_len, rng) for _ in range(8)]
    for rows in batches:  # warm-up
        collator(rows)
    times = []
    for i in range(args.repeats):
        rows = batches[i % len(batches)]
        start = time.perf_counter()
        collator(rows)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"batch {args.batch_size}, T in [{args.min_len}, {args.max_len}], dims {DIMS}")
    print(f"collate: {median * 1e3:.3f} ms/batch median, {median / args.batch_size * 1e6:.1f} us/example")


if __name__ == "__main__":
    main()
