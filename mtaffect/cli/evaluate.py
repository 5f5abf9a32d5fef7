"""``mtaffect evaluate``: score a trained checkpoint on corpora with the literature's metrics.

The checkpoint is any ``save_pretrained`` folder or Hub id of an mtaffect model; the corpora
are given as for ``mtaffect train`` (saved unified corpus folders, synthetic corpus names,
``NAME=PATH``). Each corpus is scored on the tasks it has gold labels for and the model has
a head for, by ``MultiTaskTrainer.evaluate`` (the metrics a study reports):

    mtaffect evaluate --model runs/mt/checkpoint --corpora mosei=corpora/mosei corpora/meld
    mtaffect evaluate --model user/mtaffect-mosei --corpora corpora/mosei --split validation --output metrics.json
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mtaffect.cli.inputs import add_model_argument, load_corpora, pick_split, resolve_model
from mtaffect.cli.main import command_help
from mtaffect.data.schema import canonical_split, feature_dims, get_corpus_info, gold_tasks
from mtaffect.metrics import make_compute_metrics, split_metric_key
from mtaffect.recipes import load_model, training_arguments
from mtaffect.training import MultiTaskTrainer
from mtaffect.training.trainer import COMBINED_SCORE

#: Metric suffixes that describe the run, not the model.
_SPEED_METRICS = ("runtime", "samples_per_second", "steps_per_second", "model_preparation_time")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help=command_help("evaluate"),
        description=__doc__.split("\n\n")[1],
    )
    add_model_argument(parser, positional=True)
    parser.add_argument(
        "--corpora", nargs="+", required=True, metavar="CORPUS",
        help="NAME=PATH, a saved corpus folder, or a synthetic corpus name",
    )
    parser.add_argument("--split", default="test", help="split to score (default: test; valid/dev name validation)")
    parser.add_argument("--batch-size", type=int, default=64, help="evaluation batch size per device")
    parser.add_argument("--output", type=Path, help="also write the metrics as JSON here (a new file)")
    parser.set_defaults(func=_evaluate)


def check_model_accepts(model: Any, corpora: Mapping[str, Any]) -> None:
    """Refuse, before any forward pass, a corpus the model has no input for.

    What the model reads comes from its config: feature sets (a projection per name and
    dims) and pretrained encoders (raw ``text`` / ``audio`` columns). A corpus is accepted
    when its feature set is one the model was built for, or when an encoder of the model reads
    a raw column the corpus has (a text-only corpus for a text-encoder model).
    """
    built = {name: dict(dims) for name, dims in (model.config.feature_sets or {}).items()}
    encoders = set(getattr(model.config, "pretrained_encoders", None) or {})
    for name, dataset in corpora.items():
        feature_set = get_corpus_info(dataset).feature_set
        dims = feature_dims(dataset.features)
        raw = sorted(m for m in encoders if m in dataset.column_names)
        if not dims and not raw:
            raise ValueError(
                f"Corpus {name!r} has no features (a text-only corpus), but the model reads features "
                f"{sorted(built)}: load the corpus with the features the model card names (features=... or "
                "extract_text=True), or evaluate a model with a text encoder."
            )
        if feature_set not in built and raw:
            dims = {}  # the encoders read the raw columns; features the model has no projection for are unused
            feature_set = None
        elif feature_set not in built:
            raise ValueError(
                f"Corpus {name!r} has features {feature_set!r} {dims}, but the model was built for "
                f"{sorted(built)}: extract the features the model card names (mtaffect extract), or "
                "fine-tune the model on this corpus first (mtaffect train with model.from_pretrained)."
            )
        gold = gold_tasks(dataset)
        if not set(gold) & set(model.config.tasks):
            raise ValueError(
                f"Corpus {name!r} has gold labels for {gold} but the model predicts {list(model.config.tasks)}: "
                "there is nothing to score it on."
            )
        wrong = {m: d for m, d in dims.items() if feature_set and m in built[feature_set] and built[feature_set][m] != d}
        if wrong:
            raise ValueError(
                f"Corpus {name!r} has feature set {feature_set!r} with dims {dims}, but the model expects "
                f"{built[feature_set]}: the features come from another extractor under the same name."
            )


def metrics_by_corpus(metrics: Mapping[str, float], corpora: list[str], prefix: str) -> dict[str, dict[str, float]]:
    """``{prefix}_{corpus}_{metric}`` keys -> corpus -> metric (headline metrics first), without the speed metrics."""
    table: dict[str, dict[str, float]] = {name: {} for name in corpora}
    for key, value in metrics.items():
        parsed = split_metric_key(key, corpora)
        if parsed and parsed.prefix == prefix and parsed.corpus in table and parsed.name not in _SPEED_METRICS:
            table[parsed.corpus][parsed.name] = float(value)
    from mtaffect.metrics import order_metrics

    return {name: {metric: values[metric] for metric in order_metrics(values)} for name, values in table.items()}


def format_table(table: Mapping[str, Mapping[str, float]]) -> str:
    """One block per corpus: the literature's headline metrics (``mtaffect.metrics.headline_metrics``,
    the same as report.md, ``mtaffect run`` and the model card), then every other metric, named
    (``metric_label``: one-vs-rest scores say so)."""
    from mtaffect.metrics import headline_metrics, is_predicted_count, metric_label, order_metrics

    lines = []
    for corpus, values in table.items():
        lines.append(f"[{corpus}]")
        width = max((len(metric) for metric in values), default=0)
        headline = {metric.key: metric for metric in headline_metrics(values)}

        def line(metric: str, label: str, values: Mapping[str, float] = values, width: int = width) -> str:
            value = values[metric]
            if is_predicted_count(metric) and math.isfinite(value):  # a count of test rows, not a score
                return f"    {metric:<{width}}  {int(value):>7}  rows predicted as this class"
            shown = f"{value:.4f}" if math.isfinite(value) else "nan"
            return f"    {metric:<{width}}  {shown:>7}  {label}"

        if headline:
            lines.append("  headline (what the literature reports for such a corpus):")
            lines.extend(line(key, metric.label + ("" if metric.greater_is_better else " (lower is better)"))
                         for key, metric in headline.items())
        rest = [metric for metric in order_metrics(values) if metric not in headline]
        if rest:
            lines.append("  every other metric:")
            lines.extend(line(metric, metric_label(metric) if metric_label(metric) != metric else "") for metric in rest)
    return "\n".join(line.rstrip() for line in lines)


def _evaluate(args: argparse.Namespace) -> int:
    resolve_model(args, "evaluate")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}.")
    if args.output is not None and args.output.exists():
        raise FileExistsError(f"{args.output} exists; mtaffect evaluate writes only new files: pick another --output.")

    split = canonical_split(args.split)
    model = load_model(args.model)
    context = getattr(model.config, "context", None) or {}
    raw_text = "text" in model.config.pretrained_encoders
    if context.get("past") or context.get("future"):
        # The model reads conversational context: read the corpora with as many turns (mtaffect train's way).
        from mtaffect.cli.train import load_context_corpora

        corpora = load_context_corpora({"corpora": args.corpora, "model": {"context": dict(context)}}, raw_text=raw_text)
    else:
        corpora = load_corpora({"corpora": args.corpora}, raw_text=raw_text)
    splits = {name: pick_split(corpus, split, name, required=True) for name, corpus in corpora.items()}
    check_model_accepts(model, splits)
    with tempfile.TemporaryDirectory(prefix="mtaffect-evaluate-") as scratch:
        training = training_arguments(
            {"output_dir": scratch, "per_device_eval_batch_size": args.batch_size}, evaluation=False
        )
        # How often each class was predicted rides along: a collapsed model shows itself in the table.
        trainer = MultiTaskTrainer(model=model, args=training, compute_metrics=make_compute_metrics(include_counts=True))
        metrics = trainer.evaluate(eval_dataset=splits, metric_key_prefix=split)
    table = metrics_by_corpus(metrics, list(splits), split)
    combined = metrics.get(f"{split}_{COMBINED_SCORE}")
    sizes = ", ".join(f"{name} ({len(rows)})" for name, rows in splits.items())
    print(f"mtaffect evaluate: {args.model} (tasks {model.config.tasks}) on the {split} split of {sizes}")
    print(format_table(table))
    if combined is not None:
        print(f"combined score (mean of each corpus' primary score): {combined:.4f}")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        payload = {"model": args.model, "split": split, "corpora": table, COMBINED_SCORE: combined}
        with open(args.output, "x", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2)
            handle.write("\n")
        print(f"wrote {args.output}")
    return 0
