"""Weak-labelling throughput next to the teacher's raw forward throughput on the same tensors.

Builds a MOSEI-scale synthetic corpus (``--scale 22`` gives ~23k examples, the size of
CMU-MOSEI; the default is smaller so the script finishes in about a minute on 2 CPU cores),
saves it to disk and loads it back (as users do), then times:

* ``add_weak_labels`` labelling sarcasm on every row (MOSEI has no sarcasm gold), the full
  path: Arrow -> numpy batches -> collator -> teacher -> weak columns -> Arrow cache file;
* the raw forward: the same rows, pre-collated into the same batches in memory, only
  ``model(**inputs)`` under ``torch.inference_mode()``;
* the cache hit: the same ``add_weak_labels`` call again.

It prints examples/s of each and the ratio weak / raw (1.0 = labelling costs nothing
beyond the forward). The teacher is a freshly initialised single-task model: throughput
does not depend on its weights.

    python benchmarks/weak_label_throughput.py --scale 22 --batch-size 256
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from datasets import concatenate_datasets, load_from_disk

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.data.arrow import pad_rows as _pad
from mtaffect.data.arrow import read_columns as _arrow_batch
from mtaffect.data.collator import MTAffectCollator
from mtaffect.data.corpora.synthetic import make_synthetic_corpus
from mtaffect.data.schema import feature_column, feature_dims
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
from mtaffect.teachers import TeacherRecord, record_teacher
from mtaffect.weak_labels import add_weak_labels


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=5.0, help="size_scale of synthetic_mosei (22 ~ 23k examples)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--encoder-type", default="transformer", choices=("transformer", "bilstm", "mean"))
    parser.add_argument("--max-length", type=int, default=16, help="frames per modality in the synthetic corpus")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--repeats", type=int, default=3, help="alternating (raw, weak) timed pairs")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: perf_counter; cpu: this process' CPU time (steadier on a shared CPU machine, meaningless on GPU)",
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    corpus = make_synthetic_corpus("synthetic_mosei", size_scale=args.scale, max_length=args.max_length)
    data = concatenate_datasets(list(corpus.values()))
    data.info.description = corpus["train"].info.description
    config = MTAffectConfig.from_corpora(
        {"synthetic_mosei": corpus}, tasks=["sarcasm"], hidden_size=args.hidden_size, encoder_type=args.encoder_type
    )
    torch.manual_seed(0)
    model = MTAffectForMultiTaskAffect(config)
    record_teacher(model, TeacherRecord(task="sarcasm", corpora=["benchmark"], trained_on={"synthetic-cmu": list(feature_dims(data.features))}))
    model.to(device).eval()

    with tempfile.TemporaryDirectory() as folder:
        data.save_to_disk(folder + "/mosei")
        data = load_from_disk(folder + "/mosei")
        n = data.num_rows

        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        raw_times, weak_times, collate_times, arrow_times = [], [], [], []
        for _ in range(args.repeats):  # back-to-back pairs: the machine may be shared
            forward_seconds, collate_seconds = _raw_forward(model, data, args.batch_size, device, clock)
            raw_times.append(forward_seconds)
            collate_times.append(collate_seconds)
            arrow_times.append(_arrow_inputs(data, args.batch_size, clock))
            for stale in Path(folder, "mosei").glob("cache-weak-*.arrow"):
                stale.unlink()  # time the real first run: teacher + writing the cache file
            start = clock()
            labelled = add_weak_labels(data, model, "sarcasm", batch_size=args.batch_size, device=device)
            _sync(device)
            weak_times.append(clock() - start)
        raw_seconds, weak_seconds = min(raw_times), min(weak_times)
        start = clock()
        add_weak_labels(data, model, "sarcasm", batch_size=args.batch_size, device=device)
        cached_seconds = clock() - start
        written = int(np.asarray(labelled.with_format("numpy")["sarcasm_weak_mask"]).sum())

    results = {
        "examples": n,
        "labelled": written,
        "batch_size": args.batch_size,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "raw_forward_examples_per_s": n / raw_seconds,
        "weak_label_examples_per_s": n / weak_seconds,
        "cache_hit_examples_per_s": n / cached_seconds,
        "inputs_arrow_pad_examples_per_s": n / min(arrow_times),
        "inputs_numpy_collator_examples_per_s": n / min(collate_times),
        "ratio_weak_over_raw": float(np.median(np.array(raw_times) / np.array(weak_times))),
        "clock": args.clock,
        "raw_seconds": raw_times,
        "weak_seconds": weak_times,
    }
    print(
        f"synthetic_mosei x{args.scale}: {n} examples, batch {args.batch_size}, {device}, "
        f"{results['threads']} threads, {args.clock} clock, best of {args.repeats}"
    )
    print(f"raw forward (pre-collated tensors): {results['raw_forward_examples_per_s']:10.0f} examples/s")
    print(f"add_weak_labels (first run):        {results['weak_label_examples_per_s']:10.0f} examples/s")
    print(f"add_weak_labels (cache hit):        {results['cache_hit_examples_per_s']:10.0f} examples/s")
    print("inputs alone (no forward):")
    print(f"  Arrow batches + vectorised pad:   {results['inputs_arrow_pad_examples_per_s']:10.0f} examples/s (add_weak_labels' path)")
    print(f"  numpy format + MTAffectCollator:  {results['inputs_numpy_collator_examples_per_s']:10.0f} examples/s")
    print(f"ratio weak / raw (median of pairs): {results['ratio_weak_over_raw']:10.2f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


def _arrow_inputs(data, batch_size: int, clock) -> float:
    """Seconds add_weak_labels' input path takes without the forward: Arrow batch -> padded tensors."""
    dims = feature_dims(data.features)
    columns = ["feature_set", *(feature_column(m) for m in dims)]
    table = data.select_columns(columns).with_format("arrow")
    start = clock()
    for first in range(0, data.num_rows, batch_size):
        batch = _arrow_batch(table[first : first + batch_size], dims)
        rows = np.arange(len(batch["feature_set"]))
        for modality in dims:
            _pad(*batch[feature_column(modality)], rows)
    return clock() - start


def _raw_forward(model: torch.nn.Module, data, batch_size: int, device: torch.device, clock) -> tuple[float, float]:
    """Seconds for the teacher's forward alone over ``data`` in pre-collated batches, and for collating."""
    collator = MTAffectCollator.for_dataset(data)
    table = data.with_format("numpy")
    modalities = list(feature_dims(data.features))
    batches = []
    collate_start = clock()
    for start in range(0, data.num_rows, batch_size):
        rows = table[start : start + batch_size]
        count = len(rows["feature_set"])
        batch = collator([{key: rows[key][i] for key in rows} for i in range(count)])
        inputs = {"feature_set": batch["feature_set"]}
        for modality in modalities:
            inputs[feature_column(modality)] = batch[feature_column(modality)].to(device)
            inputs[f"{modality}_mask"] = batch[f"{modality}_mask"].to(device)
        batches.append(inputs)
    collate_seconds = clock() - collate_start
    with torch.inference_mode():
        model(**batches[0])  # warm-up (allocator, kernels)
        _sync(device)
        start = clock()
        for inputs in batches:
            output = model(**inputs)
            torch.sigmoid(output.sarcasm_logits).cpu()
        _sync(device)
        return clock() - start, collate_seconds


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
