"""Do the recipe's training defaults learn? ``mtaffect train`` with only corpora, on real features.

Converts MUStARD (``/work/shared/corpora/mustard`` or ``--mustard``) with the default text
extractor (MiniLM token features, speaker-independent or fold 0 protocol), then trains three
ways with nothing but the corpus given, and reports the test weighted F1 next to the majority
class:

* ``mtaffect train --corpora mustard=DIR``: the recipe's defaults (``TRAINING_DEFAULTS``);
* the same with the Trainer's own learning rate (``-- --learning_rate 5e-5``), what the command
  used before it had defaults of its own;
* a linear probe (logistic regression on the mean-pooled features, scikit-learn), the
  baseline any model must beat on these features.

    python benchmarks/train_defaults.py --work /tmp/train-defaults
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _mean_pooled(split) -> tuple[np.ndarray, np.ndarray]:
    rows = split.with_format("numpy", columns=["text_features", "sarcasm"])
    features = np.stack([np.asarray(seq, dtype=np.float64).mean(0) for seq in rows["text_features"]])
    return features, np.asarray(rows["sarcasm"], dtype=np.float64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mustard", type=Path, default=Path("/work/shared/corpora/mustard"))
    parser.add_argument("--work", type=Path, default=Path("train-defaults"))
    parser.add_argument("--protocol", default="fold")
    args = parser.parse_args(argv)

    from datasets import load_from_disk
    from sklearn.linear_model import LogisticRegression

    from mtaffect.metrics import sarcasm_metrics

    corpus_dir = args.work / "mustard-minilm"
    if not corpus_dir.exists():
        start = time.perf_counter()
        subprocess.run(
            ["mtaffect", "data", "convert", "--corpus", "mustard", "--input", str(args.mustard),
             "--output", str(corpus_dir), "--option", f"protocol={args.protocol}"],
            check=True, capture_output=True,
        )
        print(f"converted MUStARD with MiniLM token features in {time.perf_counter() - start:.0f} s")
    corpus = load_from_disk(str(corpus_dir))
    labels = np.asarray(corpus["test"]["sarcasm"], dtype=np.float64)
    majority = sarcasm_metrics(np.full(len(labels), float(labels.mean() > 0.5)), labels)["weighted_f1"]
    rows = {"majority class": majority}

    for name, extra in (("mtaffect train (recipe defaults)", []), ("same, Trainer lr 5e-5", ["--", "--learning_rate", "5e-5"])):
        out = args.work / ("default" if not extra else "lr5e-5")
        start = time.perf_counter()
        subprocess.run(
            ["mtaffect", "train", "--corpora", f"mustard={corpus_dir}", "--output-dir", str(out), "--overwrite", *extra],
            check=True, capture_output=True,
        )
        test = json.loads((out / "test_results.json").read_text())
        rows[f"{name} ({time.perf_counter() - start:.0f} s)"] = test["test_mustard_sarcasm_weighted_f1"]

    train_x, train_y = _mean_pooled(corpus["train"])
    test_x, _ = _mean_pooled(corpus["test"])
    probe = LogisticRegression(max_iter=2000).fit(train_x, train_y)
    rows["linear probe (mean-pooled MiniLM)"] = sarcasm_metrics(probe.predict_proba(test_x)[:, 1], labels)["weighted_f1"]

    print(f"MUStARD ({args.protocol}), test weighted F1, {len(labels)} utterances:")
    for name, value in rows.items():
        print(f"  {name:<45} {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
