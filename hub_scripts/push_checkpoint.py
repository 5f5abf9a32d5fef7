#!/usr/bin/env python
"""Push a trained mtaffect checkpoint to the Hugging Face Hub, with its model card and study report.

The checkpoint folder is what ``save_pretrained`` / ``Trainer.save_model`` wrote
(``config.json``, ``model.safetensors``, the two code files for ``trust_remote_code``). The
model card is regenerated for the target repo (so the usage snippet names it), from the card
data saved next to the weights when there is any. Report files (``report.json``,
``report.md``, ``report.png`` of ``mtaffect run``) go to ``report/``. Everything lands in one
commit; a repo this script created is deleted again if the upload fails.

Examples::

    python hub_scripts/push_checkpoint.py runs/mtl/best my-user/mtaffect-mosei \\
        --report-dir runs/study --license apache-2.0
    HF_TOKEN=hf_... python hub_scripts/push_checkpoint.py ckpt my-org/model --private

Authentication: ``HF_TOKEN`` (or ``hf auth login``), or ``--token``. ``HF_ENDPOINT`` selects
another Hub endpoint.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

REPORT_FILES = ("report.json", "report.md", "report.png")
#: Files of a checkpoint folder worth publishing (optimizer state and RNG files are not).
CHECKPOINT_PATTERNS = (
    "config.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "pytorch_model*.bin",
    "*.py",
    "README.md",
    "mtaffect_card_data.json",
    "training_args.bin",
)

logger = logging.getLogger("push_checkpoint")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Push a trained mtaffect checkpoint (weights, config, code, model card, study report) "
        "to the Hugging Face Hub in one commit.",
        epilog="Only publish models trained on data whose license allows sharing derived models.",
    )
    parser.add_argument("checkpoint", type=Path, help="folder written by save_pretrained / Trainer.save_model")
    parser.add_argument("repo_id", help="target model repo, 'namespace/name'")
    parser.add_argument("--report-dir", type=Path, help="folder holding report.json/report.md/report.png")
    parser.add_argument(
        "--report", type=Path, action="append", default=[], help="a report file to include (repeatable)"
    )
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN or the saved login)")
    parser.add_argument("--revision", help="branch to push to (default: main)")
    parser.add_argument("--commit-message", default=None, help="commit message")
    parser.add_argument("--license", help="license of the weights, e.g. apache-2.0")
    parser.add_argument("--language", help="language of the training transcripts, e.g. en")
    parser.add_argument("--base-model", help="Hub id of the checkpoint this one was fine-tuned from")
    parser.add_argument(
        "--dataset", action="append", default=[], help="Hub id of a training dataset (repeatable)"
    )
    parser.add_argument(
        "--keep-card", action="store_true", help="upload the folder's README.md as is instead of regenerating it"
    )
    return parser.parse_args(argv)


def fail(message: str) -> None:
    print(f"push_checkpoint: error: {message}", file=sys.stderr)
    raise SystemExit(1)


def check_checkpoint(folder: Path) -> None:
    if not folder.is_dir():
        fail(f"{folder} is not a folder; pass the directory save_pretrained wrote.")
    if not (folder / "config.json").is_file():
        fail(f"{folder} has no config.json: it is not a save_pretrained checkpoint folder.")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("pytorch_model*.bin")):
        fail(f"{folder} has no weights (model.safetensors); save the model with save_pretrained first.")


def report_files(args: argparse.Namespace) -> dict[str, Path]:
    files: dict[str, Path] = {}
    if args.report_dir is not None:
        if not args.report_dir.is_dir():
            fail(f"--report-dir {args.report_dir} is not a folder.")
        found = [args.report_dir / name for name in REPORT_FILES if (args.report_dir / name).is_file()]
        if not found:
            fail(f"--report-dir {args.report_dir} holds none of {', '.join(REPORT_FILES)}.")
        files.update({f"report/{path.name}": path for path in found})
    for path in args.report:
        if not path.is_file():
            fail(f"--report {path} does not exist.")
        files[f"report/{path.name}"] = path
    return files


def stage(args: argparse.Namespace, staging: Path) -> None:
    """Copy the publishable checkpoint files and regenerate the card into ``staging``."""
    for pattern in CHECKPOINT_PATTERNS:
        for path in args.checkpoint.glob(pattern):
            if path.is_file():
                shutil.copy2(path, staging / path.name)
    for path_in_repo, local in report_files(args).items():
        target = staging / path_in_repo
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(local, target)
    if args.keep_card:
        if not (staging / "README.md").is_file():
            fail(f"--keep-card: {args.checkpoint} has no README.md.")
        return
    # The card needs the model (config, parameter count) and mtaffect's renderer.
    from transformers import AutoModel

    import mtaffect  # noqa: F401  (registers the model with AutoModel)
    from mtaffect.modelcard import load_model_card_data, write_model_card

    model = AutoModel.from_pretrained(str(args.checkpoint))
    load_model_card_data(model, args.checkpoint)
    card_data: dict[str, object] = {"model_id": args.repo_id}
    if args.license:
        card_data["license"] = args.license
    if args.language:
        card_data["language"] = args.language
    if args.base_model:
        card_data["base_model"] = args.base_model
    if args.dataset:
        card_data["datasets"] = list(args.dataset)
    write_model_card(model, staging, **card_data)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.repo_id.count("/") != 1:
        fail(f"repo_id {args.repo_id!r} must be 'namespace/name', e.g. 'my-user/mtaffect-mosei'.")
    check_checkpoint(args.checkpoint)

    from mtaffect.hub import HubPushError, push_folder

    with tempfile.TemporaryDirectory(prefix="mtaffect-push-") as tmp:
        staging = Path(tmp)
        stage(args, staging)
        try:
            commit = push_folder(
                staging, args.repo_id, token=args.token, private=args.private or None, revision=args.revision,
                commit_message=args.commit_message or "Upload mtaffect checkpoint",
            )
        except HubPushError as error:
            fail(str(error))
    print(f"Pushed {args.checkpoint} to {commit.commit_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
