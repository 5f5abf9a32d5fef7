"""Fine-tune all-MiniLM-L6-v2 inside an mtaffect model on MELD (emotion + sentiment), and with MUStARD.

The text encoder is part of the model (``pretrained_encoders={"text": MiniLM}``, full
fine-tuning): the collator tokenizes MELD's transcripts with MiniLM's own tokenizer, the
encoder trains at ``--encoder-lr`` with its own warm-up while the heads train at ``--lr``,
all through ``MultiTaskTrainer``. ``--context-past K`` lets the encoder read each utterance's K
preceding turns of its dialogue before it (``speaker: text``, the tokenizer's pair format, cut
from the oldest turn to fit ``--max-length``; see docs/guides/context.md). Two runs:

* ``meld``: one model, two heads (MELD emotion, 7 classes; MELD sentiment, 3 classes);
* ``meld+mustard``: the multi-task model over MELD and MUStARD (speaker-independent
  protocol), adding the sarcasm head; batches come from one corpus at a time.

Each run trains ``--epochs`` on the train splits (optionally the first ``--train-limit``
MELD examples) and is scored once at the end on the test splits with the study's metrics
(weighted F1 as MELD's papers report it): no model selection, a short schedule for a CPU.

The corpora are the folders ``examples/real_corpora/prepare.py`` writes (their MiniLM
feature columns are ignored; the model reads the raw ``text`` column):

    python examples/real_corpora/prepare.py --corpora /path/to/corpora --output /tmp/mtreal
    python examples/finetune_meld.py --corpora /tmp/mtreal --output /tmp/finetune-meld --epochs 1
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch
from datasets import load_from_disk

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.data.extract.text import default_text_model_path
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
from mtaffect.training import MultiTaskTrainer, MultiTaskTrainingArguments

logger = logging.getLogger("finetune_meld")

#: The scores the results page shows, per run.
SCORES = ("meld_emotion_weighted_f1", "meld_sentiment_weighted_f1", "mustard_sarcasm_weighted_f1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path, required=True, help="folder with meld-minilm/ and mustard-si-minilm/")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--runs", nargs="+", default=["meld", "meld+mustard"], choices=["meld", "meld+mustard"])
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--train-limit", type=int, default=None, help="use only the first N MELD train examples")
    parser.add_argument("--eval-limit", type=int, default=None, help="score only the first N test examples (smoke runs)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64, help="tokens per utterance (MELD's are short)")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate of the layers after the encoder")
    parser.add_argument("--encoder-lr", type=float, default=5e-5)
    parser.add_argument("--encoder-warmup", type=float, default=0.1, help="encoder warm-up (ratio of the steps)")
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--context-past", type=int, default=0, metavar="K",
                        help="preceding turns the encoder reads before each utterance as 'speaker: text' (model.context; "
                        "the corpora must hold them, as prepare.py's folders do); 0 = none")
    return parser.parse_args(argv)


def load_corpora(folder: Path, run: str, train_limit: int | None, eval_limit: int | None) -> dict:
    corpora = {"meld": load_from_disk(str(folder / "meld-minilm"))}
    if run == "meld+mustard":
        corpora["mustard"] = load_from_disk(str(folder / "mustard-si-minilm"))
    for name, limit, split in (("meld", train_limit, "train"), (None, eval_limit, "test")):
        for corpus in ([corpora[name]] if name else corpora.values()):
            if limit:
                corpus[split] = corpus[split].select(range(min(limit, len(corpus[split]))))
    return corpora


def fine_tune(run: str, options: argparse.Namespace) -> dict:
    corpora = load_corpora(options.corpora, run, options.train_limit, options.eval_limit)
    encoder = {"name_or_path": str(default_text_model_path()), "finetune": "full", "max_length": options.max_length}
    config = MTAffectConfig.from_corpora(corpora, pretrained_encoders={"text": encoder}, hidden_size=options.hidden_size,
                                         context={"past": options.context_past})
    torch.manual_seed(options.seed)
    model = MTAffectForMultiTaskAffect.from_encoders(config)
    output = options.output / run.replace("+", "-")
    args = MultiTaskTrainingArguments(
        output_dir=str(output),
        num_train_epochs=options.epochs,
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=64,
        learning_rate=options.lr,
        encoder_learning_rate=options.encoder_lr,
        encoder_warmup_steps=options.encoder_warmup,
        warmup_steps=0.0,
        weight_decay=0.01,
        logging_steps=25,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=options.seed,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
    )
    trainer = MultiTaskTrainer(model, args, train_dataset={name: c["train"] for name, c in corpora.items()})
    start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - start
    metrics = trainer.evaluate({name: c["test"] for name, c in corpora.items()}, metric_key_prefix="test")
    trainer.save_model(str(output / "model"))
    result = {
        "run": run,
        "tasks": config.tasks,
        "train_examples": {name: len(c["train"]) for name, c in corpora.items()},
        "test_examples": {name: len(c["test"]) for name, c in corpora.items()},
        "steps": trainer.state.global_step,
        "train_seconds": round(train_seconds, 1),
        "scores": {key: round(100 * metrics[f"test_{key}"], 2) for key in SCORES if f"test_{key}" in metrics},
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(options).items()},
    }
    logger.info(json.dumps(result))
    return result


def main() -> None:
    options = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(options.threads)
    options.output.mkdir(parents=True, exist_ok=True)
    results = [fine_tune(run, options) for run in options.runs]
    (options.output / "results.json").write_text(json.dumps(results, indent=2))
    for result in results:
        print(result["run"], json.dumps(result["scores"]), f"({result['steps']} steps, {result['train_seconds']} s)")


if __name__ == "__main__":
    main()
