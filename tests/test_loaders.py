"""Corpus loaders: tiny files in each published format, built here, must come through exactly.

The builders below (``write_mmsa``, ``write_mult``, ``write_csd``, ``write_mustard``,
``write_meld``) are reused by ``test_malformed_inputs.py``.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
import types
from pathlib import Path

import h5py
import numpy as np
import pytest
from datasets import load_from_disk

from mtaffect.data.corpora import (
    CorpusFormatError,
    UnsafePickleError,
    combine_corpora,
    detect_format,
    list_corpora,
    load_corpus,
)
from mtaffect.data.corpora.safe_pickle import load_pickle
from mtaffect.data.schema import get_corpus_info, validate_corpus
from mtaffect.tasks import EMOTION_LABELS, emotion_index

# --------------------------------------------------------------------------------------
# Builders of files in the published formats.


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def mmsa_split(n: int, seed: int, aligned: bool, dims=(8, 3, 4), length=6, corpus="mosei") -> dict:
    """One MMSA split: BERT text padded at the end, audio/vision with *_lengths (unaligned)."""
    rng = _rng(seed)
    la, lv = (length, length) if aligned else (length + 4, length + 2)
    split = {
        "id": np.array([f"video{seed}_{i // 2}$_${i % 2}" for i in range(n)], dtype=object),
        "raw_text": np.array([f"utterance {seed}-{i}" for i in range(n)]),
        "text": np.zeros((n, length, dims[0]), np.float32),
        "text_bert": np.zeros((n, 3, length), np.float32),
        "audio": np.zeros((n, la, dims[1]), np.float32),
        "vision": np.zeros((n, lv, dims[2]), np.float32),
        "annotations": np.array(["Positive"] * n),
        "classification_labels": np.zeros(n, np.float32),
    }
    low, high = (-1.0, 1.0) if corpus == "sims" else (-3.0, 3.0)
    split["regression_labels"] = np.round(np.linspace(low, high, n), 4).astype(np.float32)
    text_lengths = 2 + np.arange(n) % (length - 1)
    for i in range(n):
        split["text_bert"][i, 0, : text_lengths[i]] = 100 + np.arange(text_lengths[i])
        split["text_bert"][i, 1, : text_lengths[i]] = 1
        split["text"][i, : text_lengths[i]] = rng.normal(size=(text_lengths[i], dims[0]))
    if aligned:
        # CMU-SDK-derived aligned releases pad audio/vision at the start.
        for i in range(n):
            real = 1 + i % length
            split["audio"][i, length - real :] = rng.normal(size=(real, dims[1])) + 5
            split["vision"][i, length - real :] = rng.normal(size=(real, dims[2])) + 5
    else:
        split["audio_lengths"] = [int(1 + i % la) for i in range(n)]
        split["vision_lengths"] = np.array([int(1 + (i * 3) % lv) for i in range(n)])
        for i in range(n):
            split["audio"][i, : split["audio_lengths"][i]] = rng.normal(size=(split["audio_lengths"][i], dims[1])) + 5
            split["vision"][i, : split["vision_lengths"][i]] = rng.normal(size=(split["vision_lengths"][i], dims[2])) + 5
    if corpus == "sims":
        for key in "TAV":
            split[f"regression_labels_{key}"] = np.round(np.linspace(high, low, n), 4).astype(np.float32)
    return split


def write_mmsa(folder: Path, corpus="mosei", aligned=False, sizes=(6, 2, 3), name=None, config=False, **kw) -> tuple[Path, dict]:
    data = {
        split: mmsa_split(n, seed, aligned, corpus=corpus, **kw)
        for seed, (split, n) in enumerate(zip(("train", "valid", "test"), sizes))
    }
    if config:
        data["config"] = {"audio": {"tool": "librosa"}, "video": {"tool": "openface"}, "text": {"model": "bert"}}
    path = folder / (name or ("aligned_50.pkl" if aligned else "unaligned_50.pkl"))
    folder.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=4)
    return path, data


def mult_split(n: int, seed: int, aligned: bool, iemocap=False, dims=(5, 3, 4), length=5, bytes_ids=True, with_id=True) -> dict:
    """One MulT split: features zero-padded at the start, -inf in audio, ids as (video, start, end) bytes."""
    rng = _rng(seed + 10)
    lengths = (length, length, length) if aligned else (length, length + 3, length + 1)
    split = {key: np.zeros((n, L, d), np.float32) for key, L, d in zip(("text", "audio", "vision"), lengths, dims)}
    for i in range(n):
        real = 1 + i % length
        if aligned:
            for key, d in zip(("text", "audio", "vision"), dims):
                split[key][i, length - real :] = rng.normal(size=(real, d)) + 3
        else:
            for key, L, d in zip(("text", "audio", "vision"), lengths, dims):
                r = min(L, real + (1 if key != "text" else 0))
                split[key][i, L - r :] = rng.normal(size=(r, d)) + 3
    split["audio"][0, -1, 0] = -np.inf
    split["audio"][0, -1, 1] = np.nan
    if iemocap:
        labels = np.zeros((n, 4, 2), np.float32)
        labels[:, :, 0] = 1
        for i in range(n):
            labels[i, i % 4] = (0, 1)
        split["labels"] = labels
    else:
        split["labels"] = np.round(np.linspace(-3, 3, n), 3).astype(np.float32).reshape(n, 1, 1)
    if with_id:
        rows = [[f"vid{seed}", f"{i}", f"{i + 1}"] for i in range(n)]
        split["id"] = np.array([[x.encode() for x in r] for r in rows]) if bytes_ids else np.array(rows)
    return split


def write_mult(folder: Path, corpus="mosei", aligned=True, sizes=(5, 2, 3), **kw) -> tuple[Path, dict]:
    stem = {"mosi": "mosi", "mosei": "mosei_senti", "iemocap": "iemocap"}[corpus]
    data = {
        split: mult_split(n, seed, aligned, iemocap=corpus == "iemocap", **kw)
        for seed, (split, n) in enumerate(zip(("train", "valid", "test"), sizes))
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"{stem}_data.pkl" if aligned else f"{stem}_data_noalign.pkl")
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=2)
    return path, data


def write_csd(path: Path, root: str, videos: dict[str, tuple[np.ndarray, np.ndarray]], text=False) -> Path:
    """A computational sequence as the SDK writes it: <root>/data/<video>/{features, intervals}, <root>/metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        group = f.create_group(root)
        data = group.create_group("data")
        for video, (features, intervals) in videos.items():
            v = data.create_group(video)
            v.create_dataset("features", data=features)
            v.create_dataset("intervals", data=intervals)
        metadata = group.create_group("metadata")
        string = h5py.special_dtype(vlen=str)
        for key, value in {"root name": root, "computational sequence version": "1.0"}.items():
            metadata.create_dataset(key, (1,), dtype=string)[0] = value
    return path


