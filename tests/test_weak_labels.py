"""Weak labels: where they are written, soft/hard/threshold, caching, ablations, teacher errors, CLI."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict, load_from_disk

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.data.corpora.synthetic import make_synthetic_corpus
from mtaffect.data.schema import get_corpus_info, validate_corpus
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
from mtaffect.tasks import EMOTION_LABELS
from mtaffect.teachers import (
    TeacherError,
    TeacherRecord,
    get_teacher_record,
    load_teacher,
    record_teacher,
    teacher_record_from_corpora,
)
from mtaffect.weak_labels import add_weak_labels, teacher_fingerprint, weak_label_quality

CMU = "synthetic-cmu"
# A larger init spreads a fresh model's outputs, so confidences and hard labels vary.
TINY = {"hidden_size": 8, "num_heads": 2, "intermediate_size": 16, "initializer_range": 0.2}


# ---------------------------------------------------------------------------------------------
# Fixtures: corpora saved to disk (caching needs files) and tiny freshly initialised teachers.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tiny_family, tmp_path_factory):
    """The tiny family saved and loaded back (each test that counts cache hits copies its own)."""
    root = tmp_path_factory.mktemp("corpora")
    out = {}
    for name, corpus in tiny_family.items():
        corpus.save_to_disk(str(root / name))
        out[name] = load_from_disk(str(root / name))
    return out


def _fresh_copy(corpus: DatasetDict, tmp_path, name: str = "copy") -> DatasetDict:
    corpus.save_to_disk(str(tmp_path / name))
    return load_from_disk(str(tmp_path / name))


def _teacher(task: str, training: dict, **overrides) -> MTAffectForMultiTaskAffect:
    torch.manual_seed(0)
    config = MTAffectConfig.from_corpora(training, tasks=[task], **{**TINY, **overrides})
    model = MTAffectForMultiTaskAffect(config)
    with torch.no_grad():  # spread the fresh head's outputs so confidences vary
        for name, param in model.heads.named_parameters():
            param.normal_(0.0, 3.0) if name.endswith("weight") else param.zero_()
    record_teacher(model, teacher_record_from_corpora(task, training))
    return model


@pytest.fixture(scope="module")
def sarcasm_teacher(saved):
    return _teacher("sarcasm", {"synthetic_mustard": saved["synthetic_mustard"]})


@pytest.fixture(scope="module")
def sentiment_teacher(saved):
    return _teacher("sentiment", {"synthetic_mosei": saved["synthetic_mosei"]})


@pytest.fixture(scope="module")
def emotion_teacher(saved):
    """Single-label, 4 labels (IEMOCAP)."""
    return _teacher("emotion", {"synthetic_iemocap": saved["synthetic_iemocap"]})


@pytest.fixture(scope="module")
def multilabel_teacher(saved):
    """Multi-label, 6 labels (MOSEI)."""
    return _teacher("emotion", {"synthetic_mosei": saved["synthetic_mosei"]})


class ForwardCounter:
    def __init__(self, model):
        self.calls = 0
        self.handle = model.register_forward_hook(self)

    def __call__(self, *args):
        self.calls += 1

    def close(self):
        self.handle.remove()


def _np(split: Dataset, column: str) -> np.ndarray:
    return np.asarray(split.with_format("numpy")[column])


def _half_without_sentiment(split: Dataset) -> Dataset:
    """MOSEI split with the gold sentiment of every other row removed (schema's unknown)."""

    def hide(sentiment, mask, classes, indices):
        odd = np.asarray(indices) % 2 == 1
        return {
            "sentiment": np.where(odd, 0.0, sentiment),
            "sentiment_mask": np.where(odd, False, mask),
            "sentiment_class": np.where(odd, -1, classes),
        }

    columns = ["sentiment", "sentiment_mask", "sentiment_class"]
    return split.with_format("numpy").map(hide, batched=True, input_columns=columns, with_indices=True)


def _same_column(first: Dataset, second: Dataset, column: str) -> bool:
    return first.data.column(column).combine_chunks().equals(second.data.column(column).combine_chunks())


# ---------------------------------------------------------------------------------------------
# Teacher records
# ---------------------------------------------------------------------------------------------


def test_teacher_record_reads_labels_kind_and_feature_sets(saved):
    record = teacher_record_from_corpora(
        "emotion", {"iemocap": saved["synthetic_iemocap"], "meld": saved["synthetic_meld"]}
    )
    assert record.emotion_labels == [n for n in EMOTION_LABELS if n not in ("peaceful", "powerful")]  # IEMOCAP's 4 + MELD's 7
    assert record.emotion_multilabel is False
    assert record.trained_on == {CMU: ["text", "audio", "visual"]}
    only_iemocap = teacher_record_from_corpora("emotion", {"iemocap": saved["synthetic_iemocap"]})
    assert sorted(only_iemocap.emotion_labels) == ["anger", "happiness", "neutral", "sadness"]
    assert teacher_record_from_corpora("emotion", {"mosei": saved["synthetic_mosei"]}).emotion_multilabel
    with pytest.raises(TeacherError, match="mix multi-label .*synthetic_mosei.* and single-label"):
        teacher_record_from_corpora(
            "emotion", {"synthetic_mosei": saved["synthetic_mosei"], "synthetic_iemocap": saved["synthetic_iemocap"]}
        )
    with pytest.raises(TeacherError, match="no gold sarcasm label"):
        teacher_record_from_corpora("sarcasm", {"mosei": saved["synthetic_mosei"]})


def test_record_survives_save_and_load(emotion_teacher, tmp_path):
    emotion_teacher.save_pretrained(tmp_path / "teacher")
    loaded = load_teacher(tmp_path / "teacher", "emotion")
    assert get_teacher_record(loaded, "emotion") == get_teacher_record(emotion_teacher, "emotion")
    assert teacher_fingerprint(loaded) == teacher_fingerprint(emotion_teacher)


# ---------------------------------------------------------------------------------------------
# Where weak labels go
# ---------------------------------------------------------------------------------------------


def test_weak_labels_only_where_gold_is_missing(saved, sentiment_teacher):
    split = _half_without_sentiment(saved["synthetic_mosei"]["train"])
    out = add_weak_labels(split, sentiment_teacher, "sentiment")
    validate_corpus(out)
    gold = _np(split, "sentiment_mask")
    weak = _np(out, "sentiment_weak_mask")
    assert gold.any() and (~gold).any()
    assert not weak[gold].any()  # gold rows: untouched...
    for column in ("sentiment_weak", "sentiment_weak_confidence"):
        np.testing.assert_array_equal(_np(out, column)[gold], _np(split, column)[gold])
    assert weak[~gold].all()  # ...the rest labelled (no threshold)
    # gold columns are never modified, and nothing but the sentiment weak columns changes
    for column in split.column_names:
        if not column.startswith("sentiment_weak"):
            assert _same_column(out, split, column), column
    # sentiment confidence is the documented distance to the 3-class boundary
    scores = _np(out, "sentiment_weak")[~gold]
    expected = np.minimum(1, 2 * np.minimum(np.abs(scores - 0.5), np.abs(scores + 0.5)))
    np.testing.assert_allclose(_np(out, "sentiment_weak_confidence")[~gold], expected, atol=1e-6)


def test_corpus_with_gold_everywhere_gets_no_weak_labels(saved, sentiment_teacher):
    meld = saved["synthetic_meld"]  # gold sentiment (3 classes) on every row
    counter = ForwardCounter(sentiment_teacher)
    try:
        out = add_weak_labels(meld, sentiment_teacher, "sentiment", cache=False)
    finally:
        counter.close()
    assert counter.calls == 0  # the teacher only runs on rows that need a label
    assert not any(_np(split, "sentiment_weak_mask").any() for split in out.values())


def test_emotion_single_label_soft_hard_threshold(saved, emotion_teacher):
    mustard = saved["synthetic_mustard"]["train"]
    known = np.array([label in ("anger", "happiness", "sadness", "neutral") for label in EMOTION_LABELS])
    soft = add_weak_labels(mustard, emotion_teacher, "emotion", cache=False)
    probs, mask = _np(soft, "emotion_weak"), _np(soft, "emotion_weak_mask")
    confidence = _np(soft, "emotion_weak_confidence")
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)  # softmax over the teacher's labels
    assert (probs[:, ~known] == 0).all() and (mask == known).all()
    np.testing.assert_allclose(confidence, probs.max(1), atol=1e-6)
    assert not _np(soft, "emotion_weak_multilabel").any()
    assert confidence.min() < confidence.max()

    hard = add_weak_labels(mustard, emotion_teacher, "emotion", mode="hard", cache=False)
    one_hot = _np(hard, "emotion_weak")
    assert (one_hot.sum(1) == 1).all() and (one_hot.argmax(1) == probs.argmax(1)).all()
    np.testing.assert_allclose(_np(hard, "emotion_weak_confidence"), confidence, atol=1e-6)

    threshold = float(np.median(confidence))
    cut = add_weak_labels(mustard, emotion_teacher, "emotion", threshold=threshold, cache=False)
    kept = _np(cut, "emotion_weak_mask").any(1)
    np.testing.assert_array_equal(kept, confidence >= threshold)
    assert 0 < kept.sum() < len(kept)
    # below the threshold the prediction is kept for inspection, but masked off
    np.testing.assert_allclose(_np(cut, "emotion_weak"), probs, atol=1e-6)
    validate_corpus(cut)


