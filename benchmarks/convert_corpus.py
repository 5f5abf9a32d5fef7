"""Benchmark: convert a MOSEI-scale MMSA pickle to Arrow once, then open it memory-mapped.

Generates an MMSA ``aligned_50.pkl`` shaped like CMU-MOSEI's (default 22,856 examples in
16,326/1,871/4,659 splits, L=50, BERT 768 / COVAREP 74 / Facet 35, text padded at the end
with its ``text_bert`` mask, audio/vision padded at the start, some ``-inf`` in the audio)
in a temporary folder, then measures, each step in a fresh subprocess (peak RSS from
``resource.getrusage``):

* ``pickle.load`` of the file (what MMSA/MulT training scripts do, every run);
* ``mtaffect data convert`` (the restricted unpickler, the Arrow conversion, ``save_to_disk``);
* opening the converted folder (``datasets.load_from_disk``, memory-mapped) and reading
  20 random batches of 32 (numpy format, one ``__getitems__`` call each, as a DataLoader
  does) through the collator;
* a Python interpreter that only imports ``datasets`` and torch (the RSS floor).

Usage::

    python benchmarks/convert_corpus.py            # full MOSEI scale (~4 GB pickle, ~2-3 min, ~8 GB RAM peak)
    python benchmarks/convert_corpus.py --n 2000   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

MOSEI_SPLITS = (16326, 1871, 4659)

_CHILD_PREFIX = """
import json, resource, sys, time
def report(**values):
    values["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:  # current split of resident memory: heap (anonymous) vs memory-mapped files
        status = dict(line.split(":", 1) for line in open("/proc/self/status") if line.startswith("Rss"))
        values["rss_anon_mb"] = int(status["RssAnon"].split()[0]) / 1024
        values["rss_file_mb"] = int(status["RssFile"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        pass
    print("RESULT " + json.dumps(values))
"""


def generate(path: Path, n: int, length: int, dims: tuple[int, int, int], protocol: int, seed: int = 0) -> dict:
    """Write an MMSA-style aligned pickle with ``n`` examples; returns split sizes."""
    rng = np.random.default_rng(seed)
    sizes = [int(round(n * s / sum(MOSEI_SPLITS))) for s in MOSEI_SPLITS]
    sizes[0] = n - sizes[1] - sizes[2]
    data = {}
    for split, size in zip(("train", "valid", "test"), sizes):
        text_len = rng.integers(8, length + 1, size)
        positions = np.arange(length)
        text_mask = (positions[None, :] < text_len[:, None]).astype(np.float32)
        text = rng.standard_normal((size, length, dims[0]), dtype=np.float32)
        text *= text_mask[:, :, None]
        audio = rng.standard_normal((size, length, dims[1]), dtype=np.float32)
        vision = rng.standard_normal((size, length, dims[2]), dtype=np.float32)
        front_pad = (positions[None, :] < (length - text_len)[:, None])[:, :, None]
        audio[np.broadcast_to(front_pad, audio.shape)] = 0.0
        vision[np.broadcast_to(front_pad, vision.shape)] = 0.0
        audio[rng.random(audio.shape) < 1e-5] = -np.inf
        bert = np.zeros((size, 3, length), dtype=np.float32)
        bert[:, 1] = text_mask
        data[split] = {
            "id": np.array([f"video{i // 8:05d}$_${i % 8}" for i in range(size)], dtype=object),
            "raw_text": np.array([f"utterance {i}" for i in range(size)], dtype=object),
            "text": text,
            "text_bert": bert,
            "audio": audio,
            "vision": vision,
            "regression_labels": np.round(rng.uniform(-3, 3, size) * 3) / 3,
        }
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=protocol)
    return dict(zip(("train", "valid", "test"), sizes))


def run_child(code: str, env: dict[str, str]) -> dict:
    script = _CHILD_PREFIX + textwrap.dedent(code)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{done.stderr[-3000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["process_wall_s"] = wall
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=sum(MOSEI_SPLITS), help="number of examples (default: MOSEI's 22,856)")
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--dims", default="768,74,35", help="text,audio,visual dims")
    parser.add_argument("--protocol", type=int, default=4, help="pickle protocol of the generated file")
    parser.add_argument("--workdir", help="where to put the files (default: a temporary folder, deleted)")
    parser.add_argument("--generate-only", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    dims = tuple(int(d) for d in args.dims.split(","))
    if args.generate_only:
        # Run in a child: Linux keeps ru_maxrss across exec, so the parent must stay small.
        print(json.dumps(generate(Path(args.generate_only), args.n, args.length, dims, args.protocol)))
        return
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="mtaffect-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HOME": str(work / "hf_home"), "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    source = work / "MOSEI" / "aligned_50.pkl"
    source.parent.mkdir(exist_ok=True)
    try:
        started = time.perf_counter()
        command = [sys.executable, __file__, "--generate-only", str(source), "--n", str(args.n),
                   "--length", str(args.length), "--dims", args.dims, "--protocol", str(args.protocol)]
        sizes = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        size_gb = source.stat().st_size / 1e9
        print(f"generated {source} ({size_gb:.2f} GB, splits {sizes}, protocol {args.protocol}) "
              f"in {time.perf_counter() - started:.1f} s\n")
        floor = run_child("import datasets, torch\nreport()", env)
        plain = run_child(
            f"""
            import pickle
            t = time.perf_counter()
            with open({str(source)!r}, "rb") as f:
                data = pickle.load(f)
            report(seconds=time.perf_counter() - t)
            """,
            env,
        )
        out = work / "converted"
        convert = run_child(
            f"""
            import logging
            logging.disable(logging.WARNING)
            from mtaffect.cli.data import convert_corpus
            t = time.perf_counter()
            corpus = convert_corpus("mosei", {str(source)!r}, {str(out)!r})
            seconds = time.perf_counter() - t
            report(seconds=seconds, rows={{k: v.num_rows for k, v in corpus.items()}})
            """,
            env,
        )
        opened = run_child(
            f"""
            import numpy as np
            from datasets import load_from_disk
            from mtaffect.data.collator import MTAffectCollator
            t = time.perf_counter()
            corpus = load_from_disk({str(out)!r})
            open_seconds = time.perf_counter() - t
            train = corpus["train"].with_format("numpy")
            collate = MTAffectCollator.for_dataset(train)
            rng = np.random.default_rng(0)
            fetch = collate_time = 0.0
            for _ in range(20):  # as a DataLoader fetches a batch: one __getitems__ call
                t = time.perf_counter()
                rows = train.__getitems__(rng.integers(0, len(train), 32).tolist())
                fetch += time.perf_counter() - t
                t = time.perf_counter()
                batch = collate(rows)
                collate_time += time.perf_counter() - t
            report(seconds=open_seconds, fetch_ms=fetch * 50, collate_ms=collate_time * 50,
                   shape=list(batch["text_features"].shape))
            """,
            env,
        )
        arrow_gb = sum(p.stat().st_size for p in out.rglob("*.arrow")) / 1e9
        print(f"{'step':44s} {'seconds':>9s} {'peak RSS':>10s}")
        print(f"{'python + datasets + torch imported (floor)':44s} {'':>9s} {floor['peak_rss_mb']:>7.0f} MB")
        print(f"{'pickle.load (every training run)':44s} {plain['seconds']:>9.1f} {plain['peak_rss_mb']:>7.0f} MB")
        print(f"{'mtaffect data convert (once)':44s} {convert['seconds']:>9.1f} {convert['peak_rss_mb']:>7.0f} MB")
        print(f"{'load_from_disk (memory-mapped, every run)':44s} {opened['seconds']:>9.2f} {opened['peak_rss_mb']:>7.0f} MB")
        print(f"(process wall time incl. imports: pickle.load {plain['process_wall_s']:.0f} s, convert "
              f"{convert['process_wall_s']:.0f} s, open {opened['process_wall_s']:.0f} s)")
        print(f"\nrandom batch of 32 after opening (numpy format): fetch {opened['fetch_ms']:.1f} ms + collate "
              f"{opened['collate_ms']:.1f} ms (text_features {opened['shape']})")
        if "rss_anon_mb" in opened:
            print(f"resident at the end of the open step: {opened['rss_anon_mb']:.0f} MB heap + "
                  f"{opened['rss_file_mb']:.0f} MB memory-mapped file pages (page cache, reclaimable)")
        print(f"converted rows {convert['rows']}, Arrow on disk {arrow_gb:.2f} GB (padding trimmed) vs pickle {size_gb:.2f} GB")
    finally:
        if not args.workdir:
            import shutil

            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
