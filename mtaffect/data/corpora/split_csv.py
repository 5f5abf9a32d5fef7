"""Corpora published as one CSV of utterances per split: MELD and EmoryNLP (the Friends corpora).

Both are read the same way, here: each split's CSV is decoded (UTF-8, else Windows-1252, with
``repair_text`` undoing the encoding accidents of the releases), its header checked for the
columns the corpus needs, every line for its number of fields, and each record handed to the
corpus' own ``parse`` for typed, checked fields. Features are the user's files (keyed
``<own split>/<id>``, ``<split>/<id>`` or ``<id>``) or text features extracted from the
utterances. What differs stays with each corpus (``SplitCsvCorpus``): its file names, columns,
ids, label spaces and extra columns (``mtaffect.data.corpora.meld``, ``...emorynlp``).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtaffect.data.context import ContextOptions, batches_with_context, context_features
from mtaffect.data.corpora.base import CorpusPlan, batched, unique_ids
from mtaffect.data.corpora.encoding import decode_text
from mtaffect.data.corpora.errors import CorpusFormatError
from mtaffect.data.corpora.user_features import FeatureProvider, kept_batches, text_feature_provider
from mtaffect.data.raw import split_files
from mtaffect.data.schema import CorpusInfo
from mtaffect.tasks import EMOTION_LABELS, SENTIMENT_CLASS_SCORES, SENTIMENT_CLASSES, label_space

logger = logging.getLogger(__name__)

_BATCH = 256
_C1 = {code: bytes([code]).decode("cp1252") for code in range(0x80, 0xA0) if code not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}

#: A record's parser: ``(record, line) -> typed row`` with ``id``, ``text``, ``speaker``,
#: ``emotion`` (the label's index in the corpus' emotion space), ``sentiment`` (a polarity
#: class, where the corpus has sentiment) and the corpus' extra columns; raises
#: ``ValueError`` saying what is wrong with the line (the reader names the file).
RowParser = Callable[[Mapping[str, str], int], dict[str, Any]]


def repair_text(text: str) -> str:
    """Undo the two encoding accidents found in MELD releases; leave anything else alone.

    C1 control characters (the ``\\x92`` of some releases, a Windows-1252 quote that went
    through Latin-1) and UTF-8-read-as-1252 mojibake (``â€™``) are repaired, so an utterance
    keeps its apostrophes.

    Examples:
        >>> repair_text("You\\x92re") == "You\\u2019re", repair_text("Youâ€™re") == "You\\u2019re"
        (True, True)
    """
    if any("\x80" <= ch <= "\x9f" for ch in text):
        text = text.translate(_C1)
    if "â€" in text or "Ã" in text:
        try:
            text = text.encode("cp1252").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return text


def read_split_csv(file: Path, columns: tuple[str, ...], parse: RowParser, hint: str = "") -> list[dict[str, Any]]:
    """The rows of one split's CSV, each parsed by ``parse``; one ``CorpusFormatError`` naming the line.

    Args:
        file: the CSV.
        columns: the columns the corpus needs (others are ignored).
        parse: the corpus' record parser (``RowParser``).
        hint: appended to the missing-columns message (``"; is this EmoryNLP's CSV?"``).
    """
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise CorpusFormatError(file, f"cannot be read ({error.strerror or error}).") from None
    # Latin-1 decodes every byte; C1 characters are repaired per field (repair_text).
    content = decode_text(raw, file, fallback="latin-1")
    try:
        reader = csv.DictReader(io.StringIO(content, newline=""))
        header = [name.strip() for name in (reader.fieldnames or [])]
        missing = [c for c in columns if c not in header]
        if missing:
            raise CorpusFormatError(file, f"lacks the column(s) {missing} (header: {header}){hint}.")
        reader.fieldnames = header
        records = list(reader)
    except csv.Error as error:
        raise CorpusFormatError(file, f"not a readable CSV ({error}).") from None
    rows = []
    for line, record in enumerate(records, start=2):
        if None in record:
            raise CorpusFormatError(file, f"line {line} has more fields than the header.")
        if any(record.get(c) is None for c in columns):
            raise CorpusFormatError(file, f"line {line} has fewer fields than the header.")
        try:
            row = parse(record, line)
        except ValueError as error:
            raise CorpusFormatError(file, f"line {line}: {error}") from None
        row.setdefault("line", line)  # where empty transcripts are reported
        rows.append(row)
    if not rows:
        raise CorpusFormatError(file, "has a header but no utterances.")
    return rows


#: ``CorpusInfo.notes`` key: split -> how many utterances had an empty transcript (their text a
#: missing modality). ``mtaffect data describe`` lists it.
EMPTY_TRANSCRIPTS = "empty_transcripts"
#: Empty transcripts reported one by one per file; the rest are counted.
_SHOWN_EMPTY = 10


def report_empty_transcripts(title: str, splits: Mapping[str, tuple[Path, list[dict[str, Any]]]]) -> dict[str, int]:
    """Warn about each utterance with an empty transcript (file, line, id); split -> count.

    An empty transcript is not an error: the utterance keeps its labels and other modalities,
    and its text is a missing modality (an empty text sequence, for which the model substitutes
    its learned missing-modality embedding), as the pretrained-encoders guide says.
    """
    counts: dict[str, int] = {}
    for split, (file, rows) in splits.items():
        empty = [row for row in rows if not str(row.get("text") or "").strip()]
        for row in empty[:_SHOWN_EMPTY]:
            logger.warning("%s line %s (id %s): empty transcript; its text is a missing modality.",
                           file, row.get("line", "?"), row["id"])
        if len(empty) > _SHOWN_EMPTY:
            logger.warning("%s: %d more empty transcripts (%d in all).", file, len(empty) - _SHOWN_EMPTY, len(empty))
        if empty:
            counts[split] = len(empty)
    if counts:
        logger.warning("%s: %s utterance(s) with an empty transcript are kept with their text missing (%s).",
                       title, sum(counts.values()), ", ".join(f"{split} {n}" for split, n in counts.items()))
    return counts


@dataclass(frozen=True)
class SplitCsvCorpus:
    """What one CSV-per-split corpus is: its files, columns, parser, label spaces and extra columns.

    Args:
        name: the format and ``CorpusInfo.corpus`` name (``"meld"``).
        title: the corpus as messages name it (``"MELD"``).
        files: unified split -> (the corpus' own split name, CSV file name).
        columns: the columns ``parse`` reads.
        parse: the corpus' ``RowParser``.
        spaces: task -> label-space key (``{"emotion": "emotion/meld", ...}``); emotion is
            single-label, sentiment (where present) polarity classes.
        extra_features: the corpus' extra columns and their ``datasets`` types.
        notes: what ``CorpusInfo.notes`` says of every load (besides the split sizes).
        hint: appended to the missing-columns message.
        dialogue: a parsed row's ``(dialogue key, turn order)``, which gives each utterance its
            conversational context (``mtaffect.data.context``) when a load asks for it.
    """

    name: str
    title: str
    files: Mapping[str, tuple[str, str]]
    columns: tuple[str, ...]
    parse: RowParser
    spaces: Mapping[str, str]
    extra_features: Mapping[str, Any] = field(default_factory=dict)
    notes: Mapping[str, Any] = field(default_factory=dict)
    hint: str = ""
    dialogue: Callable[[Mapping[str, Any]], tuple[Hashable, Any]] | None = None

    @property
    def tasks(self) -> list[str]:
        return list(self.spaces)

    @property
    def emotion_labels(self) -> list[str]:
        return list(label_space(self.spaces["emotion"]).labels)

    def read(self, file: Path) -> list[dict[str, Any]]:
        """The typed rows of one of the corpus' CSVs."""
        return read_split_csv(file, self.columns, self.parse, self.hint)

    def looks_like(self, path: Path) -> bool:
        names = {name for _, name in self.files.values()}
        return path.name in names if path.is_file() else any((path / name).is_file() for name in names)

    def split_files(self, folder: Path, required: bool, error: Callable[[Path, str], Exception]) -> dict[str, Path]:
        """The corpus' CSVs in ``folder``, by unified split (``raw.split_files``)."""
        names = {split: name for split, (_, name) in self.files.items()}
        return split_files(folder, names, required=required, what=self.title, error=error)

    def label_columns(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A parsed row's gold labels as unified-schema columns (emotion one-hot over the union)."""
        space = label_space(self.spaces["emotion"])
        vector = [0.0] * len(EMOTION_LABELS)
        vector[space.union_index()[row["emotion"]]] = 1.0
        labels: dict[str, Any] = {"emotion": vector, "emotion_mask": space.union_mask(), "emotion_multilabel": False}
        if "sentiment" in self.spaces:
            labels.update({
                "sentiment": SENTIMENT_CLASS_SCORES[row["sentiment"]], "sentiment_mask": True,
                "sentiment_class": row["sentiment"], "sentiment_num_classes": len(SENTIMENT_CLASSES),
            })
        return labels

    def load(
        self,
        path: Path,
        features: Any = None,
        transpose: Any = None,
        missing_features: str = "error",
        extract_text: bool | None = None,
        extractor: dict[str, Any] | None = None,
        feature_set: str | None = None,
        limit: int | None = None,
        context: Any = None,
    ) -> CorpusPlan:
        """The loader registered for the corpus (its options: ``feature_options``, plus ``context``).

        ``context={"past": K, "future": J}`` adds each utterance's K preceding and J following
        turns of its dialogue (same split) as context columns (``mtaffect.data.context``); the
        split is then held in memory until its context features are gathered.
        """
        options = ContextOptions.from_value(context)
        if options.enabled and self.dialogue is None:
            raise ValueError(f"{self.title} has no dialogue structure to take context from.")
        folder = path if path.is_dir() else path.parent
        files = self.split_files(folder, required=True, error=CorpusFormatError)
        splits = {split: self.read(file)[:limit] for split, file in files.items()}
        empty = report_empty_transcripts(self.title, {split: (files[split], rows) for split, rows in splits.items()})
        aliases = {own: split for split, (own, _) in self.files.items()}
        provider = text_feature_provider(features, folder, transpose, missing_features, extract_text, extractor, aliases)
        info = CorpusInfo(
            corpus=self.name,
            feature_set=feature_set or provider.default_feature_set(self.name),
            dims=provider.dims,
            tasks=self.tasks,
            emotion_labels=self.emotion_labels,
            label_spaces=dict(self.spaces),
            extractors=provider.extractors(),
            notes={**self.notes, "split_sizes_before_drops": {k: len(v) for k, v in splits.items()},
                   **({EMPTY_TRANSCRIPTS: empty} if empty else {})},
        )
        extra = dict(self.extra_features)
        batches = self._batches(splits, files, provider)
        if options.enabled:
            info.notes["context"] = {**options.to_dict(), "source": "dialogue order within each split"}
            extra.update(context_features(provider.dims))
            turns = {split: [self.dialogue(row) for row in rows] for split, rows in splits.items()}
            batches = batches_with_context(batches, splits, turns, options, provider.dims)
        batches = kept_batches(provider, info.notes, self.title, batches)
        return CorpusPlan(info, list(splits), batches, folder, extra, rows=sum(map(len, splits.values())))

    def _batches(
        self, splits: dict[str, list[dict[str, Any]]], files: dict[str, Path], provider: FeatureProvider
    ) -> Iterator[tuple[str, dict[str, list[Any]], list[bool]]]:
        for split, rows in splits.items():
            own = self.files[split][0]
            ids = unique_ids([r["id"] for r in rows], files[split], split)
            for part in batched(len(rows), _BATCH):
                chunk, chunk_ids = rows[part], ids[part]
                keys = [[f"{own}/{i}", f"{split}/{i}", i] for i in chunk_ids]
                columns, keep = provider.fill(split, keys, [r["text"] for r in chunk])
                labels = [self.label_columns(r) for r in chunk]
                batch: dict[str, Any] = {
                    "id": chunk_ids,
                    "text": [r["text"] for r in chunk],
                    "speaker": [r["speaker"] for r in chunk],
                    **{name: [row[name] for row in labels] for name in labels[0]},
                    **{name: [r[name] for r in chunk] for name in self.extra_features},
                    **columns,
                }
                yield split, batch, keep
