#!/usr/bin/env python
"""Publish the mtaffect demo app of a pushed checkpoint as a Gradio Space.

The Space holds ``app.py`` (``build_demo("<model repo>")`` from ``mtaffect.demo``, the app
``mtaffect demo`` serves), ``requirements.txt`` (mtaffect's dependencies plus the extractor
extras the checkpoint's recorded feature extractors need: MiniLM text, openSMILE audio,
OpenCV video) and a ``README.md`` with the Space metadata (``sdk: gradio``, the Gradio
version installed here, ``models: [<model repo>]``). mtaffect is not on PyPI, so by default
the package itself (this installation's ``mtaffect/`` folder) is copied into the Space next
to ``app.py``; ``--mtaffect-requirement SPEC`` names a pip requirement for it instead
(e.g. ``mtaffect @ git+https://example.org/mtaffect.git``). The checkpoint must be on the
Hub already (``push_checkpoint.py``); its ``config.json`` is read to pick the extras.

Examples::

    python hub_scripts/push_demo.py my-user/mtaffect-meld my-user/mtaffect-meld-demo
    python hub_scripts/push_demo.py my-user/mtaffect-meld my-user/demo --title "MELD affect" --private
    python hub_scripts/push_demo.py my-user/m my-user/m-demo --output space/   # write the files, push nothing

Authentication: ``HF_TOKEN`` (or ``hf auth login``), or ``--token``. ``HF_ENDPOINT`` selects
another Hub endpoint.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

#: Extractor modality -> the mtaffect extra that installs what it needs.
MODALITY_EXTRAS = {"text": "text", "audio": "audio", "visual": "video"}
#: Provided by the Space image itself (``sdk_version``): never in requirements.txt.
SPACE_PROVIDED = {"gradio", "gradio-client", "gradio_client"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Publish the mtaffect demo app (Gradio) of a checkpoint on the Hub as a Space.",
    )
    parser.add_argument("model_id", help="the checkpoint's model repo, 'namespace/name' (push it first)")
    parser.add_argument("space_id", help="the Space to create or update, 'namespace/name'")
    parser.add_argument("--title", help="the app's heading (default: the model repo id)")
    parser.add_argument(
        "--example", action="append", default=[], help="an example utterance offered in the app (repeatable)"
    )
    parser.add_argument("--mtaffect-requirement", help="pip requirement for mtaffect instead of copying the package")
    parser.add_argument("--output", type=Path, help="write the Space's files to this new folder and push nothing")
    parser.add_argument("--private", action="store_true", help="create the Space as private")
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN or the saved login)")
    parser.add_argument("--commit-message", default="Upload mtaffect demo", help="commit message")
    return parser.parse_args(argv)


def fail(message: str) -> None:
    print(f"push_demo: error: {message}", file=sys.stderr)
    raise SystemExit(1)


def needed_extras(config: dict) -> list[str]:
    """The extras the checkpoint's recorded extractors need, plus nothing for feature-only models."""
    modalities = {
        modality
        for specs in (config.get("feature_extractors") or {}).values()
        if isinstance(specs, dict)
        for modality in specs
    }
    return sorted({MODALITY_EXTRAS[m] for m in modalities if m in MODALITY_EXTRAS})


def requirements(extras: list[str], mtaffect_requirement: str | None) -> list[str]:
    """mtaffect's own requirements for ``extras`` (read from the installed package's metadata)."""
    from packaging.requirements import Requirement

    wanted = set(extras)
    # Resolve extras that name other extras of mtaffect (extract = mtaffect[text,audio,video]).
    lines: list[str] = []
    pending = [None, *sorted(wanted)]
    seen: set[str | None] = set()
    declared = [Requirement(text) for text in metadata.requires("mtaffect") or []]
    while pending:
        extra = pending.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in declared:
            marker = requirement.marker
            in_extra = marker is not None and "extra" in str(marker)
            if extra is None and in_extra or extra is not None and not (in_extra and marker.evaluate({"extra": extra})):
                continue
            if requirement.name == "mtaffect":
                pending.extend(sorted(requirement.extras))
                continue
            if requirement.name.lower() in SPACE_PROVIDED:
                continue
            text = requirement.name + (f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else "")
            text += str(requirement.specifier)
            if marker is not None and extra is None:
                text += f"; {marker}"
            if text not in lines:
                lines.append(text)
    if mtaffect_requirement:
        lines.insert(0, mtaffect_requirement)
    return lines


