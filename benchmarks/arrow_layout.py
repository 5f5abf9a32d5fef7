"""Benchmark: how to store variable-length ``[T, D]`` float32 sequences in Arrow.

MOSEI-scale (default 22,856 sequences, T uniform in [40, 60], D=300), three layouts:

* ``Array2D(shape=(None, D), dtype="float32")`` — what the unified schema uses, written
  either by ``datasets`` from the numpy arrays or from offsets + one flat buffer as the
  mtaffect loaders do (same file, same reads);
* nested ``List(List(Value("float32")))``;
* flat ``List(Value("float32"))`` plus a ``shape`` column, reshaped after reading.

For each: write time through ``datasets``' ``ArrowWriter`` from per-example numpy arrays
(batches of 1,000, as the loaders write), file size, and read-back time as torch tensors
(``with_format("torch")``) for random batches of 32 (one ``__getitems__`` call, as a
DataLoader fetches) and for a contiguous slice of 256. Each read yields a list of ``[T, D]``
tensors. Usage::

    python benchmarks/arrow_layout.py            # MOSEI scale (~1.4 GB per layout)
    python benchmarks/arrow_layout.py --n 2000   # quick
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from datasets import Array2D, Dataset, Features, List, Value
from datasets.arrow_writer import ArrowWriter


def layouts(dim: int) -> dict[str, Features]:
    return {
        "Array2D(shape=(None, D))": Features({"x": Array2D(shape=(None, dim), dtype="float32")}),
        "Array2D, offsets (loaders)": Features({"x": Array2D(shape=(None, dim), dtype="float32")}),
        "List(List(float32))": Features({"x": List(List(Value("float32")))}),
        "List(float32) + shape": Features({"x": List(Value("float32")), "shape": List(Value("int64"), length=2)}),
    }


def write(path: Path, features: Features, sequences: list[np.ndarray], direct: bool = False, batch: int = 1000) -> float:
    """Write through ArrowWriter; ``direct`` builds the Array2D column from offsets as the loaders do."""
    from mtaffect.data.corpora.base import sequence_array

    flat = "shape" in features
    started = time.perf_counter()
    writer = ArrowWriter(features=features, path=str(path))
    for start in range(0, len(sequences), batch):
        chunk = sequences[start : start + batch]
        if direct:
            writer.write_batch({"x": sequence_array(chunk, chunk[0].shape[1])[0]})
        elif flat:
            writer.write_batch({"x": [s.reshape(-1) for s in chunk], "shape": [list(s.shape) for s in chunk]})
        else:
            writer.write_batch({"x": chunk})
    writer.finalize()
    return time.perf_counter() - started


def as_tensors(rows: list[dict], flat: bool) -> list[torch.Tensor]:
    if flat:
        return [row["x"].reshape(*row["shape"].tolist()) for row in rows]
    return [row["x"] if isinstance(row["x"], torch.Tensor) else torch.stack(list(row["x"])) for row in rows]


def read(path: Path, flat: bool, n: int, batches: int, check: list[np.ndarray]) -> tuple[float, float]:
    dataset = Dataset.from_file(str(path)).with_format("torch")
    rng = np.random.default_rng(0)
    first = as_tensors(dataset.__getitems__([0, 1]), flat)
    for tensor, expected in zip(first, check[:2]):
        assert tensor.dtype == torch.float32 and tuple(tensor.shape) == expected.shape
        np.testing.assert_array_equal(tensor.numpy(), expected)
    started = time.perf_counter()
    for _ in range(batches):
        tensors = as_tensors(dataset.__getitems__(rng.integers(0, n, 32).tolist()), flat)
    random_ms = (time.perf_counter() - started) / batches * 1000
    assert len(tensors) == 32
    started = time.perf_counter()
    for _ in range(5):
        start = int(rng.integers(0, max(1, n - 256)))
        sliced = dataset[start : start + 256]
        rows = [dict(zip(sliced, values)) for values in zip(*sliced.values())]
        tensors = as_tensors(rows, flat)
    slice_ms = (time.perf_counter() - started) / 5 * 1000
    return random_ms, slice_ms


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=22856)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--min-length", type=int, default=40)
    parser.add_argument("--max-length", type=int, default=60)
    parser.add_argument("--batches", type=int, default=30, help="random batches of 32 to time")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    rng = np.random.default_rng(0)
    lengths = rng.integers(args.min_length, args.max_length + 1, args.n)
    sequences = [rng.standard_normal((int(t), args.dim), dtype=np.float32) for t in lengths]
    work = Path(tempfile.mkdtemp(prefix="mtaffect-layout-"))
    results = []
    try:
        for name, features in layouts(args.dim).items():
            path = work / "data.arrow"
            write_seconds = write(path, features, sequences, direct="offsets" in name)
            size_mb = path.stat().st_size / 1e6
            random_ms, slice_ms = read(path, "shape" in features, args.n, args.batches, sequences)
            results.append((name, write_seconds, size_mb, random_ms, slice_ms))
            path.unlink()
            print(f"done: {name}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.n} sequences, T in [{args.min_length}, {args.max_length}], D={args.dim}, float32 "
          f"({sum(s.nbytes for s in sequences) / 1e9:.2f} GB of values)\n")
    print(f"{'layout':28s} {'write s':>8s} {'file MB':>8s} {'random 32 (ms)':>15s} {'slice 256 (ms)':>15s}")
    for name, write_seconds, size_mb, random_ms, slice_ms in results:
        print(f"{name:28s} {write_seconds:>8.1f} {size_mb:>8.0f} {random_ms:>15.1f} {slice_ms:>15.1f}")


if __name__ == "__main__":
    main()