def frames(t: int, step: float, dim: int, offset: float) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(t) * step
    features = (np.arange(t * dim, dtype=np.float32).reshape(t, dim) + offset).astype(np.float32)
    return features, np.stack([starts, starts + step], 1)


def write_sdk_mosei(folder: Path, with_folds=True) -> dict:
    """Three videos, two label segments each; the labels include a row of zeros (MOSEI zeros)."""
    labels, text, audio, visual, words = {}, {}, {}, {}, {}
    segments = np.array([[0.0, 1.0], [1.0, 2.0]])
    for v, video in enumerate(("vidA", "vidB", "vidC")):
        rows = np.array(
            [
                [1.5, 2.0, 0.0, 0.0, 0.333, 0.0, 0.0],  # happy + surprise
                [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # sentiment 0, no emotion: still gold
            ],
            np.float32,
        )
        rows[0, 0] -= v  # sentiments 1.5, 0.5, -0.5
        labels[video] = (rows, segments)
        text[video] = frames(4, 0.5, 3, 100 * v)
        audio[video] = frames(20, 0.1, 2, 1000 * v)
        visual[video] = frames(8, 0.25, 2, 10000 * v)
        words[video] = (np.array([[b"hello"], [b"sp"], [b"world"], [b"again"]]), text[video][1])
    audio["vidA"][0][3, 1] = -np.inf
    write_csd(folder / "CMU_MOSEI_Labels.csd", "All Labels", labels)
    write_csd(folder / "CMU_MOSEI_TimestampedWordVectors.csd", "glove_vectors", text)
    write_csd(folder / "CMU_MOSEI_COVAREP.csd", "COVAREP", audio)
    write_csd(folder / "CMU_MOSEI_VisualFacet42.csd", "FACET 4.2", visual)
    write_csd(folder / "CMU_MOSEI_TimestampedWords.csd", "words", words)
    if with_folds:
        (folder / "folds.json").write_text(json.dumps({"train": ["vidA"], "valid": ["vidB"], "test": ["vidC"]}))
    return {"labels": labels, "text": text, "audio": audio, "visual": visual}


MUSTARD_SHOWS = ("FRIENDS", "BBT", "GOLDENGIRLS", "SARCASMOHOLICS")


def write_mustard(folder: Path, n=20, folds=5) -> dict:
    data = {}
    for i in range(n):
        data[f"{i}_{100 + i}"] = {
            "utterance": f"utterance {i}",
            "speaker": f"SPEAKER{i % 3}",
            "context": [f"context {i}a", f"context {i}b"],
            "context_speakers": ["A", "B"],
            "show": MUSTARD_SHOWS[i % 4],
            "sarcasm": bool(i % 2),
        }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sarcasm_data.json").write_text(json.dumps(data, indent=2))
    order = np.arange(n)
    splits = [(np.setdiff1d(order, order[k::folds]), order[k::folds]) for k in range(folds)]
    with open(folder / "split_indices.p", "wb") as f:
        pickle.dump(splits, f, protocol=2)  # as the Python 2 original
    return data


MELD_HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"


def write_meld(folder: Path) -> dict[str, list[tuple]]:
    rows = {
        "train": [
            ("You\u2019re kidding, right?", "Chandler", "surprise", "positive", 0, 0),
            ('"Well, no", she said', "Monica", "joy", "positive", 0, 1),
            ("Oh.", "Ross", "sadness", "negative", 1, 0),
            ("Fine", "Joey", "neutral", "neutral", 1, 1),
        ],
        "dev": [("Get out!", "Rachel", "anger", "negative", 0, 0), ("Ew.", "Phoebe", "disgust", "negative", 0, 1)],
        "test": [("Ahh!", "Ross", "fear", "negative", 0, 0)],
    }
    folder.mkdir(parents=True, exist_ok=True)
    for split, items in rows.items():
        lines = [MELD_HEADER]
        for k, (text, speaker, emotion, sentiment, d, u) in enumerate(items, start=1):
            quoted = '"' + text.replace('"', '""') + '"'
            lines.append(f'{k},{quoted},{speaker},{emotion},{sentiment},{d},{u},8,21,"00:16:16,059","00:16:21,731"\n')
        # cp1252 bytes, like the releases whose apostrophes show up as \x92
        (folder / f"{split}_sent_emo.csv").write_bytes("".join(lines).encode("cp1252"))
    return rows


def digest(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def rows(dataset, *columns):
    table = dataset.select_columns(list(columns)).with_format("numpy")[:]
    return [table[c] for c in columns] if len(columns) > 1 else table[columns[0]]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


# --------------------------------------------------------------------------------------
# MMSA


def test_mmsa_unaligned_lengths_ids_and_labels(tmp_path, cache):
    path, data = write_mmsa(tmp_path / "MOSEI", corpus="mosei")
    data["train"]["audio"][0, 0, 1] = -np.inf  # inside the real length: replaced and counted
    data["train"]["audio"][0, 5, 1] = np.nan  # in the padding: cut away, not counted
    with open(path, "wb") as f:
        pickle.dump(data, f)
    before = digest(tmp_path / "MOSEI")
    corpus = load_corpus("mosei", tmp_path / "MOSEI", cache_dir=cache)
    assert digest(tmp_path / "MOSEI") == before  # source files are only read
    assert list(corpus) == ["train", "validation", "test"]
    assert [corpus[s].num_rows for s in corpus] == [6, 2, 3]
    validate_corpus(corpus)
    info = get_corpus_info(corpus)
    assert info.corpus == "mosei" and info.feature_set == "mmsa-mosei-unaligned"
    assert info.dims == {"text": 8, "audio": 3, "visual": 4} and info.tasks == ["sentiment"]
    assert info.replaced_nonfinite == 1 and info.notes["aligned"] is False
    train = corpus["train"].with_format("numpy")
    for i in range(6):
        row, src = train[i], data["train"]
        assert row["id"] == src["id"][i] and "$_$" in row["id"] and row["text"] == src["raw_text"][i]
        n_text = int(src["text_bert"][i, 1].sum())
        np.testing.assert_array_equal(row["text_features"], src["text"][i, :n_text])
        expected_audio = np.nan_to_num(src["audio"][i, : src["audio_lengths"][i]], neginf=0.0)
        np.testing.assert_array_equal(row["audio_features"], expected_audio)
        np.testing.assert_array_equal(row["visual_features"], src["vision"][i, : src["vision_lengths"][i]])
        assert row["sentiment"] == pytest.approx(src["regression_labels"][i]) and row["sentiment_mask"]
        assert row["sentiment_class"] == -1 and not row["emotion_mask"].any() and not row["sarcasm_mask"]
    assert rows(corpus["train"], "source")[0] == "mosei"


def test_mmsa_aligned_trims_padding_at_both_ends_and_zero_length(tmp_path, cache):
    path, data = write_mmsa(tmp_path, corpus="mosi", aligned=True, config=True)
    data["test"]["audio"][1] = 0  # an all-padding sequence keeps one frame
    with open(path, "wb") as f:
        pickle.dump(data, f)
    corpus = load_corpus("mosi", path, cache_dir=cache)
    info = get_corpus_info(corpus)
    assert info.feature_set == "mmsa-mosi-aligned" and info.notes["aligned"] is True
    assert info.notes["empty_sequences"] == {"test": {"text": 0, "audio": 1, "visual": 0}}
    assert info.notes["mmsa_fet_config"]["audio"]["tool"] == "librosa"
    train = corpus["train"].with_format("numpy")
    for i in range(6):
        real = 1 + i % 6
        np.testing.assert_array_equal(train[i]["audio_features"], data["train"]["audio"][i, 6 - real :])
        np.testing.assert_array_equal(train[i]["visual_features"], data["train"]["vision"][i, 6 - real :])
    assert corpus["test"].with_format("numpy")[1]["audio_features"].shape == (1, 3)
    # without trimming every sequence keeps the padded length
    padded = load_corpus("mosi", path, cache_dir=cache, trim_padding=False, modalities=["audio"])
    assert get_corpus_info(padded).dims == {"audio": 3}
    assert {a.shape for a in rows(padded["train"], "audio_features")} == {(6, 3)}


def test_mmsa_sims_scales_scores_and_keeps_unimodal_labels(tmp_path, cache):
    path, data = write_mmsa(tmp_path, corpus="sims", name="unaligned_39.pkl")
    corpus = load_corpus("sims", tmp_path, cache_dir=cache)
    info = get_corpus_info(corpus)
    assert info.notes["sentiment_scale"] == 3.0 and info.notes["original_sentiment_range"] == [-1.0, 1.0]
    sentiment, unimodal_t = rows(corpus["train"], "sentiment", "sentiment_T")
    np.testing.assert_allclose(sentiment, 3 * data["train"]["regression_labels"], atol=1e-5)
    np.testing.assert_allclose(unimodal_t, 3 * data["train"]["regression_labels_T"], atol=1e-5)
    assert sorted(c for c in corpus["test"].column_names if c.startswith("sentiment_") and c[-1] in "TAV") == [
        "sentiment_A", "sentiment_T", "sentiment_V"
    ]
    validate_corpus(corpus)  # extra columns are tolerated
    own_scale = load_corpus("sims", tmp_path, cache_dir=cache, sentiment_scale=1.0)
    np.testing.assert_allclose(rows(own_scale["train"], "sentiment"), data["train"]["regression_labels"], atol=1e-6)


def test_mmsa_folder_with_both_files_and_aligned_option(tmp_path, cache):
    write_mmsa(tmp_path, aligned=True)
    write_mmsa(tmp_path, aligned=False)
    assert get_corpus_info(load_corpus("mosei", tmp_path, cache_dir=cache)).notes["file"] == "unaligned_50.pkl"
    aligned = load_corpus("mosei", tmp_path, cache_dir=cache, aligned=True)
    assert get_corpus_info(aligned).notes["file"] == "aligned_50.pkl"


# --------------------------------------------------------------------------------------
# MulT


def test_mult_aligned_bytes_ids_left_padding_and_inf(tmp_path, cache):
    path, data = write_mult(tmp_path, corpus="mosei", aligned=True)
    corpus = load_corpus("mosei", path, cache_dir=cache)
    info = get_corpus_info(corpus)
    assert info.feature_set == "mult-mosei-aligned" and info.dims == {"text": 5, "audio": 3, "visual": 4}
    assert info.replaced_nonfinite == 6  # -inf and NaN in the last audio frame of row 0 of each split
    assert [corpus[s].num_rows for s in corpus] == [5, 2, 3]
    train = corpus["train"].with_format("numpy")
    assert train[0]["id"] == "vid0[0,1]" and train[4]["id"] == "vid0[4,5]"
    for i in range(5):
        real = 1 + i % 5
        np.testing.assert_array_equal(train[i]["text_features"], data["train"]["text"][i, 5 - real :])
        expected = np.nan_to_num(data["train"]["audio"][i, 5 - real :], nan=0.0, neginf=0.0)
        np.testing.assert_array_equal(train[i]["audio_features"], expected)
        assert train[i]["sentiment"] == pytest.approx(data["train"]["labels"][i, 0, 0])


def test_mult_unaligned_trims_each_modality_and_missing_ids(tmp_path, cache):
    path, data = write_mult(tmp_path, corpus="mosi", aligned=False, with_id=False)
    corpus = load_corpus("mosi", tmp_path, format="mult", cache_dir=cache)
    assert get_corpus_info(corpus).notes["aligned"] is False
    train = corpus["train"].with_format("numpy")
    assert train[3]["id"] == "train_00003" and corpus["validation"][1]["id"] == "validation_00001"
    for i in range(5):
        for key, modality in (("text", "text"), ("audio", "audio"), ("vision", "visual")):
            source = data["train"][key][i]
            first = int(np.argmax((source != 0).any(1)))
            np.testing.assert_array_equal(
                train[i][f"{modality}_features"], np.nan_to_num(source[first:], nan=0.0, neginf=0.0)
            )


def test_mult_iemocap_one_hot_pairs(tmp_path, cache):
    path, data = write_mult(tmp_path, corpus="iemocap", aligned=True, bytes_ids=False)
    corpus = load_corpus("iemocap", tmp_path, cache_dir=cache)
    info = get_corpus_info(corpus)
    assert info.tasks == ["emotion"] and info.emotion_labels == ["neutral", "happiness", "sadness", "anger"]
    emotion, mask, multilabel = rows(corpus["train"], "emotion", "emotion_mask", "emotion_multilabel")
    expected_mask = [name in ("neutral", "happiness", "sadness", "anger") for name in EMOTION_LABELS]
    assert (mask == expected_mask).all() and not multilabel.any()  # exactly one positive per row
    order = ["neutral", "happiness", "sadness", "anger"]
    for i in range(5):
        assert emotion[i].tolist() == [float(k == emotion_index(order[i % 4])) for k in range(len(EMOTION_LABELS))]
    assert info.label_spaces == {"emotion": "emotion/iemocap"}
    # a row with two emotions makes the corpus multi-label (four binary tasks)
    data["valid"]["labels"][0, 2] = (0, 1)
    with open(path, "wb") as f:
        pickle.dump(data, f)
    multi = load_corpus("iemocap", path, cache_dir=cache)
    assert get_corpus_info(multi).notes["emotion_multilabel"] is True
    assert rows(multi["train"], "emotion_multilabel").all()
    assert rows(multi["validation"], "emotion")[0].sum() == 2
    with pytest.raises(CorpusFormatError, match="exactly one emotion"):
        load_corpus("iemocap", path, cache_dir=cache, emotion_multilabel=False)


# --------------------------------------------------------------------------------------
# CMU-MultimodalSDK


def test_cmu_sdk_mosei_segments_folds_zeros_and_words(tmp_path, cache):
    streams = write_sdk_mosei(tmp_path / "sdk")
    corpus = load_corpus("mosei", tmp_path / "sdk", cache_dir=cache, folds="folds.json")
    validate_corpus(corpus)
    info = get_corpus_info(corpus)
    assert info.tasks == ["sentiment", "emotion"] and info.dims == {"text": 3, "audio": 2, "visual": 2}
    assert info.replaced_nonfinite == 1 and info.feature_set == "cmu_sdk-mosei"
    assert [corpus[s].num_rows for s in corpus] == [2, 2, 2]
    train = corpus["train"].with_format("numpy")
    assert train["id"][:].tolist() == ["vidA[0]", "vidA[1]"]
    assert train[0]["text"] == "hello" and train[1]["text"] == "world again"  # "sp" (silence) dropped
    # segment [0, 1): text frames 0-1, audio frames 0-9, visual frames 0-3
    np.testing.assert_array_equal(train[0]["text_features"], streams["text"]["vidA"][0][:2])
    np.testing.assert_array_equal(train[1]["visual_features"], streams["visual"]["vidA"][0][4:8])
    expected_audio = streams["audio"]["vidA"][0][:10].copy()
    expected_audio[3, 1] = 0.0
    np.testing.assert_array_equal(train[0]["audio_features"], expected_audio)
    sentiment, emotion, mask, multilabel = rows(corpus["validation"], "sentiment", "emotion", "emotion_mask", "emotion_multilabel")
    assert sentiment.tolist() == [0.5, 0.0] and multilabel.all()
    happy, surprise = emotion_index("happy"), emotion_index("surprise")
    assert emotion[0].tolist() == [float(k in (happy, surprise)) for k in range(len(EMOTION_LABELS))]
    assert emotion[1].tolist() == [0.0] * len(EMOTION_LABELS)  # MOSEI zeros: no emotion present, but labelled
    assert (mask == [name not in ("neutral", "peaceful", "powerful") for name in EMOTION_LABELS]).all()
    assert get_corpus_info(corpus).label_spaces == {"sentiment": "sentiment/score", "emotion": "emotion/mosei"}
    assert rows(corpus["validation"], "sentiment_mask").all()


def test_cmu_sdk_mosi_without_folds_mean_collapse_and_dropped_videos(tmp_path, cache, caplog):
    folder = tmp_path / "mosi"
    labels = {f"v{i}": (np.array([[2.0], [-1.0]], np.float32), np.array([[0.0, 1.0], [1.0, 2.0]])) for i in range(4)}
    write_csd(folder / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels)
    audio = {f"v{i}": frames(4, 0.5, 2, i) for i in range(3)}  # v3 has no audio: dropped
    write_csd(folder / "CMU_MOSI_COVAREP.csd", "COVAREP", audio)
    with caplog.at_level("WARNING"):
        corpus = load_corpus("mosi", folder, cache_dir=cache, collapse="mean")
    assert "no standard folds" in caplog.text
    info = get_corpus_info(corpus)
    assert info.tasks == ["sentiment"] and info.dims == {"audio": 2} and info.feature_set == "cmu_sdk-mosi-mean"
    assert info.notes["dropped"] == {"videos_missing_a_modality": 1}
    assert sum(corpus[s].num_rows for s in corpus) == 6
    everything = {row["id"]: row for s in corpus for row in corpus[s].with_format("numpy")}
    np.testing.assert_allclose(everything["v1[0]"]["audio_features"], audio["v1"][0][:2].mean(0, keepdims=True))
    assert everything["v2[1]"]["sentiment"] == -1.0
    again = load_corpus("mosi", folder, cache_dir=tmp_path / "other", collapse="mean")
    assert {s: sorted(again[s]["id"]) for s in again} == {s: sorted(corpus[s]["id"]) for s in corpus}


def _overlapping(intervals: np.ndarray, start: float, end: float) -> list[int]:
    """Indices of the frames overlapping [start, end), by the loop a reader would write."""
    return [i for i, (s, e) in enumerate(intervals) if s < end and e > start]


def test_cmu_sdk_word_alignment_averages_each_modality_per_word(tmp_path, cache):
    streams = write_sdk_mosei(tmp_path / "sdk")
    corpus = load_corpus("mosei", tmp_path / "sdk", cache_dir=cache, folds="folds.json", collapse="words")
    validate_corpus(corpus)
    info = get_corpus_info(corpus)
    assert info.feature_set == "cmu_sdk-mosei-words" and info.notes["collapse"] == "words"
    assert info.replaced_nonfinite == 1  # the -inf COVAREP frame spoils its own word's average only
    train = corpus["train"].with_format("numpy")
    words, word_intervals = streams["text"]["vidA"]
    for k, (start, end) in enumerate([(0.0, 1.0), (1.0, 2.0)]):
        row = train[k]
        inside = _overlapping(word_intervals, start, end)
        np.testing.assert_array_equal(row["text_features"], words[inside])
        for modality in ("audio", "visual"):
            features, intervals = streams[modality]["vidA"]
            expected = np.stack([features[_overlapping(intervals, *word_intervals[w])].mean(0) for w in inside])
            expected[~np.isfinite(expected)] = 0.0
            assert row[f"{modality}_features"].shape == (len(inside), features.shape[1])
            np.testing.assert_allclose(row[f"{modality}_features"], expected, rtol=1e-6)
    assert train[0]["audio_features"][0, 1] == 0.0 and train[0]["audio_features"][1, 1] != 0.0


def test_cmu_sdk_word_alignment_drops_words_without_frames(tmp_path, cache):
    folder = tmp_path / "mosi"
    videos = ("v0", "v1", "v2")
    labels = {v: (np.array([[1.0]], np.float32), np.array([[0.0, 2.0]])) for v in videos}
    write_csd(folder / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels)
    write_csd(folder / "CMU_MOSI_TimestampedWordVectors.csd", "glove_vectors", {v: frames(4, 0.5, 3, 0) for v in videos})
    # 4 words over [0, 2), audio over [0, 1) only: the last two words of every video have no audio.
    write_csd(folder / "CMU_MOSI_COVAREP.csd", "COVAREP", {v: frames(10, 0.1, 2, 0) for v in videos})
    folds = {"train": ["v0"], "valid": ["v1"], "test": ["v2"]}
    corpus = load_corpus("mosi", folder, cache_dir=cache, collapse="words", folds=folds)
    info = get_corpus_info(corpus)
    assert info.notes["dropped"] == {"words_without_frames": 6}
    from mtaffect.cli.data import describe_corpus

    assert 'dropped={"words_without_frames": 6}' in describe_corpus(corpus)  # what the loader did is shown
    row = corpus["train"].with_format("numpy")[0]
    assert row["text_features"].shape == (2, 3) and row["audio_features"].shape == (2, 2)
    with pytest.raises(CorpusFormatError, match="word-vector sequence"):
        load_corpus("mosi", folder, cache_dir=tmp_path / "c2", collapse="words", text="", folds=folds)
    with pytest.raises(ValueError, match="'none', 'mean', 'words'"):
        load_corpus("mosi", folder, cache_dir=tmp_path / "c3", collapse="median", folds=folds)


def test_an_empty_option_names_no_file_to_stamp(tmp_path, monkeypatch):
    """The cache key stamps files options name; "" (Path: the working directory) is none of them."""
    from mtaffect.data.corpora.registry import _option_files

    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "text.npz").write_bytes(b"x")
    (tmp_path / "elsewhere.txt").write_text("not named by any option")
    monkeypatch.chdir(tmp_path)
    stamps = _option_files({"text": "", "collapse": "words", "features": ["", "features"]})
    assert [Path(path).name for path, size, _ in stamps] == ["text.npz"] and stamps[0][1] == 1


# --------------------------------------------------------------------------------------
# MUStARD


def _mustard_features(folder: Path, data: dict, kind: str = "npz") -> dict:
    rng = _rng(3)
    text = {k: rng.normal(size=(1 + i % 3, 4)).astype(np.float32) for i, k in enumerate(data)}
    audio = {k: rng.normal(size=(5, 2 + i % 2)).astype(np.float32) for i, k in enumerate(data)}  # [D=5, T]
    if kind == "npz":
        np.savez(folder / "text.npz", **text)
    with open(folder / "audio_features.p", "wb") as f:
        pickle.dump(audio, f, protocol=2)
    with h5py.File(folder / "resnet_pool5.hdf5", "w") as f:
        for k in data:
            f.create_dataset(k, data=np.full((2, 6), float(len(k)), np.float32))
    return {"text": text, "audio": audio}


def test_mustard_folds_validation_carve_and_feature_files(tmp_path, cache):
    data = write_mustard(tmp_path / "mustard")
    feats = _mustard_features(tmp_path / "mustard", data)
    features = {"text": "text.npz", "audio": "audio_features.p", "visual": "resnet_pool5.hdf5"}
    corpus = load_corpus("mustard", tmp_path / "mustard", cache_dir=cache, fold=1, features=features, transpose=["audio"])
    validate_corpus(corpus)
    ids = list(data)
    assert corpus["test"]["id"] == [ids[i] for i in range(1, 20, 5)]  # fold 1's test indices, json key order
    assert corpus["train"].num_rows + corpus["validation"].num_rows == 16
    assert corpus["validation"].num_rows == 2 and sorted(rows(corpus["validation"], "sarcasm")) == [0.0, 1.0]
    assert not set(corpus["validation"]["id"]) & set(corpus["train"]["id"])
    info = get_corpus_info(corpus)
    assert info.dims == {"text": 4, "audio": 5, "visual": 6} and info.tasks == ["sarcasm"]
    assert info.feature_set == "mustard-user-t4-a5-v6" and info.notes["fold"] == 1
    row = corpus["test"].with_format("numpy")[0]
    k = row["id"]
    np.testing.assert_array_equal(row["text_features"], feats["text"][k])
    np.testing.assert_array_equal(row["audio_features"], feats["audio"][k].T)
    assert row["text"] == data[k]["utterance"] and row["speaker"] == data[k]["speaker"]
    assert row["show"] == data[k]["show"] and list(row["context"]) == data[k]["context"]
    assert row["sarcasm"] == float(data[k]["sarcasm"]) and row["sarcasm_mask"]
    assert not row["sentiment_mask"] and not row["emotion_mask"].any()


def test_mustard_speaker_independent_and_dropped_features(tmp_path, cache):
    data = write_mustard(tmp_path)
    rng = _rng(4)
    keys = list(data)[1:]  # the first utterance (a FRIENDS one) has no features
    np.savez(tmp_path / "text.npz", **{k: rng.normal(size=(2, 3)).astype(np.float32) for k in keys})
    corpus = load_corpus(
        "mustard", tmp_path / "sarcasm_data.json", cache_dir=cache, protocol="speaker_independent",
        features=str(tmp_path), missing_features="drop", validation_fraction=0,
    )
    assert list(corpus) == ["train", "test"]
    assert set(corpus["test"]["show"]) == {"FRIENDS"} and corpus["test"].num_rows == 4  # 5 FRIENDS, 1 dropped
    assert "FRIENDS" not in set(corpus["train"]["show"]) and corpus["train"].num_rows == 15
    assert get_corpus_info(corpus).notes["dropped_without_features"] == 1
    with pytest.raises(CorpusFormatError, match="no text features for '0_100'"):
        load_corpus("mustard", tmp_path, cache_dir=cache, protocol="speaker_independent", features={"text": "text.npz"})


class _FakeTextExtractor:
    """Stands in for mtaffect.data.extract.TextExtractor: one frame per word."""

    instances: list[dict] = []

    def __init__(self, **options):
        self.options = options
        self.name, self.dim = "text:fake:tokens", 3
        _FakeTextExtractor.instances.append(options)

    def describe(self):
        return {"class": "fake", "name": self.name, "dim": self.dim}

    def __call__(self, texts):
        return [np.full((max(1, len(t.split())), 3), len(t), np.float32) for t in texts]


@pytest.fixture
def fake_extract(monkeypatch):
    module = types.ModuleType("mtaffect.data.extract")
    module.TextExtractor = _FakeTextExtractor
    monkeypatch.setitem(sys.modules, "mtaffect.data.extract", module)
    _FakeTextExtractor.instances.clear()
    return _FakeTextExtractor


def test_mustard_without_features_extracts_text(tmp_path, cache, fake_extract):
    data = write_mustard(tmp_path)
    corpus = load_corpus("mustard", tmp_path, cache_dir=cache, extractor={"pooled": False})
    assert fake_extract.instances == [{"pooled": False}]
    info = get_corpus_info(corpus)
    assert info.feature_set == "text:fake:tokens" and info.dims == {"text": 3}
    assert info.extractors["text"]["class"] == "fake"
    row = corpus["test"].with_format("numpy")[0]
    assert row["text_features"].shape == (2, 3) and row["text_features"][0, 0] == len(data[row["id"]]["utterance"])


# --------------------------------------------------------------------------------------
# MELD


def test_meld_labels_ids_mojibake_and_per_split_features(tmp_path, cache):
    items = write_meld(tmp_path / "meld")
    rng = _rng(5)
    per_split = {}
    for split in ("train", "dev", "test"):
        per_split[split] = {f"dia{d}_utt{u}": rng.normal(size=(2, 4)).astype(np.float32) for *_, d, u in items[split]}
        with open(tmp_path / "meld" / f"{split}_audio.pkl", "wb") as f:
            pickle.dump(per_split[split], f)
    features = {"audio": {s: f"{s}_audio.pkl" for s in ("train", "dev", "test")}}
    before = digest(tmp_path / "meld")
    corpus = load_corpus("meld", tmp_path / "meld", cache_dir=cache, features=features)
    assert digest(tmp_path / "meld") == before
    validate_corpus(corpus)
    assert [corpus[s].num_rows for s in corpus] == [4, 2, 1]
    info = get_corpus_info(corpus)
    # MELD's own label names and spaces: 7 emotions as MELD spells them, 3 polarity classes (a CE head's).
    assert info.tasks == ["emotion", "sentiment"]
    assert info.emotion_labels == ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
    assert info.label_spaces == {"emotion": "emotion/meld", "sentiment": "sentiment/polarity"}
    train = corpus["train"].with_format("numpy")
    assert train["id"][:].tolist() == ["dia0_utt0", "dia0_utt1", "dia1_utt0", "dia1_utt1"]
    assert train[0]["text"] == "You\u2019re kidding, right?" and train[1]["text"] == '"Well, no", she said'
    assert train[1]["emotion"].tolist() == [float(k == emotion_index("joy")) for k in range(len(EMOTION_LABELS))]
    assert train[1]["emotion_mask"].tolist() == [name not in ("peaceful", "powerful") for name in EMOTION_LABELS]
    assert not train[1]["emotion_multilabel"]
    assert [train[i]["sentiment_class"] for i in range(4)] == [2, 2, 0, 1]
    assert [train[i]["sentiment"] for i in range(4)] == [1.0, 1.0, -1.0, 0.0]
    assert train[2]["dialogue_id"] == 1 and train[2]["utterance_id"] == 0 and train[0]["speaker"] == "Chandler"
    np.testing.assert_array_equal(corpus["validation"].with_format("numpy")[1]["audio_features"], per_split["dev"]["dia0_utt1"])


def test_meld_single_feature_file_with_split_prefixes(tmp_path, cache, fake_extract):
    items = write_meld(tmp_path)
    keys = {f"{s}/dia{d}_utt{u}": np.ones((1, 2), np.float32) * i for s in items for i, (*_, d, u) in enumerate(items[s])}
    np.savez(tmp_path / "audio.npz", **keys)
    corpus = load_corpus("meld", tmp_path, cache_dir=cache, features={"audio": "audio.npz"}, extract_text=True)
    info = get_corpus_info(corpus)
    assert info.dims == {"text": 3, "audio": 2} and info.feature_set == "meld-user-t3-a2"
    assert rows(corpus["train"], "audio_features")[3].tolist() == [[3.0, 3.0]]


# --------------------------------------------------------------------------------------
# Real public files (MUStARD json + split_indices.p, MELD CSVs), with dummy features.


def test_real_mustard_structure(shared_corpora, tmp_path, cache):
    folder = shared_corpora / "mustard"
    data = json.loads((folder / "sarcasm_data.json").read_text())
    with open(tmp_path / "text.pkl", "wb") as f:
        pickle.dump({k: np.zeros((1, 2), np.float32) for k in data}, f)
    before = digest(folder)
    fold = load_corpus("mustard", folder, cache_dir=cache, features={"text": str(tmp_path / "text.pkl")}, fold=4)
    assert fold["train"].num_rows + fold["validation"].num_rows == 552 and fold["test"].num_rows == 138
    assert fold["validation"].num_rows == 55
    independent = load_corpus(
        "mustard", folder, cache_dir=cache, features={"text": str(tmp_path / "text.pkl")}, protocol="speaker_independent"
    )
    assert independent["test"].num_rows == 356 and set(independent["test"]["show"]) == {"FRIENDS"}
    assert sum(rows(independent[s], "sarcasm").sum() for s in independent) == 345
    assert digest(folder) == before


def test_real_meld_structure(shared_corpora, tmp_path, cache):
    from mtaffect.data.corpora.meld import MELD_FILES, read_meld_csv

    folder = shared_corpora / "meld"
    features = {}
    for meld_split, name in MELD_FILES.values():
        keys = [r["id"] for r in read_meld_csv(folder / name)]
        with open(tmp_path / f"{meld_split}.pkl", "wb") as f:
            pickle.dump({k: np.zeros((1, 2), np.float32) for k in keys}, f)
        features[meld_split] = str(tmp_path / f"{meld_split}.pkl")
    corpus = load_corpus("meld", folder, cache_dir=cache, features={"text": features})
    assert [corpus[s].num_rows for s in corpus] == [9989, 1109, 2610]
    classes = rows(corpus["train"], "sentiment_class")
    assert np.bincount(classes).tolist() == [2945, 4710, 2334]
    emotion = rows(corpus["train"], "emotion")
    assert int(emotion[:, emotion_index("joy")].sum()) == 1743 and int(emotion[:, emotion_index("neutral")].sum()) == 4710
    assert corpus["train"][0]["text"].startswith("also I was the point person on my company\u2019s transition")


# --------------------------------------------------------------------------------------
# Registry, cache, safety, combine, CLI


def test_registry_lists_every_corpus_and_format():
    entries = {(e.corpus, e.format) for e in list_corpora()}
    for pair in [("mosi", "mmsa"), ("mosei", "mmsa"), ("sims", "mmsa"), ("mosi", "mult"), ("mosei", "mult"),
                 ("iemocap", "mult"), ("mosei", "cmu_sdk"), ("mosi", "cmu_sdk"), ("mustard", "mustard"),
                 ("meld", "meld"), ("synthetic_mosei", "synthetic")]:
        assert pair in entries
    mustard = next(e for e in list_corpora() if e.corpus == "mustard")
    assert {o.name: o.default for o in mustard.options}["protocol"] == "fold"
    synthetic = load_corpus("synthetic_iemocap", size_scale=0.05)
    assert synthetic["train"].num_rows == 20
    with pytest.raises(ValueError, match="Unknown option"):
        load_corpus("synthetic_iemocap", foo=1)
    with pytest.raises(ValueError, match="Unknown corpus"):
        load_corpus("nope", ".")


def test_format_detection(tmp_path):
    write_mmsa(tmp_path / "a")
    write_mult(tmp_path / "b", corpus="mosi")
    write_sdk_mosei(tmp_path / "c")
    assert detect_format("mosei", tmp_path / "a") == "mmsa"
    assert detect_format("mosi", tmp_path / "b") == "mult"
    assert detect_format("mosei", tmp_path / "c") == "cmu_sdk"
    (tmp_path / "d").mkdir()
    with pytest.raises(CorpusFormatError, match="cannot tell"):
        detect_format("mosei", tmp_path / "d")


def test_format_detection_reads_the_content_when_the_name_does_not_tell(tmp_path, cache):
    """`mosei_unaligned_50.pkl` is an MMSA pickle; a renamed MulT pickle is MulT (both read
    without loading the file: the arrays are seeked over)."""
    from mtaffect.data.corpora.safe_pickle import pickle_strings

    mmsa_path, data = write_mmsa(tmp_path / "a", name="mosei_unaligned_50.pkl")
    mult_path, _ = write_mult(tmp_path / "b", corpus="mosi")
    renamed = mult_path.rename(tmp_path / "b" / "mosi_features.pkl")
    assert "regression_labels" in pickle_strings(mmsa_path) and "labels" in pickle_strings(renamed)
    assert detect_format("mosei", mmsa_path) == "mmsa"
    assert detect_format("mosi", renamed) == "mult"
    corpus = load_corpus("mosei", mmsa_path, cache_dir=cache)
    assert corpus["train"].num_rows == len(data["train"]["id"])
    assert get_corpus_info(corpus).notes["format"] == "mmsa"
    (tmp_path / "c.pkl").write_bytes(b"not a pickle")
    assert pickle_strings(tmp_path / "c.pkl") == set()
    with pytest.raises(CorpusFormatError, match="cannot tell"):
        detect_format("mosei", tmp_path / "c.pkl")


def test_conversion_is_cached_and_reopened_memory_mapped(tmp_path, cache, monkeypatch):
    path, _ = write_mmsa(tmp_path)
    first = load_corpus("mosei", path, cache_dir=cache)
    assert first["train"].cache_files and Path(first["train"].cache_files[0]["filename"]).is_relative_to(cache)
    import mtaffect.data.corpora.mmsa as mmsa

    def refuse(*args, **kwargs):
        raise AssertionError("the source was parsed again")

    monkeypatch.setattr(mmsa, "load_pickle", refuse)
    again = load_corpus("mosei", path, cache_dir=cache)
    assert again["train"]["id"] == first["train"]["id"]
    with pytest.raises(AssertionError, match="parsed again"):  # different options: a new conversion
        load_corpus("mosei", path, cache_dir=cache, modalities="text")


def test_code_running_pickle_is_refused_and_runs_nothing(tmp_path, cache):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    data = {"train": {"id": np.array(["a"]), "evil": Evil()}}
    path = tmp_path / "unaligned_50.pkl"
    with open(path, "wb") as f:
        pickle.dump(data, f)
    with pytest.raises(UnsafePickleError, match=r"unaligned_50\.pkl: refusing to unpickle: it references pathlib"):
        load_corpus("mosei", path, cache_dir=cache)
    assert not marker.exists()
    assert not cache.exists() or not any(cache.iterdir())  # nothing left behind


def test_safe_pickle_reads_python2_and_protocol5_numpy():
    import io

    array = np.arange(6, dtype=np.int64).reshape(2, 3)
    for protocol in (0, 2, 5):
        loaded = load_pickle(io.BytesIO(pickle.dumps({"a": array, "s": np.float32(2.5), "b": b"x"}, protocol=protocol)))
        np.testing.assert_array_equal(loaded["a"], array)
        assert loaded["s"] == np.float32(2.5) and loaded["b"] == b"x"


def test_combine_corpora(tmp_path, cache, tiny_family):
    mosei = load_corpus("mosei", write_mmsa(tmp_path / "m")[0], cache_dir=cache)
    mixed = combine_corpora({"mosei": mosei, "synthetic_mustard": tiny_family["synthetic_mustard"]})
    assert set(mixed) == {"train", "validation", "test"}
    assert sorted(mixed["train"]) == ["mosei", "synthetic_mustard"] and mixed["train"]["mosei"].num_rows == 6
    from_list = combine_corpora([mosei, tiny_family["synthetic_iemocap"]], splits=["train"])
    assert sorted(from_list["train"]) == ["mosei", "synthetic_iemocap"]
    with pytest.raises(ValueError, match="'source' column holds"):
        combine_corpora({"other": mosei})
    with pytest.raises(ValueError, match="Two corpora are named"):
        combine_corpora([mosei, mosei])
    clash = load_corpus("mosei", write_mmsa(tmp_path / "n", dims=(8, 5, 4))[0], cache_dir=cache, corpus_name="mosei2")
    with pytest.raises(ValueError, match="Feature set 'mmsa-mosei-unaligned' has dims"):
        combine_corpora({"mosei": mosei, "mosei2": clash})


def test_cli_convert_and_describe(tmp_path, capsys):
    from mtaffect.cli.main import main

    write_meld(tmp_path / "meld")
    rng = _rng(6)
    keys = {f"{s}/dia{d}_utt{u}": rng.normal(size=(2, 3)).astype(np.float32) for s, items in write_meld(tmp_path / "meld").items() for *_, d, u in items}
    np.savez(tmp_path / "text.npz", **keys)
    out = tmp_path / "out"

    def convert(output, features=tmp_path / "text.npz", *extra):
        return ["data", "convert", "--corpus", "meld", "--input", str(tmp_path / "meld"), "--output", str(output),
                "--option", f"features.text={features}", *extra]

    assert main(convert(out)) == 0
    printed = capsys.readouterr().out
    assert "corpus: meld" in printed and "[train] 4 examples" in printed and "classes negative 1" in printed
    corpus = load_from_disk(str(out))
    assert corpus["test"].num_rows == 1 and get_corpus_info(corpus).corpus == "meld"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meld", "out", "text.npz"]  # no scratch left
    assert main(convert(out)) == 2 and "earlier `mtaffect data convert`" in capsys.readouterr().err
    assert main(convert(out, tmp_path / "text.npz", "--overwrite")) == 0
    assert "replaced 10 file(s) mtaffect wrote earlier" in capsys.readouterr().out
    assert main(["data", "describe", str(out)]) == 0 and "[validation] 2 examples" in capsys.readouterr().out
    assert main(["data", "describe", "meld"]) == 2 and "--input" in capsys.readouterr().err
    assert main(["data", "describe", "synthetic_mustard", "--option", "size_scale=0.05"]) == 0
    assert "sarcasm" in capsys.readouterr().out
    # a failed conversion leaves nothing behind; a folder of the user's is refused, and with
    # --overwrite the corpus is written next to the user's files, which are kept
    assert main(convert(tmp_path / "out2", tmp_path / "missing.npz")) == 2
    assert "missing.npz: no such feature file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meld", "out", "text.npz"]
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.txt").write_text("mine")
    assert main(convert(tmp_path / "keep", tmp_path / "text.npz")) == 2
    assert "holds 1 file(s) mtaffect did not write (notes.txt)" in capsys.readouterr().err
    assert main(convert(tmp_path / "keep", tmp_path / "text.npz", "--overwrite")) == 0
    assert "kept 1 file(s) mtaffect did not write (notes.txt)" in capsys.readouterr().out
    assert (tmp_path / "keep" / "notes.txt").read_text() == "mine"
    assert load_from_disk(str(tmp_path / "keep"))["train"].num_rows == 4
    assert main(["data", "list"]) == 0 and "mustard (mustard)" in capsys.readouterr().out
    reopened = load_corpus("meld", out)  # a converted folder opens as it is
    assert reopened["train"]["id"] == corpus["train"]["id"]
    with pytest.raises(CorpusFormatError, match="holds the converted corpus 'meld', not 'mosei'"):
        load_corpus("mosei", out)


