"""Conversational context on real corpora: single-task models with and without context turns.

Reads the shared MELD, EmoryNLP and MUStARD files (``../shared/corpora``, or ``--corpora``),
extracts the project's own MiniLM features once (all-MiniLM-L6-v2 sentence embeddings, one
384-d frame per utterance, ``extractor={"pooled": True}``) with context columns
(``context={"past": max(--past), "future": max(--future)}``: MELD and EmoryNLP gather their context turns' features
from the same split, MUStARD's published turns are extracted with the same extractor), and
kept in ``--work``. Then for every corpus, seed and number of past turns K (``--past``, 0 =
the context-free model, exactly today's) and of following turns J (``--future``, default 0; MUStARD
has none), trains one single-task model as the study trains
it: the recipe's settings of ``examples/real_corpora/study.yaml`` (hidden 128, masked mean +
MLP, concat fusion, dropout 0.2, 6 epochs, learning rate 2e-3, batch 128), evaluated on the
validation split every epoch, the test numbers read at the best validation epoch
(``PerTaskSelection`` + ``MultiTaskTrainer.evaluate_per_task``, as ``mtaffect run`` does).

Every model appends one JSON line to ``--results`` (corpus, task, K, seed, validation and test
primary score, seconds); a rerun skips the lines already there, so the script resumes.
``--report`` prints, per corpus: mean test score per K, the K chosen on the mean validation
score over seeds (among K > 0), and the paired per-seed Δ (K* − K=0) with its 95% t-interval,
plus the extra training time of context.

    nice -n 10 python benchmarks/context_gain.py --work /tmp/ctx --results docs/results/context.jsonl
    python benchmarks/context_gain.py --work /tmp/ctx --results docs/results/context.jsonl --report
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

DEFAULT_CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
#: name -> (registry name, folder under --corpora, loader options, task).
CORPORA: dict[str, tuple[str, str, dict[str, Any], str]] = {
    "meld": ("meld", "meld", {}, "emotion"),
    "emorynlp": ("emorynlp", "emorynlp", {}, "emotion"),
    "mustard": ("mustard", "mustard", {"protocol": "speaker_independent"}, "sarcasm"),
    # MUStARD's speaker-dependent protocol: 5 folds (split_indices.p), a seed's number is the mean over them.
    "mustard-5fold": ("mustard", "mustard", {"protocol": "fold"}, "sarcasm"),
}
#: Corpora cross-validated over folds: name -> number of folds (the loader's ``fold`` option).
FOLDS: dict[str, int] = {"mustard-5fold": 5}
#: The recipe's model and training settings (examples/real_corpora/study.yaml).
MODEL = {"hidden_size": 128, "encoder_type": "mean", "num_layers": 1, "fusion": "concat", "dropout": 0.2}
TRAINING = {
    "num_train_epochs": 6,
    "learning_rate": 2.0e-3,
    "per_device_train_batch_size": 128,
    "per_device_eval_batch_size": 512,
    "weight_decay": 0.01,
    "eval_strategy": "epoch",
    "save_strategy": "no",
    "load_best_model_at_end": False,
    "metric_for_best_model": None,
    "greater_is_better": None,
    "logging_strategy": "epoch",
    "disable_tqdm": True,
    "save_only_model": True,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA, help="folder with meld/, emorynlp/, mustard/")
    parser.add_argument("--work", type=Path, required=True, help="where the converted corpora are kept (reused)")
    parser.add_argument("--results", type=Path, required=True, help="JSON lines file the results are appended to")
    parser.add_argument("--names", nargs="+", default=list(CORPORA), choices=list(CORPORA))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--past", type=int, nargs="+", default=[0, 2, 4], help="the grid of past turns K")
    parser.add_argument("--future", type=int, nargs="+", default=[0], help="the grid of following turns J")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report", action="store_true", help="only print the summary of --results")
    parser.add_argument("--summary", type=Path, help="also write the summary as JSON here")
    parser.add_argument("--cost", type=int, default=0, metavar="REPEATS",
                        help="instead of the grid: time one training epoch (no evaluation) per setting of --past x "
                        "--future on each of --names, the settings interleaved, REPEATS times; writes the medians to "
                        "cost.json next to --results (the summary's training-time ratios then come from it)")
    return parser.parse_args(argv)


def load(args: argparse.Namespace, name: str, fold: int | None = None) -> Any:
    """The corpus (its ``fold``) with MiniLM features and ``max(--past)`` / ``max(--future)`` context turns, converted once."""
    from mtaffect.data.corpora import load_corpus

    registry, folder, options, _ = CORPORA[name]
    options = {**options, **({"fold": fold} if fold is not None else {})}
    start = time.time()
    corpus = load_corpus(
        registry,
        args.corpora / folder,
        cache_dir=args.work / "cache",
        extractor={"pooled": True, "batch_size": 64, "device": "cpu"},
        # "future" only when asked: the same options (and cached conversion) as a past-only run otherwise.
        context={"past": max(args.past), **({"future": max(args.future)} if registry != "mustard" and max(args.future) else {})},
        **options,
    )
    where = "" if fold is None else f" fold {fold}"
    print(f"{name}{where}: {', '.join(f'{s} {len(d)}' for s, d in corpus.items())} ({time.time() - start:.0f} s)", flush=True)
    return corpus


def train_one(corpus: Any, name: str, task: str, past: int, seed: int, work: Path, future: int = 0,
              fold: int | None = None) -> dict[str, Any]:
    """One single-task model (of ``fold``); validation and test primary scores at the best validation epoch."""
    from mtaffect.metrics import make_compute_metrics, primary_score
    from mtaffect.recipes import fit
    from mtaffect.training.selection import PerTaskSelection

    key = CORPORA[name][0]  # the corpus' own name inside the model and its metric keys ("mustard", not "mustard-5fold")
    selection = PerTaskSelection(patience=None)
    output = work / f"run-{name}-{past}-{future}-{seed}-{fold}"
    started = time.time()
    fitted = fit(
        {key: corpus["train"]},
        {key: corpus["validation"]},
        None,
        output_dir=output,
        model={**MODEL, "context": {"past": past, "future": future}},
        tasks=[task],
        training={**TRAINING, "seed": seed},
        callbacks=[selection],
        quiet=True,
        compute_metrics=make_compute_metrics(),
    )
    train_seconds = float(fitted.train_metrics.get("train_runtime", math.nan))
    test = fitted.trainer.evaluate_per_task({key: corpus["test"]}, selection, metric_key_prefix="test")
    shutil.rmtree(output, ignore_errors=True)
    best = next(iter(selection.best.values()))
    return {
        "corpus": name,
        "task": task,
        "past": past,
        "future": future,
        "seed": seed,
        "validation": float(best["signed"]),
        "test": primary_score(test[key][task]),  # weighted F1 on these corpora (mtaffect.metrics.PRIMARY_METRICS)
        "best_epoch_step": int(best.get("step", -1)),
        "train_seconds": train_seconds,
        "seconds": round(time.time() - started, 1),
        "parameters": sum(p.numel() for p in fitted.model.parameters()),
        **({"fold": fold} if fold is not None else {}),
    }


def cost(corpus: Any, name: str, task: str, settings: list[tuple[int, int]], repeats: int, work: Path) -> dict[str, float]:
    """Median seconds of one training epoch per setting ``(K, J)``, interleaved so a shared machine's load hits all alike."""
    from mtaffect.recipes import fit

    seconds: dict[str, list[float]] = {}
    for repeat in range(repeats):
        for past, future in settings:
            label = str(past) if not future else f"{past}+{future}"
            output = work / f"cost-{name}-{label}"
            fitted = fit({CORPORA[name][0]: corpus["train"]}, None, None, output_dir=output,
                         model={**MODEL, "context": {"past": past, "future": future}}, tasks=[task],
                         training={**TRAINING, "num_train_epochs": 1, "eval_strategy": "no", "seed": repeat}, quiet=True)
            seconds.setdefault(label, []).append(float(fitted.train_metrics["train_runtime"]))
            shutil.rmtree(output, ignore_errors=True)
    medians = {label: round(statistics.median(values), 2) for label, values in seconds.items()}
    base = medians.get("0") or next(iter(medians.values()))
    for label, value in medians.items():
        print(f"{name} K={label}: {value:.2f} s per training epoch (median of {repeats}; ×{value / base:.2f})")
    return medians


