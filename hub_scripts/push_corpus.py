#!/usr/bin/env python
"""Push a unified mtaffect corpus to a Hugging Face Hub dataset repo, one config per corpus.

The corpus is either a folder written by ``DatasetDict.save_to_disk`` (what ``mtaffect data
convert`` produces) or read from its published files with an mtaffect loader
(``--loader NAME``, e.g. ``meld`` or ``mustard``). It is validated against the unified schema
before anything is uploaded. The corpus metadata (feature set, extractors, weak-label
provenance) goes into the dataset card, so ``mtaffect.hub.load_corpus_from_hub`` restores it;
``datasets.load_dataset(repo, config)`` gives the same rows.

ONLY PUSH DATA YOU HAVE THE RIGHT TO SHARE. Most affect corpora (CMU-MOSEI, IEMOCAP, MELD,
MUStARD) restrict redistribution, and extracted features can count as derived data. Check
the license; use ``--private`` when in doubt.

Examples::

    python hub_scripts/push_corpus.py data/meld_unified my-user/affect-corpora --private
    python hub_scripts/push_corpus.py /data/MUStARD my-user/affect-corpora --loader mustard
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

logger = logging.getLogger("push_corpus")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Push a unified mtaffect corpus (DatasetDict) to a Hub dataset repo as one config.",
        epilog="Only push data you have the right to share: most affect corpora restrict redistribution.",
    )
    parser.add_argument("source", type=Path, help="save_to_disk folder, or the corpus files with --loader")
    parser.add_argument("repo_id", help="target dataset repo, 'namespace/name'")
    parser.add_argument("--loader", help="read SOURCE with this mtaffect corpus loader (e.g. meld, mustard)")
    parser.add_argument("--config-name", help="config name in the repo (default: the corpus name)")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN or the saved login)")
    parser.add_argument("--commit-message", default=None, help="commit message of the data upload")
    parser.add_argument("--max-shard-size", default=None, help="Parquet shard size, e.g. 500MB")
    return parser.parse_args(argv)


def fail(message: str) -> None:
    print(f"push_corpus: error: {message}", file=sys.stderr)
    raise SystemExit(1)


def read_corpus(args: argparse.Namespace):
    from datasets import DatasetDict, load_from_disk

    if args.loader:
        from mtaffect.data.corpora import load_corpus

        return load_corpus(args.loader, args.source)
    if not args.source.exists():
        fail(f"{args.source} does not exist.")
    if not (args.source / "dataset_dict.json").is_file():
        fail(
            f"{args.source} is not a DatasetDict.save_to_disk folder (no dataset_dict.json); pass --loader NAME "
            "to read published corpus files instead."
        )
    corpus = load_from_disk(str(args.source))
    if not isinstance(corpus, DatasetDict):
        fail(f"{args.source} holds a single Dataset; save the corpus as a DatasetDict with its splits.")
    return corpus


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.repo_id.count("/") != 1:
        fail(f"repo_id {args.repo_id!r} must be 'namespace/name', e.g. 'my-user/affect-corpora'.")
    from mtaffect.data.schema import SchemaError
    from mtaffect.hub import SHARING_NOTE, push_corpus, push_error

    corpus = read_corpus(args)
    print(f"push_corpus: {SHARING_NOTE}", file=sys.stderr)
    try:
        commit = push_corpus(
            corpus,
            args.repo_id,
            config_name=args.config_name,
            private=args.private or None,
            token=args.token,
            commit_message=args.commit_message,
            max_shard_size=args.max_shard_size,
        )
    except SchemaError as error:
        fail(f"{args.source} is not a valid unified corpus: {error}")
    except Exception as error:
        failure = push_error(error)
        if failure is None:
            raise
        fail(str(failure))
    print(f"Pushed {args.source} to {commit.commit_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
