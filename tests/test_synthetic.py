"""The synthetic family: deterministic per seed, shaped like the real corpora, with real latent structure."""

from __future__ import annotations

import numpy as np
import pytest

from mtaffect.data.corpora.synthetic import SPECS, make_synthetic_corpus
from mtaffect.data.schema import feature_dims, get_corpus_info
from mtaffect.tasks import EMOTION_LABELS


def _numpy(split, column):
    return np.asarray(split.with_format("numpy")[column])


def test_same_seed_same_bytes_other_seed_differs():
    a = make_synthetic_corpus("synthetic_mustard", seed=3, size_scale=0.1)
    b = make_synthetic_corpus("synthetic_mustard", seed=3, size_scale=0.1)
    c = make_synthetic_corpus("synthetic_mustard", seed=4, size_scale=0.1)
    for split in ("train", "validation", "test"):
        assert a[split].data.equals(b[split].data)
    assert not np.array_equal(a["train"]["text_features"][0], c["train"]["text_features"][0])
    assert not np.array_equal(_numpy(a["train"], "sarcasm"), _numpy(c["train"], "sarcasm"))


def test_shapes_follow_the_real_corpora(tiny_family):
    assert feature_dims(tiny_family["synthetic_mosei"]["train"].features) == {"text": 300, "audio": 74, "visual": 35}
    assert feature_dims(tiny_family["synthetic_meld"]["train"].features) == {"text": 300, "audio": 74}
    assert get_corpus_info(tiny_family["synthetic_mosei"]).tasks == ["sentiment", "emotion"]
    native = make_synthetic_corpus("synthetic_mustard", size_scale=0.05, shared_features=False, feature_scale=0.125)
    assert feature_dims(native["train"].features) == {"text": 96, "audio": 35, "visual": 256}
    assert get_corpus_info(native).feature_set == "synthetic-mustard"


def test_label_spaces(tiny_family):
    mosei = tiny_family["synthetic_mosei"]["train"]
    mask = _numpy(mosei, "emotion_mask")
    assert mask.all(0).tolist() == [name not in ("neutral", "peaceful", "powerful") for name in EMOTION_LABELS]
    assert _numpy(mosei, "emotion_multilabel").all()
    iemocap = tiny_family["synthetic_iemocap"]["train"]
    assert _numpy(iemocap, "emotion_mask")[0].tolist() == [True, False, False, True, True, False, True, False, False]
    assert (_numpy(iemocap, "emotion").sum(1) == 1).all()
    meld = tiny_family["synthetic_meld"]["train"]
    assert set(_numpy(meld, "sentiment").tolist()) <= {-1.0, 0.0, 1.0}
    assert set(_numpy(meld, "sentiment_class").tolist()) <= {0, 1, 2}
    assert set(_numpy(meld, "sentiment_num_classes").tolist()) == {3}  # polarity rows, a CE head's
    assert get_corpus_info(tiny_family["synthetic_meld"]).label_spaces == {
        "emotion": "emotion/meld", "sentiment": "sentiment/polarity"
    }
    assert set(_numpy(mosei, "sentiment_num_classes").tolist()) == {0}  # score rows
    mustard = tiny_family["synthetic_mustard"]["train"]
    assert _numpy(mustard, "sarcasm_mask").all() and not _numpy(mustard, "sentiment_mask").any()


def test_sizes_scale():
    corpus = make_synthetic_corpus("synthetic_iemocap", size_scale=0.5)
    assert [corpus[s].num_rows for s in ("train", "validation", "test")] == [n // 2 for n in SPECS["synthetic_iemocap"].sizes]


def test_latent_structure_correlates_tasks():
    """Sentiment and MOSEI-style emotions share valence: happiness goes with positive scores, sadness with negative."""
    train = make_synthetic_corpus("synthetic_mosei", seed=1)["train"]
    score = _numpy(train, "sentiment")
    emotion = _numpy(train, "emotion")
    happiness = emotion[:, EMOTION_LABELS.index("happiness")]
    sadness = emotion[:, EMOTION_LABELS.index("sadness")]
    assert np.corrcoef(score, happiness)[0, 1] > 0.4
    assert np.corrcoef(score, sadness)[0, 1] < -0.3
    assert 0.25 < happiness.mean() < 0.6 and sadness.mean() < happiness.mean()


def test_features_carry_the_signal():
    """A linear probe on mean-pooled features predicts sentiment well above chance (the task is learnable)."""
    from sklearn.linear_model import Ridge

    corpus = make_synthetic_corpus("synthetic_mosei", seed=2)

    def pooled(split):
        return np.concatenate([_pooled(split, m) for m in ("text", "audio", "visual")], axis=1)

    probe = Ridge(alpha=10.0).fit(pooled(corpus["train"]), _numpy(corpus["train"], "sentiment"))
    predicted = probe.predict(pooled(corpus["test"]))
    assert np.corrcoef(predicted, _numpy(corpus["test"], "sentiment"))[0, 1] > 0.5


def _pooled(split, modality):
    """Each row's features averaged over time (read as one column: row by row is ~8x slower)."""
    return np.stack([np.asarray(sequence).mean(0) for sequence in split.with_format("numpy")[f"{modality}_features"]])


def test_sarcasm_is_incongruity_between_text_and_audio():
    """Valence read from text exceeds valence read from audio on sarcastic utterances only.

    Probes fitted on the MOSEI look-alike (same feature set, so the same extractor maps) read
    valence from one modality; on the MUStARD look-alike the words of sarcastic utterances
    sound more positive than their prosody.
    """
    from sklearn.linear_model import Ridge

    mosei = make_synthetic_corpus("synthetic_mosei", seed=0)["train"]
    mustard = make_synthetic_corpus("synthetic_mustard", seed=0)["train"]
    score = _numpy(mosei, "sentiment")
    gap = np.zeros(mustard.num_rows)
    for modality, sign in (("text", 1.0), ("audio", -1.0)):
        probe = Ridge(alpha=10.0).fit(_pooled(mosei, modality), score)
        gap += sign * probe.predict(_pooled(mustard, modality))
    sarcasm = _numpy(mustard, "sarcasm").astype(bool)
    assert 0.35 < sarcasm.mean() < 0.65
    assert gap[sarcasm].mean() > gap[~sarcasm].mean() + 0.5


def test_bad_arguments():
    with pytest.raises(ValueError, match="Unknown synthetic corpus"):
        make_synthetic_corpus("synthetic_nope")
    with pytest.raises(ValueError, match="size_scale"):
        make_synthetic_corpus("synthetic_mosei", size_scale=0)
