"""Corpus-level extraction: raw transcripts/clips + labels -> a unified ``DatasetDict``.

Two steps:

1. a *reader* turns a published raw-media layout into a ``RawCorpus`` (``mtaffect.data.raw``:
   ids, splits, transcripts, media paths, gold labels in the unified schema). Each corpus'
   reader lives beside its loader: ``mtaffect.data.corpora.meld.read_meld`` (the three CSVs +
   ``diaX_uttY.mp4`` clips), ``mtaffect.data.corpora.mustard.read_mustard``
   (``sarcasm_data.json`` + ``<id>.mp4``), ``mtaffect.data.corpora.mmsa.read_mmsa_fet``
   (``label.csv`` + ``Raw/<video_id>/<clip_id>.mp4``), and ``mtaffect.data.raw.read_text_table``
   reads any CSV/JSON/Parquet table with a text column;
2. ``extract_corpus`` runs the extractors over it in shards of ``shard_size`` examples
   and writes each finished shard to ``work_dir`` as an Arrow file plus a ``.done.json``
   marker, so a crashed or interrupted run picks up where it stopped: finished shards are
   not extracted again (a shard whose inputs changed — transcript, labels, media file size or
   mtime — is). An input that cannot be extracted (corrupt WAV or clip, missing file) is
   logged, written to ``failures.jsonl`` and its example left out; the rest of the corpus is
   still extracted. An empty transcript is not a failure: the example is kept with its text
   missing (an empty text sequence, counted as ``missing_text``).

Examples:
    >>> corpus = read_meld("MELD.Raw", media_dir="MELD.Raw")  # doctest: +SKIP
    >>> result = extract_corpus(corpus, [TextExtractor(), AudioExtractor()], "meld.work", "meld.unified")  # doctest: +SKIP
    >>> result.failures[:1]  # doctest: +SKIP
    [{'id': 'dia125_utt3', 'split': 'train', 'modality': 'audio', 'input': '...', 'error': '...'}]
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from datasets import (
    Dataset,
    DatasetDict,
    DatasetInfo,
    Features,
    NamedSplit,
    concatenate_datasets,
)
from datasets.arrow_writer import ArrowWriter
from datasets.features.features import Array2DExtensionType

from mtaffect.data.extract.base import ExtractionError, Extractor, feature_set_name
from mtaffect.data.raw import RawCorpus, RawExample
from mtaffect.data.schema import (
    MODALITIES,
    CorpusInfo,
    build_features,
    feature_column,
    set_corpus_info,
    unknown_labels,
    validate_corpus,
)

logger = logging.getLogger(__name__)

#: Bump when the shard layout or row content changes, so old work dirs are not reused.
SHARD_FORMAT_VERSION = 1
_MAX_LOGGED_FAILURES = 20


@dataclass
class ExtractionResult:
    """What ``extract_corpus`` returns: the corpus, every failure, and where things are."""

    dataset: DatasetDict
    failures: list[dict[str, Any]]
    counts: dict[str, dict[str, int]]
    work_dir: Path
    failures_file: Path
    shards_reused: int = 0
    shards_extracted: int = 0
    #: What saving into ``output_dir`` replaced and kept (``None`` without an output dir).
    output_commit: Any = None


# ---------------------------------------------------------------------------------------
# Extraction


def extract_corpus(
    corpus: RawCorpus,
    extractors: Sequence[Extractor] | Mapping[str, Extractor],
    work_dir: str | Path,
    output_dir: str | Path | None = None,
    shard_size: int = 256,
    overwrite: bool = False,
    progress: bool = True,
    limit: int | None = None,
) -> ExtractionResult:
    """Extract every example of ``corpus`` with ``extractors`` into a unified ``DatasetDict``.

    Args:
        extractors: one per modality; an example is kept only if every one succeeds on it.
        work_dir: where finished shards, their markers and ``failures.jsonl`` go. Running
            again with the same work dir reuses finished shards (resume after a crash).
        output_dir: if given, the corpus is saved there (``save_to_disk``) and returned
            memory-mapped from it; otherwise it is memory-mapped from ``work_dir``.
        shard_size: examples per shard (the unit of resumption).
        overwrite: start the extraction afresh and replace an earlier output, removing only
            what mtaffect wrote in ``work_dir`` and ``output_dir`` (their manifests list it;
            see ``mtaffect.output_folder``); files mtaffect did not write are kept.
        progress: show a tqdm progress bar (inputs per modality).
        limit: extract only the first ``limit`` examples of each split (a dry run).

    The output is saved through a scratch folder beside ``output_dir`` and moved into place
    at the end, so an interruption leaves an earlier output whole.

    Raises ``ValueError`` if the work dir was made with other extractors or another corpus,
    and ``FileExistsError`` (``OutputFolderError``) for a work dir or output folder holding
    files mtaffect did not write (without ``overwrite``) or an earlier output (without
    ``overwrite``).
    """
    from mtaffect.output_folder import OutputFolder

    extractors = list(extractors.values()) if isinstance(extractors, Mapping) else list(extractors)
    if limit is not None:
        corpus = _first_examples(corpus, limit)
    _check_extractors(corpus, extractors)
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}.")
    work_dir = Path(work_dir)
    work = OutputFolder(work_dir, command="mtaffect extract (work dir)", overwrite=overwrite, resume=True)
    _adopt_legacy_work_dir(work)
    work.check()
    output = None
    if output_dir is not None:
        # A rerun of the same extraction refreshes its own output (the shards make it a resume).
        output = OutputFolder(output_dir, command="mtaffect extract", overwrite=overwrite, resume=True)
        output.check(["extraction_failures.jsonl"])
    if overwrite:
        work.clear()
    shard_dir = work_dir / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    extractors.sort(key=lambda ex: MODALITIES.index(ex.modality))
    dims = {ex.modality: int(ex.dim) for ex in extractors}
    features = build_features(dims)
    for name, feature in corpus.extra_features.items():
        if name in features:
            raise ValueError(f"Extra column {name!r} of {corpus.name} clashes with a unified-schema column.")
        features[name] = feature
    info = CorpusInfo(
        corpus=corpus.name,
        feature_set=feature_set_name(extractors),
        dims=dims,
        tasks=list(corpus.tasks),
        emotion_labels=list(corpus.emotion_labels),
        label_spaces=dict(corpus.label_spaces),
        extractors={ex.modality: ex.describe() for ex in extractors},
        notes=dict(corpus.notes),
    )
    _check_manifest(work_dir, corpus, extractors, shard_size)

    plan = [
        (split, index, examples[start : start + shard_size])
        for split in corpus.splits()
        for examples in [corpus.split_examples(split)]
        for index, start in enumerate(range(0, len(examples), shard_size))
    ]
    from tqdm.auto import tqdm

    total = len(corpus.examples) * len(extractors)
    reused = extracted = 0
    with tqdm(total=total, desc=f"extract {corpus.name}", unit="input", disable=not progress) as bar:
        for split, index, shard in plan:
            stem = shard_dir / f"{split}-{index:05d}"
            fingerprint = _shard_fingerprint(shard)
            if _shard_done(stem, fingerprint):
                reused += 1
                bar.update(len(shard) * len(extractors))
                continue
            _extract_shard(stem, fingerprint, shard, extractors, corpus, info, features, bar)
            work.record([_relative(path, work_dir) for path in (stem.with_suffix(".arrow"), _marker(stem))])
            extracted += 1
    if reused:
        logger.info("%s: reused %d finished shard(s) from %s.", corpus.name, reused, work_dir)

    failures: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    counts: dict[str, dict[str, int]] = {}
    splits: dict[str, Dataset] = {}
    for split in corpus.splits():
        parts = []
        counts[split] = {"examples": 0, "extracted": 0, "failed": 0, "missing_text": 0}
        for s, index, shard in plan:
            if s != split:
                continue
            stem = shard_dir / f"{split}-{index:05d}"
            marker = json.loads(_marker(stem).read_text())
            failures.extend(marker["failures"])
            missing.extend(marker.get("missing", []))
            counts[split]["missing_text"] += len(marker.get("missing", []))
            counts[split]["examples"] += len(shard)
            counts[split]["extracted"] += marker["rows"]
            parts.append(_open_shard(stem, features, info, split))
        counts[split]["failed"] = counts[split]["examples"] - counts[split]["extracted"]
        splits[split] = concatenate_datasets(parts, info=_dataset_info(features, info), split=NamedSplit(split))
    failures_file = work_dir / "failures.jsonl"
    _write_jsonl(failures_file, failures)
    work.record(["failures.jsonl"])
    _log_failures(corpus.name, failures, failures_file)
    for entry in missing[:_MAX_LOGGED_FAILURES]:
        logger.warning("%s %s/%s: empty transcript; its text is a missing modality.", corpus.name, entry["split"], entry["id"])
    if missing:
        logger.warning("%s: %d example(s) kept with their text missing (empty transcript).", corpus.name, len(missing))
    info.notes["extraction"] = {
        "counts": counts,
        "failed_examples": sum(c["failed"] for c in counts.values()),
        "missing_text": sum(c["missing_text"] for c in counts.values()),
        "failures_file": "extraction_failures.jsonl",
    }
    dataset = DatasetDict(splits)
    set_corpus_info(dataset, info)
    validate_corpus(dataset)
    commit = None
    if output is not None:
        with output.staging(["extraction_failures.jsonl"]) as scratch:
            dataset.save_to_disk(str(scratch))
            _write_jsonl(scratch / "extraction_failures.jsonl", failures)
        commit = output.last_commit
        from datasets import load_from_disk

        dataset = load_from_disk(str(output.target))
        set_corpus_info(dataset, info)
    return ExtractionResult(
        dataset=dataset,
        failures=failures,
        counts=counts,
        work_dir=work_dir,
        failures_file=failures_file,
        shards_reused=reused,
        shards_extracted=extracted,
        output_commit=commit,
    )


def _first_examples(corpus: RawCorpus, limit: int) -> RawCorpus:
    """``corpus`` with only the first ``limit`` examples of each split (file order kept)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive number of examples per split, got {limit!r}.")
    seen: dict[str, int] = {}
    kept = []
    for example in corpus.examples:
        if seen.get(example.split, 0) < limit:
            kept.append(example)
            seen[example.split] = seen.get(example.split, 0) + 1
    return replace(corpus, examples=kept, notes={**corpus.notes, "limit_per_split": limit})


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _adopt_legacy_work_dir(work: Any) -> None:
    """A work dir from before manifests (it has the shard ``manifest.json``): its shards are mtaffect's."""
    root = work.target
    if (root / "manifest.json").is_file() and not work.manifest_path.exists():
        ours = ["manifest.json", "failures.jsonl"] + [
            _relative(path, root) for path in (root / "shards").glob("*") if path.is_file()
        ]
        work.record([name for name in ours if (root / name).is_file()])


