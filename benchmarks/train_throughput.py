"""Training throughput: ``MultiTaskTrainer`` against a minimal hand-written PyTorch loop.

Both train the same model (same initial weights) on the same synthetic corpora for the
same number of steps, with the same batch size, batch sampler, collator, AdamW, linear
learning-rate decay and gradient clipping (the Trainer's defaults, written out by hand),
and no evaluation. The runs alternate (Trainer, loop, Trainer, loop, ...) so that load
from other processes on a shared machine hits both alike; the median is reported.

Samples/s are measured in the steady state, from the end of the ``--warmup``-th step to
the last step (the Trainer's setup and the first steps' allocations are excluded from
both), three ways: mean wall-clock step time, median wall-clock step time, and this
process' CPU time. On a dedicated machine the three agree and wall clock is the number;
on a machine shared with other jobs the CPU-time ratio is the reliable one. The total
time including setup is printed too.

    python benchmarks/train_throughput.py --steps 200 --repeats 3
    python benchmarks/train_throughput.py --profile     # cProfile of one Trainer run
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import logging
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence

import torch
from torch.utils.data import DataLoader
from transformers import TrainerCallback

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.data.corpora.synthetic import make_synthetic_family
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
from mtaffect.training import (
    CorpusConcatDataset,
    FeatureSetCollator,
    MultiCorpusBatchSampler,
    MultiTaskTrainer,
    MultiTaskTrainingArguments,
)


class StepClock(TrainerCallback):
    """Wall-clock time at the end of every optimizer step."""

    def __init__(self) -> None:
        self.times: list[tuple[float, float]] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append((time.perf_counter(), time.process_time()))


def steady_rates(times: list[tuple[float, float]], warmup: int, batch_size: int) -> tuple[float, float, float]:
    """Samples/s after warm-up from the mean wall step time, the median one, and CPU time.

    On a machine shared with other jobs the median ignores steps slowed down by them, and
    the process' CPU time (``time.process_time``) is not charged for time other processes
    hold the cores at all.
    """
    walls = [wall for wall, _ in times]
    cpus = [cpu for _, cpu in times]
    steps = len(times) - warmup
    durations = [b - a for a, b in zip(walls[warmup - 1 :], walls[warmup:])]
    return (
        steps * batch_size / (walls[-1] - walls[warmup - 1]),
        batch_size / statistics.median(durations),
        steps * batch_size / (cpus[-1] - cpus[warmup - 1]),
    )


Rates = tuple[float, float, float]


def alternate(runs: Sequence[tuple[str, Callable[[], tuple[Rates, float]]]], repeats: int) -> dict[str, list[Rates]]:
    """Each run once per repeat, in turn (load from other processes then hits them alike); prints each.

    A run returns ``(steady_rates(...), total seconds with setup)``; the result is every
    repeat's rates, by run name.
    """
    width = max(len(name) for name, _ in runs)
    results: dict[str, list[Rates]] = {name: [] for name, _ in runs}
    for repeat in range(repeats):
        for name, run in runs:
            rates, total = run()
            results[name].append(rates)
            print(
                f"[{repeat}] {name:>{width}}: {rates[0]:7.1f} samples/s (mean step), {rates[1]:7.1f} (median step), "
                f"{rates[2]:7.1f} per CPU-second; total {total:.2f} s with setup"
            )
    return results


def print_ratios(ours: tuple[str, list[Rates]], theirs: tuple[str, list[Rates]]) -> None:
    """Median rate of each side over the repeats and their ratio, per measure (goal: >= 0.9)."""
    (our_name, our_rates), (their_name, their_rates) = ours, theirs
    for index, measure in enumerate(("mean wall step", "median wall step", "CPU time")):
        mine = statistics.median(r[index] for r in our_rates)
        base = statistics.median(r[index] for r in their_rates)
        ratios = ", ".join(f"{a[index] / b[index]:.3f}" for a, b in zip(our_rates, their_rates))
        print(
            f"{measure:>16}: {our_name} {mine:7.1f} samples/s, {their_name} {base:7.1f} samples/s, "
            f"ratio {mine / base:.3f} (per repeat {ratios}; goal >= 0.9)"
        )


def run_trainer(model, train, options, output_dir: str) -> tuple[tuple[float, float, float], float]:
    clock = StepClock()
    args = MultiTaskTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=options.batch_size,
        max_steps=options.steps,
        learning_rate=options.lr,
        logging_steps=options.logging_steps,
        save_strategy="no",
        corpus_sampling=options.sampling,
        seed=options.seed,
        dataloader_num_workers=0,
        disable_tqdm=not options.progress_bar,
        use_cpu=options.device == "cpu",
    )
    trainer = MultiTaskTrainer(model, args, train_dataset=train, callbacks=[clock])
    start = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - start
    return steady_rates(clock.times, options.warmup, options.batch_size), total


def run_plain_loop(model, train, options) -> tuple[tuple[float, float, float], float]:
    """What a user would write by hand around the same model, data and optimizer."""
    start = time.perf_counter()
    device = torch.device(options.device)
    model.to(device).train()
    dataset = CorpusConcatDataset(train)
    collator = FeatureSetCollator.for_datasets(train.values())
    sampler = MultiCorpusBatchSampler(
        dataset.corpus_sizes(), options.batch_size, sampling=options.sampling, seed=options.seed
    )
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=0.0, fused=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / options.steps))
    times: list[tuple[float, float]] = []
    epoch = 0
    while len(times) < options.steps:
        sampler.set_epoch(epoch)
        for batch in loader:
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            times.append((time.perf_counter(), time.process_time()))
            if len(times) == options.steps:
                break
        epoch += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    total = time.perf_counter() - start
    return steady_rates(times, options.warmup, options.batch_size), total


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--encoder", default="transformer", choices=["transformer", "bilstm", "mean"])
    parser.add_argument("--size-scale", type=float, default=1.0, help="synthetic corpus size multiplier")
    parser.add_argument("--sampling", default="temperature")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--logging-steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 avoids oversubscribing shared cores)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--progress-bar", action="store_true", help="keep the Trainer's tqdm bar on")
    parser.add_argument("--profile", action="store_true", help="cProfile one Trainer run and print the top entries")
    options = parser.parse_args(argv)
    if options.warmup >= options.steps:
        parser.error("--warmup must be smaller than --steps")
    return options


def main() -> None:
    options = parse_args()
    torch.set_num_threads(options.threads)
    logging.getLogger("transformers").setLevel(logging.ERROR)

    family = make_synthetic_family(seed=0, size_scale=options.size_scale)
    train = {name: corpus["train"].with_format("numpy") for name, corpus in family.items()}
    torch.manual_seed(options.seed)
    config = MTAffectConfig.from_corpora(family, hidden_size=options.hidden_size, encoder_type=options.encoder)
    initial = MTAffectForMultiTaskAffect(config)
    print(
        f"model: {options.encoder}, hidden {options.hidden_size}, "
        f"{sum(p.numel() for p in initial.parameters()):,} parameters; batch {options.batch_size}; "
        f"{options.steps} steps ({options.warmup} warm-up); device {options.device}, {options.threads} thread(s); "
        f"train examples {sum(len(d) for d in train.values())}"
    )

    with tempfile.TemporaryDirectory() as output_dir:
        if options.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            run_trainer(copy.deepcopy(initial), train, options, output_dir)
            profiler.disable()
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(35)
            stats.sort_stats("tottime").print_stats("transformers|accelerate|mtaffect/training", 25)
            return
        rates = alternate(
            [("MultiTaskTrainer", lambda: run_trainer(copy.deepcopy(initial), train, options, output_dir)),
             ("plain loop", lambda: run_plain_loop(copy.deepcopy(initial), train, options))],
            options.repeats,
        )
    print_ratios(("MultiTaskTrainer", rates["MultiTaskTrainer"]), ("plain loop", rates["plain loop"]))

if __name__ == "__main__":
    main()