def test_split_files_is_the_one_walk_of_a_folder_of_splits(tmp_path):
    from mtaffect.data.raw import RawCorpusError, split_files

    names = {"train": "a_train.csv", "validation": "a_dev.csv", "test": "a_test.csv"}
    (tmp_path / "a_test.csv").write_text("x")
    (tmp_path / "a_train.csv").write_text("x")
    # By the corpus' own names: in split order, an absent one left out unless all are required.
    assert split_files(tmp_path, names) == {"train": tmp_path / "a_train.csv", "test": tmp_path / "a_test.csv"}
    with pytest.raises(CorpusFormatError, match=r"missing a_dev.csv \(A needs a_train.csv, a_dev.csv, a_test.csv\)"):
        split_files(tmp_path, names, required=True, what="A", error=CorpusFormatError)
    with pytest.raises(RawCorpusError, match=r"none of \['b_dev.csv'\] is there"):
        split_files(tmp_path, {"validation": "b_dev.csv"})
    # By split-named files of the given types (any alias, any case).
    tables = tmp_path / "tables"
    tables.mkdir()
    for name in ("Test.parquet", "dev.jsonl", "train.csv", "notes.csv", "valid.txt"):
        (tables / name).write_text("x")
    assert split_files(tables, suffixes=(".csv", ".jsonl", ".parquet")) == {
        "train": tables / "train.csv", "validation": tables / "dev.jsonl", "test": tables / "Test.parquet"}
    (tables / "validation.csv").write_text("x")
    with pytest.raises(RawCorpusError, match="two files for the validation split: dev.jsonl and validation.csv"):
        split_files(tables, suffixes=(".csv", ".jsonl"))
    with pytest.raises(CorpusFormatError, match=r"holds no train/dev/test table .*\('.tsv',\)"):
        split_files(tables, suffixes=(".tsv",), what="table", error=CorpusFormatError)