def read(results: Path) -> list[dict[str, Any]]:
    if not results.is_file():
        return []
    return [json.loads(line) for line in results.read_text().splitlines() if line.strip()]


def fold_means(rows: list[dict[str, Any]], folds: int) -> list[dict[str, Any]]:
    """One row per (setting, seed): validation, test and seconds averaged over the ``folds`` folds (incomplete seeds left out)."""
    groups: dict[tuple[int, int, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["past"], r.get("future", 0), r["seed"]), []).append(r)
    out = []
    for members in groups.values():
        if len({m["fold"] for m in members}) < folds:
            continue
        mean = {key: statistics.mean(m[key] for m in members) for key in ("validation", "test", "train_seconds")}
        out.append({**members[0], **mean, "folds": folds})
    return out


def report(records: list[dict[str, Any]], costs: dict[str, list[dict[str, float]]] | None = None) -> dict[str, Any]:
    """Print the summary of ``records`` and return it (corpus -> per-K means, K*, paired Δ, cost).

    The training-time ratio of K* to K = 0 comes from ``costs`` (``--cost``'s interleaved medians,
    corpus -> one dict per run) where one run timed both, else from the runs' own ``train_runtime`` (taken at different times on a
    shared machine: noisy), and the summary says which.
    """
    from mtaffect.statistics import paired_delta

    summary: dict[str, Any] = {}
    for name in CORPORA:
        rows = [r for r in records if r["corpus"] == name]
        if name in FOLDS:
            rows = fold_means(rows, FOLDS[name])
        if not rows:
            continue
        # A setting is "K" (past turns) or "K+J" (and following turns); records without "future" have J = 0.
        for r in rows:
            r["setting"] = str(r["past"]) if not r.get("future") else f"{r['past']}+{r['future']}"
        grid = sorted({r["setting"] for r in rows}, key=lambda k: tuple(int(x) for x in k.split("+")))
        by = {(r["setting"], r["seed"]): r for r in rows}
        over = f"; a seed's score is the mean over {FOLDS[name]} folds" if name in FOLDS else ""
        print(f"\n{name} ({rows[0]['task']}, test primary score = weighted F1; mean over seeds{over})")
        entry: dict[str, Any] = summary.setdefault(name, {"task": rows[0]["task"], "by_past": {}})
        for past in grid:
            seeds = sorted(s for (k, s) in by if k == past)
            test = [by[(past, s)]["test"] for s in seeds]
            validation = [by[(past, s)]["validation"] for s in seeds]
            cost = statistics.mean(by[(past, s)]["train_seconds"] for s in seeds)
            print(f"  K={past}: test {100 * statistics.mean(test):.2f}  validation {100 * statistics.mean(validation):.2f}"
                  f"  train {cost:.1f} s  (n={len(seeds)})")
            entry["by_past"][past] = {
                "test": round(100 * statistics.mean(test), 2),
                "test_std": round(100 * statistics.stdev(test), 2) if len(test) > 1 else None,
                "validation": round(100 * statistics.mean(validation), 2),
                "train_seconds": round(cost, 1),
                "parameters": by[(past, seeds[0])]["parameters"],
                "seeds": seeds,
            }
        candidates = [k for k in grid if k != "0"]
        if "0" not in grid or not candidates:
            continue
        chosen = max(candidates, key=lambda k: statistics.mean(by[(k, s)]["validation"] for (kk, s) in by if kk == k))
        delta = paired_delta(
            {s: by[(chosen, s)]["test"] for (k, s) in by if k == chosen},
            {s: by[("0", s)]["test"] for (k, s) in by if k == "0"},
        )
        base = [by[("0", s)]["train_seconds"] for (k, s) in by if k == "0"]
        with_context = [by[(chosen, s)]["train_seconds"] for (k, s) in by if k == chosen]
        ratio = statistics.mean(with_context) / statistics.mean(base)
        runs = (costs or {}).get(name, [])
        measured = next((run for run in reversed(runs) if "0" in run and chosen in run), {})
        entry["train_time_source"] = "train_runtime of the runs"
        if measured:
            ratio = measured[chosen] / measured["0"]
            entry["train_time_source"] = "one epoch, interleaved, median (--cost)"
            entry["epoch_seconds"] = {"0": measured["0"], chosen: measured[chosen]}
        print(f"  K*={chosen} (best mean validation): Δ test = {delta.format(scale=100, digits=2)} points "
              f"(n={delta.n}, better on {delta.improved}); training time ×{ratio:.2f}")
        entry["chosen_past"] = chosen
        entry["delta"] = {"mean": round(100 * delta.mean, 2), "low": round(100 * delta.low, 2),
                          "high": round(100 * delta.high, 2), "n": delta.n, "improved": delta.improved}
        entry["train_time_ratio"] = round(ratio, 2)
    return summary


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.report:
        cost_file = args.results.parent / "cost.json"
        summary = report(read(args.results), json.loads(cost_file.read_text()) if cost_file.is_file() else None)
        if args.summary:
            args.summary.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        return
    import torch
    from datasets.utils.logging import disable_progress_bar
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(args.threads)
    disable_progress_bar()
    hf_logging.set_verbosity_error()
    args.work.mkdir(parents=True, exist_ok=True)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    if args.cost:
        # Written next to --results: the training cost the summary and the results page report.
        file = args.results.parent / "cost.json"
        recorded = json.loads(file.read_text()) if file.is_file() else {}
        for name in args.names:
            settings = [(k, j) for k in args.past for j in args.future if not (CORPORA[name][0] == "mustard" and j)]
            measured = cost(load(args, name, 0 if name in FOLDS else None), name, CORPORA[name][3], settings, args.cost,
                            args.work)
            # One entry per --cost run: a ratio is only taken between settings timed in the same run.
            runs = [run for run in recorded.get(name, []) if isinstance(run, dict) and set(run) != set(measured)]
            recorded[name] = [*runs, measured]
            file.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
        return
    done = {(r["corpus"], r["past"], r.get("future", 0), r["seed"], r.get("fold")) for r in read(args.results)}
    for name in args.names:
        task = CORPORA[name][3]
        for fold in range(FOLDS[name]) if name in FOLDS else [None]:
            corpus = load(args, name, fold)
            for seed in args.seeds:
                for past, future in [(k, j) for k in args.past for j in args.future]:
                    if CORPORA[name][0] == "mustard" and future:
                        continue  # MUStARD publishes no following turns
                    if (name, past, future, seed, fold) in done:
                        continue
                    record = train_one(corpus, name, task, past, seed, args.work, future, fold)
                    with args.results.open("a") as handle:
                        handle.write(json.dumps(record, sort_keys=True) + "\n")
                    where = "" if fold is None else f" fold {fold}"
                    print(f"{name}{where} K={past} J={future} seed {seed}: validation {100 * record['validation']:.2f} "
                          f"test {100 * record['test']:.2f} ({record['seconds']:.0f} s)", flush=True)
    report(read(args.results))


if __name__ == "__main__":
    main()
