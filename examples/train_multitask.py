"""Train one multi-task model on several unified corpora with MultiTaskTrainer.

The same script runs on one CPU, one GPU, several GPUs or several machines: the Trainer and
``accelerate`` take care of the processes, and MultiTaskTrainer's corpus sampler gives every
process distinct batches.

    python examples/train_multitask.py --output-dir runs/mtl                       # synthetic corpora
    python examples/train_multitask.py --corpus meld=corpora/meld-minilm \\
        --corpus mustard=corpora/mustard-si-minilm --output-dir runs/mtl
    accelerate launch --multi_gpu --num_processes 4 examples/train_multitask.py --output-dir runs/mtl
    torchrun --nproc_per_node 4 examples/train_multitask.py --output-dir runs/mtl

``--corpus NAME=FOLDER`` names a corpus saved with ``save_to_disk`` (``mtaffect data convert``
writes one); without any, the synthetic corpus family is generated. The best checkpoint (on
``eval_combined_score``) is saved to ``<output-dir>/best`` with its model card, and the test
metrics to ``<output-dir>/test_metrics.json`` (main process only).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", action="append", default=[], metavar="NAME=FOLDER",
                        help="a save_to_disk corpus folder (repeatable); default: the synthetic family")
    parser.add_argument("--size-scale", type=float, default=1.0, help="synthetic corpora size multiplier")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--epochs", type=float, default=6.0)
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps (overrides --epochs)")
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--encoder", choices=("transformer", "bilstm", "mean"), default="transformer")
    parser.add_argument("--sampling", choices=("proportional", "temperature", "round_robin", "uniform"),
                        default="temperature")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def load_corpora(args: argparse.Namespace) -> dict:
    from datasets import load_from_disk

    from mtaffect.data.corpora.synthetic import make_synthetic_family

    if not args.corpus:
        return make_synthetic_family(seed=0, size_scale=args.size_scale)
    corpora = {}
    for item in args.corpus:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise SystemExit(f"--corpus {item!r}: expected NAME=FOLDER.")
        if not (Path(folder) / "dataset_dict.json").is_file():
            raise SystemExit(f"--corpus {item!r}: {folder} is not a save_to_disk DatasetDict folder.")
        corpora[name] = load_from_disk(folder)
    return corpora


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)

    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
    from mtaffect.training import MultiTaskTrainer, MultiTaskTrainingArguments

    corpora = load_corpora(args)
    config = MTAffectConfig.from_corpora(corpora, hidden_size=args.hidden_size, encoder_type=args.encoder)
    training_args = MultiTaskTrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=4 * args.batch_size,
        learning_rate=args.learning_rate,
        corpus_sampling=args.sampling,
        eval_strategy="epoch" if args.max_steps < 0 else "no",
        save_strategy="epoch" if args.max_steps < 0 else "no",
        save_total_limit=1,
        load_best_model_at_end=args.max_steps < 0,
        metric_for_best_model="combined_score",
        report_to="none",
        seed=args.seed,
    )
    trainer = MultiTaskTrainer(
        model=MTAffectForMultiTaskAffect(config),
        args=training_args,
        train_dataset={name: corpus["train"] for name, corpus in corpora.items()},
        eval_dataset={name: corpus["validation"] for name, corpus in corpora.items()},
    )
    trainer.train()
    metrics = trainer.evaluate(eval_dataset={name: corpus["test"] for name, corpus in corpora.items()},
                               metric_key_prefix="test")
    trainer.save_model(str(Path(args.output_dir) / "best"))
    if trainer.is_world_process_zero():
        (Path(args.output_dir) / "test_metrics.json").write_text(json.dumps(metrics, indent=2))
        print({key: round(value, 4) for key, value in metrics.items() if key.endswith("primary_score")})
    if trainer.args.world_size > 1:
        trainer.end()  # destroys the process group: everything that talks to other processes is done
    return metrics


if __name__ == "__main__":
    main()