def app_source(model_id: str, title: str | None, examples: list[str]) -> str:
    arguments = [repr(model_id)]
    if title:
        arguments.append(f"title={title!r}")
    if examples:
        arguments.append(f"examples={examples!r}")
    return (
        '"""mtaffect demo of {model}: emotion, sentiment and sarcasm of one utterance."""\n\n'
        "from mtaffect.demo import build_demo\n\n"
        "demo = build_demo({arguments})\n\n"
        'if __name__ == "__main__":\n'
        "    demo.launch()\n"
    ).format(model=model_id, arguments=", ".join(arguments))


def space_card(model_id: str, space_id: str, gradio_version: str) -> str:
    header = {
        "title": "mtaffect demo",
        "emoji": "🎭",
        "colorFrom": "indigo",
        "colorTo": "pink",
        "sdk": "gradio",
        "sdk_version": gradio_version,
        "app_file": "app.py",
        "pinned": False,
        "models": [model_id],
        "tags": ["mtaffect", "multimodal-affect", "emotion-recognition", "sentiment-analysis", "sarcasm-detection"],
    }
    front = "\n".join(f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in header.items())
    return (
        f"---\n{front}\n---\n\n# mtaffect demo: {model_id}\n\n"
        f"Type an utterance, add its audio or video, and see the emotion, sentiment and sarcasm "
        f"[`{model_id}`](https://huggingface.co/{model_id}) predicts, with the label names it was "
        "trained with and which of the inputs it read. The same app runs locally with "
        f"`mtaffect demo --model {model_id}`.\n"
    )


def stage(args: argparse.Namespace, config: dict, folder: Path) -> list[str]:
    """Write the Space's files into ``folder``; return their paths relative to it."""
    import mtaffect

    extras = needed_extras(config)
    files = {
        "app.py": app_source(args.model_id, args.title, args.example),
        "requirements.txt": "\n".join(requirements(extras, args.mtaffect_requirement)) + "\n",
        "README.md": space_card(args.model_id, args.space_id, metadata.version("gradio")),
    }
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    if not args.mtaffect_requirement:
        shutil.copytree(
            Path(mtaffect.__file__).parent, folder / "mtaffect", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def read_config(api: object, model_id: str) -> dict:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    try:
        path = hf_hub_download(model_id, "config.json", token=getattr(api, "token", None), endpoint=api.endpoint)  # type: ignore[attr-defined]
    except RepositoryNotFoundError:
        fail(f"no model repo {model_id!r} on {api.endpoint}: push the checkpoint first (push_checkpoint.py).")  # type: ignore[attr-defined]
    except EntryNotFoundError:
        fail(f"{model_id} has no config.json: it is not a save_pretrained checkpoint.")
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    if config.get("model_type") != "mtaffect":
        fail(f"{model_id} is a {config.get('model_type')!r} model, not an mtaffect checkpoint.")
    return config


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name in ("model_id", "space_id"):
        if not re.fullmatch(r"[^/\s]+/[^/\s]+", getattr(args, name)):
            fail(f"{name} {getattr(args, name)!r} must be 'namespace/name', e.g. 'my-user/mtaffect-demo'.")
    if args.output is not None and args.output.exists():
        fail(f"--output {args.output} exists; give a new folder.")
    try:
        # The Space pins the version installed here; read from its metadata (importing Gradio takes seconds).
        metadata.version("gradio")
    except metadata.PackageNotFoundError:
        fail("Gradio is not installed: pip install 'mtaffect[demo]'.")

    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=args.token)
    try:
        config = read_config(api, args.model_id)
    except HfHubHTTPError as error:
        fail(f"cannot read {args.model_id} from the Hub: {str(error).splitlines()[0]}")
    except OSError as error:
        fail(f"cannot reach the Hub at {api.endpoint}: {error}. Check your network or HF_ENDPOINT.")
    if not config.get("feature_extractors"):
        print(
            f"push_demo: warning: {args.model_id} records no feature extractors, so its demo can take no raw "
            "text, audio or video (train it on corpora made by mtaffect extract).",
            file=sys.stderr,
        )
    if args.output is not None:
        args.output.mkdir(parents=True)
        files = stage(args, config, args.output)
        print(f"Wrote {len(files)} files to {args.output}: " + ", ".join(f for f in files if "/" not in f))
        return 0

    from mtaffect.hub import HubPushError, push_folder

    with tempfile.TemporaryDirectory(prefix="mtaffect-space-") as tmp:
        stage(args, config, Path(tmp))
        try:
            commit = push_folder(
                tmp, args.space_id, repo_type="space", space_sdk="gradio", token=args.token,
                private=args.private or None, commit_message=args.commit_message,
            )
        except HubPushError as error:
            fail(str(error))
    print(f"Pushed the demo of {args.model_id} to {commit.commit_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
