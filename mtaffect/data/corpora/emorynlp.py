"""EmoryNLP (Zahiri & Choi, 2018): ``emorynlp_{train,dev,test}_final.csv`` + features.

Columns: ``Utterance, Speaker, Emotion, Scene_ID, Utterance_ID, Season, Episode, Start_Time,
End_Time``; ``Speaker`` is a Python-style list (``['Rachel Green']``). An utterance's id is
``s<Season>_e<Episode>_c<Scene_ID>_u<Utterance_ID>``.

Labels: emotion only, single-label, in EmoryNLP's own 7-class set (``emotion/emorynlp``:
Joyful, Mad, Neutral, Peaceful, Powerful, Sad, Scared — Willcox's feeling wheel). Five of them
are union names MELD shares (Joyful = happiness, Mad = anger, Sad = sadness, Scared = fear,
Neutral); Peaceful and Powerful are EmoryNLP's own, so its rows train a head of their own and
convert to MELD's set only through the five shared labels.

Features: as MELD (``features=`` files keyed ``train/<id>`` or one file per split, or text
features extracted with ``mtaffect.data.extract.TextExtractor`` when ``features`` is omitted).
Extra columns: ``season``, ``episode``, ``scene_id``, ``utterance_id``.
"""

from __future__ import annotations

import ast
import csv
import io
import logging
from pathlib import Path
from typing import Any

from datasets import Value

from mtaffect.data.corpora.base import CorpusPlan, batched, unique_ids
from mtaffect.data.corpora.errors import CorpusFormatError
from mtaffect.data.corpora.meld import repair_text
from mtaffect.data.corpora.registry import register_corpus
from mtaffect.data.corpora.user_features import (
    FeatureProvider,
    kept_batches,
    make_text_extractor,
    open_feature_sources,
)
from mtaffect.data.schema import CorpusInfo
from mtaffect.tasks import EMOTION_LABELS, label_space

logger = logging.getLogger(__name__)

#: Unified split -> (EmoryNLP's split name, CSV file).
EMORYNLP_FILES: dict[str, tuple[str, str]] = {
    "train": ("train", "emorynlp_train_final.csv"),
    "validation": ("dev", "emorynlp_dev_final.csv"),
    "test": ("test", "emorynlp_test_final.csv"),
}
REQUIRED_COLUMNS: tuple[str, ...] = ("Utterance", "Speaker", "Emotion", "Scene_ID", "Utterance_ID", "Season", "Episode")
#: EmoryNLP's label space.
EMORYNLP_SPACE = "emotion/emorynlp"
_BATCH = 256

OPTIONS = {
    "features": "folder or {modality: file | {split: file}} of per-utterance features; None = extract text",
    "transpose": "modalities whose files store [D, T]",
    "missing_features": "'error' (default) or 'drop' utterances absent from a feature file",
    "extract_text": "None = extract text features only when features is None; True/False forces it",
    "extractor": "options passed to mtaffect.data.extract.TextExtractor",
    "feature_set": "feature-set name (default: the extractor's name or emorynlp-user-<dims>)",
}


def _speaker(value: str) -> str:
    """``"['Rachel Green']"`` -> ``"Rachel Green"`` (several speakers joined by ", ")."""
    text = value.strip()
    if text.startswith("["):
        try:
            names = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(names, (list, tuple)):
            return ", ".join(str(name) for name in names)
    return text