def test_emotion_multilabel_teacher(saved, multilabel_teacher):
    mustard = saved["synthetic_mustard"]["validation"]
    # MUStARD has no emotion labels: the weak labels are in the teacher's own (MOSEI) set
    out = add_weak_labels(mustard, multilabel_teacher, "emotion", cache=False)
    probs, mask = _np(out, "emotion_weak"), _np(out, "emotion_weak_mask")
    known = np.array([label not in ("neutral", "peaceful", "powerful") for label in EMOTION_LABELS])  # MOSEI's 6
    assert (mask == known).all() and (probs[:, ~known] == 0).all()
    assert _np(out, "emotion_weak_multilabel").all()
    expected = np.abs(2 * probs[:, known] - 1).mean(1)
    np.testing.assert_allclose(_np(out, "emotion_weak_confidence"), expected, atol=1e-5)
    hard = add_weak_labels(mustard, multilabel_teacher, "emotion", mode="hard", cache=False)
    np.testing.assert_array_equal(_np(hard, "emotion_weak"), ((probs >= 0.5) & known).astype(np.float32))

    # IEMOCAP has gold emotion in its own 4-label set: a MOSEI teacher does not fit it...
    iemocap = saved["synthetic_iemocap"]["validation"]
    with pytest.raises(TeacherError, match=r"predicts emotion/mosei but corpus 'synthetic_iemocap' uses emotion/iemocap.*convert=True"):
        add_weak_labels(iemocap, multilabel_teacher, "emotion", label_gold=True, cache=False)
    # ...unless converted: through the union labels both sets have (anger, happiness, sadness).
    converted = add_weak_labels(iemocap, multilabel_teacher, "emotion", label_gold=True, convert=True, cache=False)
    shared = np.array([label in ("anger", "happiness", "sadness") for label in EMOTION_LABELS])
    assert (_np(converted, "emotion_weak_mask") == shared).all()
    assert not _np(converted, "emotion_weak_multilabel").any()  # IEMOCAP's set is single-label
    weak = _np(converted, "emotion_weak")
    assert (weak[:, ~shared] == 0).all() and ((weak >= 0) & (weak <= 1)).all()
    notes = get_corpus_info(converted).notes["weak_labels"]["emotion"]
    assert notes["conversion"].startswith("mosei -> iemocap through the union labels")
    assert notes["teacher_space"] == "emotion/mosei" and notes["target_space"] == "emotion/iemocap"
    np.testing.assert_array_equal(_np(converted, "emotion"), _np(iemocap, "emotion"))  # gold untouched