def _check_extractors(corpus: RawCorpus, extractors: list[Extractor]) -> None:
    if not extractors:
        raise ValueError("Give at least one extractor.")
    modalities = [ex.modality for ex in extractors]
    if len(set(modalities)) != len(modalities) or not set(modalities) <= set(MODALITIES):
        raise ValueError(f"Give one extractor per modality ({', '.join(MODALITIES)}), got {modalities}.")
    for modality in ("audio", "visual"):
        if modality in modalities and corpus.examples and all(e.input_for(modality) is None for e in corpus.examples):
            raise ValueError(
                f"A {modality} extractor was given but corpus {corpus.name!r} has no media paths: "
                "pass the folder of clips (media_dir / --media-dir)."
            )


def _check_manifest(work_dir: Path, corpus: RawCorpus, extractors: list[Extractor], shard_size: int) -> None:
    manifest = {
        "format_version": SHARD_FORMAT_VERSION,
        "corpus": corpus.name,
        "shard_size": shard_size,
        "extra_columns": sorted(corpus.extra_features),
        # Batch size changes speed, not features: a resumed run may pick another one.
        "extractors": [
            {
                "class": d["class"],
                "name": d["name"],
                "dim": d["dim"],
                "config": {k: v for k, v in d["config"].items() if k != "batch_size"},
            }
            for d in (ex.describe() for ex in extractors)
        ],
    }
    path = work_dir / "manifest.json"
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except json.JSONDecodeError:
            previous = None
        if previous != json.loads(json.dumps(manifest)):
            raise ValueError(
                f"{work_dir} holds shards of another extraction (corpus, extractors or shard size differ: "
                f"{previous} vs {manifest}); use another work dir or overwrite=True (--overwrite)."
            )
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, path)
    from mtaffect.output_folder import OutputFolder

    OutputFolder(work_dir, command="mtaffect extract (work dir)").record(["manifest.json"])