def read_emorynlp_csv(file: Path) -> list[dict[str, Any]]:
    """Rows of one EmoryNLP CSV with checked, typed fields (emotion as its label index)."""
    space = label_space(EMORYNLP_SPACE)
    lookup = {label.lower(): i for i, label in enumerate(space.labels)}
    try:
        content = file.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise CorpusFormatError(file, f"cannot be read ({error.strerror or error}).") from None
    except UnicodeDecodeError:
        content = file.read_bytes().decode("latin-1")
        logger.warning("%s is not UTF-8; read as Windows-1252.", file)
    try:
        reader = csv.DictReader(io.StringIO(content, newline=""))
        header = [name.strip() for name in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise CorpusFormatError(file, f"lacks the column(s) {missing} (header: {header}); is this EmoryNLP's CSV?")
        reader.fieldnames = header
        records = list(reader)
    except csv.Error as error:
        raise CorpusFormatError(file, f"not a readable CSV ({error}).") from None
    rows = []
    for line, record in enumerate(records, start=2):
        if None in record or any(record.get(c) is None for c in REQUIRED_COLUMNS):
            raise CorpusFormatError(file, f"line {line} has another number of fields than the header.")
        try:
            season, episode = int(record["Season"]), int(record["Episode"])
            scene, utterance = int(record["Scene_ID"]), int(record["Utterance_ID"])
        except ValueError:
            raise CorpusFormatError(file, f"line {line}: Season, Episode, Scene_ID and Utterance_ID must be integers.") from None
        emotion = record["Emotion"].strip().lower()
        if emotion not in lookup:
            raise CorpusFormatError(
                file, f"line {line}: unknown emotion {record['Emotion']!r} (EmoryNLP uses {', '.join(space.labels)})."
            )
        rows.append(
            {
                "id": f"s{season:02d}_e{episode:02d}_c{scene:02d}_u{utterance:03d}",
                "text": repair_text(record["Utterance"]),
                "speaker": _speaker(record["Speaker"]),
                "emotion": lookup[emotion],
                "season": season,
                "episode": episode,
                "scene_id": scene,
                "utterance_id": utterance,
            }
        )
    if not rows:
        raise CorpusFormatError(file, "has a header but no utterances.")
    return rows


def looks_like_emorynlp(path: Path) -> bool:
    names = {name for _, name in EMORYNLP_FILES.values()}
    return path.name in names if path.is_file() else any((path / name).is_file() for name in names)


def _load_emorynlp(
    path: Path,
    features: Any = None,
    transpose: Any = None,
    missing_features: str = "error",
    extract_text: bool | None = None,
    extractor: dict[str, Any] | None = None,
    feature_set: str | None = None,
) -> CorpusPlan:
    folder = path if path.is_dir() else path.parent
    splits = {}
    for split, (_, name) in EMORYNLP_FILES.items():
        file = folder / name
        if not file.is_file():
            raise CorpusFormatError(
                folder, f"missing {name} (EmoryNLP needs {', '.join(n for _, n in EMORYNLP_FILES.values())})."
            )
        splits[split] = read_emorynlp_csv(file)
    if extract_text is None:
        extract_text = features is None
    aliases = {own: split for split, (own, _) in EMORYNLP_FILES.items()}
    sources = open_feature_sources(features, folder, transpose, split_aliases=aliases)
    text_extractor = make_text_extractor(extractor, folder) if extract_text else None
    provider = FeatureProvider(sources, text_extractor, missing_features, folder)
    space = label_space(EMORYNLP_SPACE)
    info = CorpusInfo(
        corpus="emorynlp",
        feature_set=feature_set or provider.default_feature_set("emorynlp"),
        dims=provider.dims,
        tasks=["emotion"],
        emotion_labels=list(space.labels),
        label_spaces={"emotion": EMORYNLP_SPACE},
        extractors=provider.extractors(),
        notes={
            "format": "emorynlp",
            "split_names": {"validation": "dev"},
            "split_sizes_before_drops": {k: len(v) for k, v in splits.items()},
        },
    )
    extra = {name: Value("int64") for name in ("season", "episode", "scene_id", "utterance_id")}
    batches = kept_batches(provider, info.notes, "EmoryNLP", _batches(splits, provider, folder))
    return CorpusPlan(info, list(splits), batches, folder, extra)


def _batches(splits: dict[str, list[dict[str, Any]]], provider: FeatureProvider, folder: Path):
    space = label_space(EMORYNLP_SPACE)
    mask = space.union_mask()
    position = space.union_index()
    width = len(EMOTION_LABELS)
    for split, rows in splits.items():
        own = EMORYNLP_FILES[split][0]
        ids = unique_ids([r["id"] for r in rows], folder / EMORYNLP_FILES[split][1], split)
        for part in batched(len(rows), _BATCH):
            chunk, chunk_ids = rows[part], ids[part]
            keys = [[f"{own}/{i}", f"{split}/{i}", i] for i in chunk_ids]
            columns, keep = provider.fill(split, keys, [r["text"] for r in chunk])
            emotion = []
            for r in chunk:
                vector = [0.0] * width
                vector[position[r["emotion"]]] = 1.0
                emotion.append(vector)
            yield split, {
                "id": chunk_ids,
                "text": [r["text"] for r in chunk],
                "speaker": [r["speaker"] for r in chunk],
                "emotion": emotion,
                "emotion_mask": [mask] * len(chunk),
                "emotion_multilabel": [False] * len(chunk),
                **{name: [r[name] for r in chunk] for name in ("season", "episode", "scene_id", "utterance_id")},
                **columns,
            }, keep


register_corpus(
    "emorynlp",
    "emorynlp",
    detect=looks_like_emorynlp,
    description="EmoryNLP: the three emorynlp_*_final.csv files; 7 single-label emotions of its own (Peaceful, Powerful...), features user-supplied or extracted",
    options=OPTIONS,
)(_load_emorynlp)