def test_sarcasm_and_sentiment_hard_modes(saved, sarcasm_teacher, sentiment_teacher):
    mosei = saved["synthetic_mosei"]["validation"]
    soft = add_weak_labels(mosei, sarcasm_teacher, "sarcasm", cache=False)
    hard = add_weak_labels(mosei, sarcasm_teacher, "sarcasm", mode="hard", cache=False)
    probs = _np(soft, "sarcasm_weak")
    np.testing.assert_allclose(_np(soft, "sarcasm_weak_confidence"), np.abs(2 * probs - 1), atol=1e-6)
    np.testing.assert_array_equal(_np(hard, "sarcasm_weak"), (probs >= 0.5).astype(np.float32))
    assert 0 < (probs >= 0.5).sum() < len(probs)

    iemocap = saved["synthetic_iemocap"]["validation"]  # no sentiment gold
    soft = add_weak_labels(iemocap, sentiment_teacher, "sentiment", cache=False)
    hard = add_weak_labels(iemocap, sentiment_teacher, "sentiment", mode="hard", cache=False)
    scores = _np(soft, "sentiment_weak")
    assert np.abs(scores).max() <= 3.0 and len(np.unique(np.round(scores))) > 1
    np.testing.assert_array_equal(_np(hard, "sentiment_weak"), np.round(scores))  # 7-class view
    validate_corpus(hard)