def _shard_fingerprint(shard: list[RawExample]) -> str:
    digest = hashlib.sha256()
    for example in shard:
        record = asdict(example)
        for key in ("audio", "video"):
            if record[key] is not None:
                record[f"{key}_stat"] = _file_stat(record[key])
        digest.update(json.dumps(record, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _file_stat(path: str) -> list[int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _marker(stem: Path) -> Path:
    return stem.with_name(stem.name + ".done.json")


def _shard_done(stem: Path, fingerprint: str) -> bool:
    marker = _marker(stem)
    if not marker.is_file() or not stem.with_suffix(".arrow").is_file():
        return False
    try:
        done = json.loads(marker.read_text())
    except json.JSONDecodeError:
        return False
    if done.get("fingerprint") != fingerprint:
        logger.info("%s: inputs changed since it was extracted; extracting it again.", stem.name)
        return False
    return True


def _extract_shard(
    stem: Path,
    fingerprint: str,
    shard: list[RawExample],
    extractors: list[Extractor],
    corpus: RawCorpus,
    info: CorpusInfo,
    features: Features,
    bar: Any,
) -> None:
    outputs: dict[str, list[Any]] = {}
    failures: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    failed: set[int] = set()
    for extractor in extractors:
        items = [example.input_for(extractor.modality) for example in shard]
        results: list[Any] = [None] * len(items)
        if extractor.modality == "text":
            # An empty transcript is a missing text modality (an empty sequence), not a failure:
            # the example keeps its labels and its other modalities.
            for i, item in enumerate(items):
                if isinstance(item, str) and not item.strip():
                    results[i] = np.zeros((0, int(extractor.dim)), dtype=np.float32)
                    missing.append({"id": shard[i].id, "split": shard[i].split, "modality": "text",
                                    "reason": "empty transcript"})
        todo = [i for i, item in enumerate(items) if item is not None and results[i] is None]
        for i, item in enumerate(items):
            if item is None:
                results[i] = ExtractionError(f"<{extractor.modality} of {shard[i].id}>", "no input file given")
        # Text extractors batch internally: give them the whole shard; media one file at a time.
        step = len(todo) if hasattr(extractor, "batch_size") else 1
        for start in range(0, len(todo), max(step, 1)):
            chunk = todo[start : start + step]
            for i, result in zip(chunk, extractor.extract_safe([items[i] for i in chunk])):
                results[i] = result
            bar.update(len(chunk))
        bar.update(len(items) - len(todo))
        for i, result in enumerate(results):
            if isinstance(result, ExtractionError):
                failed.add(i)
                failures.append(
                    {
                        "id": shard[i].id,
                        "split": shard[i].split,
                        "modality": extractor.modality,
                        "extractor": extractor.name,
                        "input": result.item,
                        "error": result.reason,
                    }
                )
        outputs[extractor.modality] = results
    keep = [i for i in range(len(shard)) if i not in failed]
    columns: dict[str, Any] = {
        "id": [shard[i].id for i in keep],
        "source": [corpus.name] * len(keep),
        "feature_set": [info.feature_set] * len(keep),
        "text": [shard[i].text for i in keep],
        "speaker": [shard[i].speaker for i in keep],
    }
    for extractor in extractors:
        columns[feature_column(extractor.modality)] = _sequence_array(
            [outputs[extractor.modality][i] for i in keep], extractor.dim
        )
    defaults = unknown_labels()
    labels = [{**defaults, **shard[i].labels} for i in keep]
    for name in defaults:
        columns[name] = [row[name] for row in labels]
    for name in corpus.extra_features:
        columns[name] = [shard[i].extra.get(name) for i in keep]

    arrow_path = stem.with_suffix(".arrow")
    tmp = stem.with_suffix(".arrow.tmp")
    writer = ArrowWriter(features=features, path=str(tmp))
    if keep:
        writer.write_batch(columns)
    writer.finalize()
    os.replace(tmp, arrow_path)
    marker = {"fingerprint": fingerprint, "rows": len(keep), "failures": failures,
              "missing": [entry for entry in missing if entry["id"] in {shard[i].id for i in keep}]}
    tmp_marker = _marker(stem).with_suffix(".tmp")
    tmp_marker.write_text(json.dumps(marker, ensure_ascii=False))
    os.replace(tmp_marker, _marker(stem))


def _sequence_array(sequences: list[np.ndarray], dim: int) -> pa.Array:
    """``Array2D(shape=(None, dim), float32)`` column built from offsets and one flat buffer.

    Much faster than letting Arrow infer nested lists from Python (token-level MELD is ~80M
    floats).
    """
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    total = int(lengths.sum())
    flat = (
        np.concatenate([np.asarray(s, dtype=np.float32).reshape(-1) for s in sequences])
        if total
        else np.zeros(0, dtype=np.float32)
    )
    inner = pa.ListArray.from_arrays(pa.array(np.arange(total + 1, dtype=np.int32) * dim), pa.array(flat))
    offsets = np.zeros(len(sequences) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    outer = pa.ListArray.from_arrays(pa.array(offsets), inner)
    return pa.ExtensionArray.from_storage(Array2DExtensionType((None, dim), "float32"), outer)


def _dataset_info(features: Features, info: CorpusInfo) -> DatasetInfo:
    return DatasetInfo(features=features.copy(), description=info.to_json())


def _open_shard(stem: Path, features: Features, info: CorpusInfo, split: str) -> Dataset:
    return Dataset.from_file(
        str(stem.with_suffix(".arrow")), info=_dataset_info(features, info), split=NamedSplit(split)
    )


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _log_failures(name: str, failures: list[dict[str, Any]], path: Path) -> None:
    if not failures:
        return
    for failure in failures[:_MAX_LOGGED_FAILURES]:
        logger.warning(
            "%s: skipped %s/%s (%s): %s: %s",
            name, failure["split"], failure["id"], failure["modality"], failure["input"], failure["error"],
        )
    if len(failures) > _MAX_LOGGED_FAILURES:
        logger.warning("%s: ... and %d more failures.", name, len(failures) - _MAX_LOGGED_FAILURES)
    logger.warning("%s: %d input(s) failed; every failure is listed in %s.", name, len(failures), path)
