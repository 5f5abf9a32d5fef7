"""``mtaffect predict``: emotion, sentiment and sarcasm of raw utterances with a trained model.

The utterances go through the ``"multimodal-affect"`` pipeline, so through the feature
extractors the model was trained with (recorded in its config): no feature files needed.
One utterance from flags, or many from a JSON-lines file (one object per line with
``text`` and optionally ``audio`` / ``video`` paths, relative to the file); one JSON line of
predictions per utterance comes out, with the input's ``id`` when it has one:

    mtaffect predict --model runs/mt-model --text "Oh great, another meeting."
    mtaffect predict --model user/mtaffect-meld --text "Sure." --audio clip.wav --video clip.mp4
    mtaffect predict --model runs/mt-model --input utterances.jsonl --output predictions.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from transformers import pipeline

import mtaffect.pipeline  # noqa: F401  (registers the "multimodal-affect" task)
from mtaffect.checkpoints import load_model
from mtaffect.cli.inputs import add_model_argument, resolve_model
from mtaffect.cli.main import command_help
from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.pipeline import raw_input_use

_MEDIA_KEYS = ("audio", "video")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help=command_help("predict"),
        description=__doc__.split("\n\n")[1],
    )
    add_model_argument(parser, positional=False)
    parser.add_argument("--text", help="one utterance's transcript")
    parser.add_argument("--audio", type=Path, help="its audio (WAV/FLAC, or a video's audio track)")
    parser.add_argument("--video", type=Path, help="its video clip")
    parser.add_argument("--input", type=Path, help="JSON lines: {\"id\"?, \"text\", \"audio\"?, \"video\"?} per line")
    parser.add_argument("--output", type=Path, help="write the JSON lines here (a new file) instead of stdout")
    parser.add_argument("--heads", nargs="+",
                        help="only these heads (e.g. emotion/meld sentiment); each answers in its own label names")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="probability above which a multi-label emotion or sarcasm is predicted")
    # Words without a flag are not taken as the utterance (nor the model): the error names the flags.
    parser.add_argument("stray", nargs="*", help=argparse.SUPPRESS)
    parser.set_defaults(func=_predict)


def _refuse_stray(args: argparse.Namespace) -> None:
    """``mtaffect predict "some text"``: point at ``--text`` (or ``--model`` for a checkpoint)."""
    if not args.stray:
        return
    words = " ".join(args.stray)
    if len(args.stray) == 1 and (Path(words) / "config.json").is_file():
        raise ValueError(f"{words!r} looks like a checkpoint: give it as --model {words}.")
    raise ValueError(
        f"{words!r}: give the utterance as --text {json.dumps(words)} (and the model as --model MODEL); "
        "--input FILE reads many utterances from a JSON-lines file."
    )


def read_utterances(path: Path) -> Iterator[dict[str, Any]]:
    """The utterances of a JSON-lines file, media paths resolved against the file's folder."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise FileNotFoundError(f"{path}: cannot read the utterances ({error.strerror or error}).") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not a JSON object ({error.msg}).") from None
        if not isinstance(record, dict) or not any(record.get(key) for key in ("text", *_MEDIA_KEYS)):
            raise ValueError(f"{path}:{number}: expected an object with 'text' (and optionally 'audio', 'video').")
        # "context" (the preceding turns, [{"speaker", "text"}, ...]) and "speaker" feed a model with context.
        unknown = set(record) - {"id", "text", "context", "speaker", *_MEDIA_KEYS}
        if unknown:
            raise ValueError(f"{path}:{number}: unknown keys {sorted(unknown)}; use id, text, audio, video, context, speaker.")
        for key in _MEDIA_KEYS:
            if record.get(key):
                media = Path(record[key])
                record[key] = str(media if media.is_absolute() else path.parent / media)
        yield record


def _utterances(args: argparse.Namespace) -> list[dict[str, Any]]:
    single = {key: getattr(args, key) for key in ("text", "audio", "video") if getattr(args, key)}
    if args.input and single:
        raise ValueError("give either --input FILE or --text/--audio/--video, not both.")
    if args.input:
        return list(read_utterances(args.input))
    if not single:
        raise ValueError("nothing to predict: give --text (and optionally --audio/--video) or --input FILE.")
    return [{key: str(value) for key, value in single.items()}]


def _predict(args: argparse.Namespace) -> int:
    _refuse_stray(args)
    resolve_model(args, "predict")
    if not 0.0 <= args.threshold <= 1.0:
        raise ValueError(f"--threshold must be a probability in [0, 1], got {args.threshold}.")
    if args.output is not None and args.output.exists():
        raise FileExistsError(f"{args.output} exists; mtaffect predict writes only new files: pick another --output.")
    utterances = _utterances(args)
    for record in utterances:
        for key in _MEDIA_KEYS:
            if record.get(key) and not Path(record[key]).is_file():
                raise FileNotFoundError(f"{record[key]}: no such {key} file.")

    _check_inputs_usable(utterances, args)
    classifier = load_classifier(args.model)
    options = {"heads": args.heads, "threshold": args.threshold}
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with open(args.output, "x", encoding="utf-8") as handle:
            _write(classifier, utterances, options, handle)
        print(f"wrote {len(utterances)} predictions to {args.output}", file=sys.stderr)
    else:
        _write(classifier, utterances, options, sys.stdout)
    return 0


def load_classifier(model: str) -> Any:
    """The ``"multimodal-affect"`` pipeline around the checkpoint ``model``, loaded once."""
    return pipeline("multimodal-affect", model=load_model(model))


def _check_inputs_usable(utterances: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Refuse media the model has no extractor for (from its config, before any weight is loaded)."""
    try:
        config = MTAffectConfig.from_pretrained(args.model)
    except Exception:  # noqa: BLE001 - load_model, called next, explains what is wrong with it
        return
    # An input is refused when it would feed the model nothing even on its own.
    used = {key for key in ("text", *_MEDIA_KEYS) if raw_input_use([key], config)[key]}
    for number, record in enumerate(utterances, 1):
        unused = [key for key in ("text", *_MEDIA_KEYS) if record.get(key) and key not in used]
        if unused:
            where = f"{args.input}: utterance {number}" if args.input else ", ".join(f"--{key}" for key in unused)
            raise ValueError(
                f"{where}: the model {args.model} reads only {', '.join(sorted(used)) or 'precomputed features'}, "
                f"so its {', '.join(unused)} would be ignored. Leave {'it' if len(unused) == 1 else 'them'} out, "
                "or use a model trained on those modalities."
            )


def _write(classifier: Any, utterances: list[dict[str, Any]], options: dict[str, Any], out: TextIO) -> None:
    for record in utterances:
        raw = {key: record[key] for key in ("text", *_MEDIA_KEYS) if record.get(key)}
        if record.get("context"):  # the preceding turns, for a model with conversational context
            raw.update({"context": record["context"], "speaker": record.get("speaker", "")})
        prediction = classifier(raw, **options)
        line = {"id": record["id"], **prediction} if "id" in record else prediction
        out.write(json.dumps(line) + "\n")
        out.flush()