def test_mc_dropout_sentiment_confidence(saved, sentiment_teacher):
    iemocap = saved["synthetic_iemocap"]["validation"]
    modes = [module.training for module in sentiment_teacher.modules()]
    counter = ForwardCounter(sentiment_teacher)
    try:
        out = add_weak_labels(
            iemocap, sentiment_teacher, "sentiment", sentiment_confidence="mc_dropout", mc_samples=4, cache=False
        )
    finally:
        counter.close()
    confidence = _np(out, "sentiment_weak_confidence")
    assert set(np.round(confidence * 4).astype(int)) <= {0, 1, 2, 3, 4}  # agreement fractions of 4 passes
    assert counter.calls == 5 * -(-iemocap.num_rows // 256)  # 1 deterministic + 4 dropout passes per batch
    boundary = add_weak_labels(iemocap, sentiment_teacher, "sentiment", cache=False)
    np.testing.assert_array_equal(_np(out, "sentiment_weak"), _np(boundary, "sentiment_weak"))
    assert [module.training for module in sentiment_teacher.modules()] == modes  # every mode restored
    no_dropout = _teacher("sentiment", {"mosei": saved["synthetic_mosei"]}, dropout=0.0)
    with pytest.raises(TeacherError, match="dropout"):
        add_weak_labels(iemocap, no_dropout, "sentiment", sentiment_confidence="mc_dropout")


def test_teacher_state_is_restored(saved, sarcasm_teacher):
    model = copy.deepcopy(sarcasm_teacher).train()
    add_weak_labels(saved["synthetic_mosei"]["test"], model, "sarcasm", cache=False, device="cpu")
    assert model.training and next(model.parameters()).device.type == "cpu"


def test_teacher_inputs_equal_the_collators(saved):
    """add_weak_labels pads straight from Arrow (fast path); the collator is the reference."""
    import pyarrow as pa

    from mtaffect.data.arrow import pad_rows as _pad
    from mtaffect.data.arrow import read_columns as _arrow_batch
    from mtaffect.data.collator import MTAffectCollator
    from mtaffect.data.schema import feature_dims

    split = saved["synthetic_mosei"]["test"].select(range(2, 14))

    def shorten(audio, indices):  # one empty and one length-1 audio sequence
        return {"audio_features": [a[:0] if i == 3 else a[:1] if i == 5 else a for a, i in zip(audio, indices)]}

    split = split.with_format("numpy").map(shorten, batched=True, input_columns="audio_features", with_indices=True)
    dims = feature_dims(split.features)
    rows = np.array([0, 3, 5, 11])
    table = split.with_format("arrow")[:]
    assert isinstance(table, pa.Table)
    batch = _arrow_batch(table.slice(0), dims)  # sliced tables carry offsets: must still line up
    expected = MTAffectCollator.for_dataset(split)([split.with_format(None)[int(i)] for i in rows])
    for modality in dims:
        features, mask = _pad(*batch[f"{modality}_features"], rows)
        torch.testing.assert_close(features, expected[f"{modality}_features"])
        assert torch.equal(mask, expected[f"{modality}_mask"])
    assert not expected["audio_mask"][1].any() and expected["audio_mask"][2].sum() == 1
    sliced = _arrow_batch(table.slice(4, 6), dims)  # a batch that starts mid-table
    features, _ = _pad(*sliced["text_features"], np.arange(6))
    torch.testing.assert_close(features[0, : len(split[4]["text_features"])], torch.tensor(split[4]["text_features"]))


# ---------------------------------------------------------------------------------------------
# Ablations
# ---------------------------------------------------------------------------------------------


def test_ablation_replace_hides_gold_and_labels_every_row(saved, emotion_teacher):
    meld = saved["synthetic_meld"]
    before = copy.deepcopy(meld)
    with pytest.raises(TeacherError, match="emotion/iemocap but corpus 'synthetic_meld' uses emotion/meld"):
        add_weak_labels(meld, emotion_teacher, "emotion", ablation="replace", cache=False)
    out = add_weak_labels(meld, emotion_teacher, "emotion", ablation="replace", convert=True, cache=False)
    assert isinstance(out, DatasetDict) and list(out) == list(meld)
    validate_corpus(out)
    for name, split in out.items():
        assert not _np(split, "emotion_mask").any() and not _np(split, "emotion").any()
        assert not _np(split, "emotion_multilabel").any()
        assert _np(split, "emotion_weak_mask").any(1).all()
        # the other task's gold stays
        assert _same_column(split, meld[name], "sentiment")
        # the input is untouched
        assert all(_same_column(meld[name], before[name], column) for column in meld[name].column_names)
    assert "emotion" not in get_corpus_info(out).tasks and "sentiment" in get_corpus_info(out).tasks
    assert get_corpus_info(meld).tasks == ["emotion", "sentiment"]
    notes = get_corpus_info(out).notes["weak_labels"]["emotion"]
    assert notes["ablation"] == "replace" and notes["teacher_sha256"] == teacher_fingerprint(emotion_teacher)
    assert notes["conversion"] == "iemocap -> meld through the union labels ['anger', 'happiness', 'neutral', 'sadness']"

    report = weak_label_quality(out, "emotion", gold=meld)
    assert set(report) == set(meld)
    test_report = report["test"]
    assert test_report["n_compared"] > 0 and 0 <= test_report["accuracy"] <= 1
    assert "majority_accuracy" in test_report and "weighted_f1" in test_report
    # MELD has labels IEMOCAP (the teacher's corpus) lacks: those rows are counted, not scored
    assert sum(split_report["n_gold_label_unknown_to_teacher"] for split_report in report.values()) > 0


def test_ablation_hide_needs_no_teacher(saved):
    mosei = saved["synthetic_mosei"]["train"]
    out = add_weak_labels(mosei, None, "sentiment", ablation="hide")
    validate_corpus(out)
    assert not _np(out, "sentiment_mask").any() and (_np(out, "sentiment_class") == -1).all()
    assert not _np(out, "sentiment_weak_mask").any()
    np.testing.assert_array_equal(_np(out, "emotion"), _np(mosei, "emotion"))
    with pytest.raises(ValueError, match="teacher is required"):
        add_weak_labels(mosei, None, "sentiment")


def test_quality_on_label_gold_and_when_nothing_overlaps(saved, sarcasm_teacher, sentiment_teacher):
    mustard = saved["synthetic_mustard"]["train"]
    out = add_weak_labels(mustard, sarcasm_teacher, "sarcasm", label_gold=True, cache=False)
    np.testing.assert_array_equal(_np(out, "sarcasm"), _np(mustard, "sarcasm"))
    report = weak_label_quality(out, "sarcasm")
    assert report["n_compared"] == report["n_gold"] == mustard.num_rows
    assert {"accuracy", "weighted_f1", "majority_accuracy"} <= set(report)
    meld = saved["synthetic_meld"]["test"]
    sentiment = weak_label_quality(
        add_weak_labels(meld, sentiment_teacher, "sentiment", label_gold=True, convert=True, cache=False), "sentiment"
    )
    assert {"accuracy", "weighted_f1", "Corr", "MAE", "majority_accuracy"} <= set(sentiment)
    assert weak_label_quality(mustard, "sarcasm")["n_compared"] == 0  # no weak labels: nothing to compare


# ---------------------------------------------------------------------------------------------
# Caching
# ---------------------------------------------------------------------------------------------


def test_cache_hit_on_rerun_and_miss_on_changed_teacher_or_option(saved, sarcasm_teacher, tmp_path):
    corpus = _fresh_copy(saved["synthetic_mosei"], tmp_path)
    teacher = copy.deepcopy(sarcasm_teacher)
    counter = ForwardCounter(teacher)
    first = add_weak_labels(corpus, teacher, "sarcasm")
    assert counter.calls > 0
    calls = counter.calls
    files = sorted(p.name for p in (tmp_path / "copy" / "train").iterdir())
    assert any(name.startswith("cache-weak-") for name in files)

    again = add_weak_labels(corpus, teacher, "sarcasm")
    assert counter.calls == calls  # cache hit: the teacher did not run
    for name in corpus:
        assert again[name]["sarcasm_weak"] == first[name]["sarcasm_weak"]
        assert again[name].info.description == first[name].info.description

    add_weak_labels(corpus, teacher, "sarcasm", threshold=0.5)  # another option: recomputed
    assert counter.calls > calls
    calls = counter.calls
    with torch.no_grad():
        next(teacher.heads.parameters()).add_(0.5)  # changed weights: recomputed
    changed = add_weak_labels(corpus, teacher, "sarcasm")
    assert counter.calls > calls
    assert changed["train"]["sarcasm_weak"] != first["train"]["sarcasm_weak"]
    calls = counter.calls
    add_weak_labels(corpus, teacher, "sarcasm", cache=False)  # cache=False always recomputes...
    assert counter.calls > calls
    assert sorted(p.name for p in (tmp_path / "copy" / "train").iterdir()) == sorted(
        set(files) | {p.name for p in (tmp_path / "copy" / "train").iterdir() if p.name.startswith("cache-")}
    )
    counter.close()


def test_cache_does_not_write_when_disabled_and_in_memory_recomputes(saved, sarcasm_teacher, tmp_path):
    corpus = _fresh_copy(saved["synthetic_mustard"], tmp_path)
    before = sorted(p.name for p in (tmp_path / "copy" / "train").iterdir())
    add_weak_labels(corpus["train"], sarcasm_teacher, "sarcasm", label_gold=True, cache=False)
    assert sorted(p.name for p in (tmp_path / "copy" / "train").iterdir()) == before
    in_memory = make_synthetic_corpus("synthetic_mustard", size_scale=0.05)["train"]
    counter = ForwardCounter(sarcasm_teacher)
    try:
        add_weak_labels(in_memory, sarcasm_teacher, "sarcasm", label_gold=True)
        add_weak_labels(in_memory, sarcasm_teacher, "sarcasm", label_gold=True)
    finally:
        counter.close()
    assert counter.calls == 2  # documented: in-memory datasets have no cache folder


# ---------------------------------------------------------------------------------------------
# Mismatched or broken teachers
# ---------------------------------------------------------------------------------------------


def test_wrong_task_and_missing_record(saved, sentiment_teacher):
    iemocap = saved["synthetic_iemocap"]["test"]
    with pytest.raises(TeacherError, match=r"predicts \['sentiment'\].*cannot label 'emotion'"):
        add_weak_labels(iemocap, sentiment_teacher, "emotion")
    bare = MTAffectForMultiTaskAffect(MTAffectConfig.from_corpora({"m": saved["synthetic_mosei"]}, tasks=["emotion"], **TINY))
    with pytest.raises(TeacherError, match="no teacher record for emotion"):
        add_weak_labels(iemocap, bare, "emotion")
    # A union that lacks MOSEI's names cannot even build the MOSEI head.
    with pytest.raises(ValueError, match="'union' must name one distinct union emotion"):
        MTAffectConfig.from_corpora({"m": saved["synthetic_mosei"]}, tasks=["emotion"], emotion_labels=["pos", "neg"], **TINY)
    with pytest.raises(ValueError, match="Unknown task"):
        add_weak_labels(iemocap, sentiment_teacher, "humour")
    with pytest.raises(ValueError, match="threshold"):
        add_weak_labels(iemocap, sentiment_teacher, "sentiment", threshold=2)


def test_feature_set_the_teacher_was_not_built_or_trained_for(saved, sarcasm_teacher):
    own = make_synthetic_corpus("synthetic_mustard", size_scale=0.05, shared_features=False)
    with pytest.raises(TeacherError, match=r"built for feature sets \['synthetic-cmu'\]; corpus 'synthetic_mustard' uses 'synthetic-mustard'.*mtaffect extract"):
        add_weak_labels(own, sarcasm_teacher, "sarcasm", label_gold=True)
    # built with a projection for it, but never trained on it
    config = MTAffectConfig.from_corpora({"cmu": saved["synthetic_mustard"], "own": own}, tasks=["sarcasm"], **TINY)
    model = MTAffectForMultiTaskAffect(config)
    record_teacher(model, TeacherRecord(task="sarcasm", trained_on={CMU: ["text", "audio", "visual"]}))
    with pytest.raises(TeacherError, match="never trained"):
        add_weak_labels(own, model, "sarcasm", label_gold=True)
    # same feature-set name, other dims
    renamed = own["train"].map(lambda names: {"feature_set": [CMU] * len(names)}, batched=True, input_columns="feature_set")
    with pytest.raises(TeacherError, match="dims"):
        add_weak_labels(renamed, sarcasm_teacher, "sarcasm", label_gold=True)


def test_untrained_modality_is_left_out(saved):
    """A teacher trained on MELD (text+audio) labels MOSEI without its visual features."""
    teacher = _teacher("sentiment", {"synthetic_meld": saved["synthetic_meld"]})
    iemocap = saved["synthetic_iemocap"]["test"]
    out = add_weak_labels(iemocap, teacher, "sentiment", cache=False)
    reference = add_weak_labels(iemocap.remove_columns("visual_features"), teacher, "sentiment", cache=False)
    np.testing.assert_allclose(_np(out, "sentiment_weak"), _np(reference, "sentiment_weak"), atol=1e-6)


def test_broken_teacher_folders(sarcasm_teacher, saved, tmp_path):
    data = saved["synthetic_mustard"]["test"]
    with pytest.raises(FileNotFoundError, match="no such teacher folder"):
        add_weak_labels(data, tmp_path / "absent", "sarcasm")
    good = tmp_path / "good"
    sarcasm_teacher.save_pretrained(good)
    assert load_teacher(good, "sarcasm") is not None

    def broken(name, edit):
        folder = tmp_path / name
        sarcasm_teacher.save_pretrained(folder)
        edit(folder)
        return folder

    no_config = broken("no_config", lambda f: (f / "config.json").unlink())
    bad_json = broken("bad_json", lambda f: (f / "config.json").write_text("{not json"))
    other_type = broken(
        "other_type",
        lambda f: (f / "config.json").write_text(json.dumps({**json.loads((f / "config.json").read_text()), "model_type": "bert"})),
    )
    no_weights = broken("no_weights", lambda f: (f / "model.safetensors").unlink())
    truncated = broken(
        "truncated", lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:100])
    )
    for folder, message in [
        (no_config, "no config.json"),
        (bad_json, "not valid JSON"),
        (other_type, "model_type is 'bert'"),
        (no_weights, str(no_weights)),
        (truncated, str(truncated)),
    ]:
        with pytest.raises(TeacherError, match=message):
            add_weak_labels(data, folder, "sarcasm", label_gold=True)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def test_cli_weak_label(saved, sarcasm_teacher, tmp_path, capsys):
    from mtaffect.cli.main import main

    corpus_dir, teacher_dir, output = tmp_path / "mosei", tmp_path / "teacher", tmp_path / "out"
    saved["synthetic_mosei"].save_to_disk(str(corpus_dir))
    sarcasm_teacher.save_pretrained(teacher_dir)
    args = ["weak-label", "--teacher", str(teacher_dir), "--task", "sarcasm", "--input", str(corpus_dir)]
    assert main([*args, "--output", str(output), "--threshold", "0.2", "--report", str(tmp_path / "q.json")]) == 0
    printed = capsys.readouterr().out
    assert "weak sarcasm" in printed and f"saved to {output}" in printed
    labelled = load_from_disk(str(output))
    assert isinstance(labelled, DatasetDict) and list(labelled) == ["train", "validation", "test"]
    confidence = _np(labelled["train"], "sarcasm_weak_confidence")
    np.testing.assert_array_equal(_np(labelled["train"], "sarcasm_weak_mask"), confidence >= 0.2)
    summary = json.loads((tmp_path / "q.json").read_text())["train"]
    assert summary["weak"] == int((confidence >= 0.2).sum()) and summary["gold"] == 0  # MOSEI: no sarcasm gold

    replaced = tmp_path / "replaced"
    emotion_dir = tmp_path / "emotion_teacher"
    _teacher("emotion", {"synthetic_mosei": saved["synthetic_mosei"]}).save_pretrained(emotion_dir)
    assert main([
        "weak-label", "--teacher", str(emotion_dir), "--task", "emotion", "--input", str(corpus_dir),
        "--output", str(replaced), "--overwrite-gold", "--report", str(tmp_path / "r.json"),
    ]) == 0
    assert "teacher vs gold on" in capsys.readouterr().out
    quality = json.loads((tmp_path / "r.json").read_text())["test"]["quality"]
    assert quality["n_compared"] == saved["synthetic_mosei"]["test"].num_rows and "weighted_acc" in quality

    assert main([*args, "--output", str(output)]) == 2  # an earlier result, not replaced without --overwrite
    assert "earlier `mtaffect weak-label`" in capsys.readouterr().err
    assert main([*args, "--output", str(corpus_dir / "inside")]) == 2
    assert "inside --input" in capsys.readouterr().err
    assert main(["weak-label", "--task", "sentiment", "--input", str(corpus_dir), "--output", str(tmp_path / "o2")]) == 2
    assert "--teacher is required" in capsys.readouterr().err

    hidden = tmp_path / "hidden"
    assert main(["weak-label", "--task", "sentiment", "--ablation", "hide", "--input", str(corpus_dir), "--output", str(hidden)]) == 0
    assert not _np(load_from_disk(str(hidden))["test"], "sentiment_mask").any()


