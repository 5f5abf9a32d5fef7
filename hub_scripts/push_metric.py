#!/usr/bin/env python
"""Push mtaffect's ``evaluate`` metric module to the Hugging Face Hub as a metric Space.

The folder ``mtaffect/metrics_module/`` (``mtaffect_metrics.py``, ``README.md`` with the
Space metadata, ``app.py``, ``requirements.txt``) is uploaded as is to a Gradio Space, which
is how ``evaluate`` metrics live on the Hub; ``evaluate.load("<namespace>/<space>")`` then
loads it. ``--repo-type model`` pushes it to a model repo instead (for Hubs or accounts
without Spaces); ``evaluate.load`` cannot fetch it from there, but
``evaluate.load(local_copy_of_the_folder)`` works.

Examples::

    python hub_scripts/push_metric.py my-user/mtaffect_metrics
    python hub_scripts/push_metric.py my-user/mtaffect_metrics --folder path/to/metrics_module
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_FOLDER = Path(__file__).resolve().parents[1] / "mtaffect" / "metrics_module"
REQUIRED_FILES = ("mtaffect_metrics.py", "README.md")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Push the mtaffect evaluate metric module (a folder) to the Hub as a Gradio metric Space.",
    )
    parser.add_argument("repo_id", help="target repo, 'namespace/name'")
    parser.add_argument(
        "--folder", type=Path, default=DEFAULT_FOLDER, help=f"metric module folder (default: {DEFAULT_FOLDER})"
    )
    parser.add_argument(
        "--repo-type", choices=("space", "model"), default="space",
        help="space (default: a Gradio metric Space, what evaluate.load fetches) or model",
    )
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN or the saved login)")
    parser.add_argument("--commit-message", default="Upload mtaffect metrics module", help="commit message")
    return parser.parse_args(argv)


def fail(message: str) -> None:
    print(f"push_metric: error: {message}", file=sys.stderr)
    raise SystemExit(1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.repo_id.count("/") != 1:
        fail(f"repo_id {args.repo_id!r} must be 'namespace/name', e.g. 'my-user/mtaffect_metrics'.")
    if not args.folder.is_dir():
        fail(f"{args.folder} is not a folder; pass --folder pointing at the metric module.")
    missing = [name for name in REQUIRED_FILES if not (args.folder / name).is_file()]
    if missing:
        fail(f"{args.folder} lacks {', '.join(missing)}: it is not the mtaffect metric module folder.")

    from mtaffect.hub import HubPushError, push_folder

    try:
        commit = push_folder(
            args.folder, args.repo_id, repo_type=args.repo_type, token=args.token, private=args.private or None,
            space_sdk="gradio" if args.repo_type == "space" else None, commit_message=args.commit_message,
            ignore_patterns=["__pycache__/*", "*.pyc"],
        )
    except HubPushError as error:
        fail(str(error))
    print(f"Pushed {args.folder} to {commit.commit_url}")
    if args.repo_type == "space":
        print(f'Load it with: evaluate.load("{args.repo_id}", "sentiment")')
    return 0


if __name__ == "__main__":
    sys.exit(main())