# ---------------------------------------------------------------------------------------------
# Teachers trained with the MultiTaskTrainer, and their agreement with gold labels
# ---------------------------------------------------------------------------------------------


def test_trained_teacher_beats_chance_on_another_corpus(tmp_path):
    """A MOSEI sentiment teacher labels MELD; its labels agree with MELD's gold classes.

    MELD has no visual features, so the teacher is trained on MOSEI's text and audio (a teacher
    never sees a modality missing in training, and would meet it missing on MELD).
    """
    from mtaffect.data.corpora.synthetic import make_synthetic_family
    from mtaffect.teachers import train_teacher

    family = make_synthetic_family(size_scale=0.25, max_length=8, corpora=["synthetic_mosei", "synthetic_meld"])
    meld = family["synthetic_meld"]
    mosei = family["synthetic_mosei"].remove_columns("visual_features")
    path = train_teacher(
        "sentiment",
        {"synthetic_mosei": mosei},
        tmp_path / "teacher",
        label_corpora={"synthetic_meld": meld},
        model_kwargs={"hidden_size": 16, "encoder_type": "mean"},
        training_args={
            "num_train_epochs": 15,
            "per_device_train_batch_size": 16,
            "eval_strategy": "steps",
            "save_strategy": "steps",
            "eval_steps": 50,
            "save_steps": 50,
            "disable_tqdm": True,
        },
    )
    assert (path / "model.safetensors").is_file() and not (path / "checkpoints").exists()
    teacher = load_teacher(path, "sentiment")
    record = get_teacher_record(teacher, "sentiment")
    assert record.corpora == ["synthetic_mosei"] and record.trained_on == {CMU: ["text", "audio"]}
    assert "eval_combined_score" in record.notes["validation"]

    labelled = add_weak_labels(meld, path, "sentiment", label_gold=True, convert=True, cache=False)
    np.testing.assert_array_equal(_np(labelled["test"], "sentiment_class"), _np(meld["test"], "sentiment_class"))
    report = weak_label_quality(labelled, "sentiment")
    rows = sum(r["n_compared"] for r in report.values())
    accuracy = sum(r["accuracy"] * r["n_compared"] for r in report.values()) / rows
    majority = sum(r["majority_accuracy"] * r["n_compared"] for r in report.values()) / rows
    assert rows == sum(split.num_rows for split in meld.values())
    # seed 0 gives 0.64 vs 0.44 (training seeds 0-5: 0.54-0.66; Corr 0.57-0.73 on every split)
    assert accuracy > majority + 0.05, report
    assert all(r["Corr"] > 0.4 and r["weighted_f1"] > r["majority_weighted_f1"] for r in report.values()), report

    # the replace ablation scores the same labels against the hidden gold
    replaced = add_weak_labels(meld["test"], path, "sentiment", ablation="replace", convert=True, cache=False)
    assert weak_label_quality(replaced, "sentiment", gold=meld["test"])["accuracy"] == report["test"]["accuracy"]


def test_train_teacher_checks_corpora_before_training(tiny_family, tmp_path):
    from mtaffect.teachers import train_teacher

    own = make_synthetic_corpus("synthetic_mustard", size_scale=0.05, shared_features=False)
    with pytest.raises(TeacherError, match=r"label_corpora\['own'\].*built for feature sets \['synthetic-cmu'\].*mtaffect extract"):
        train_teacher("sarcasm", tiny_family, tmp_path / "t", label_corpora={"own": own})
    with pytest.raises(TeacherError, match="None of the corpora .* has gold sarcasm"):
        train_teacher("sarcasm", {"synthetic_mosei": tiny_family["synthetic_mosei"]}, tmp_path / "t")
    assert not (tmp_path / "t").exists()
