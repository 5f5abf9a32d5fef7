"""MTAffectConfig: defaults agree with the task registry, validation says what to fix, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mtaffect.configuration_mtaffect import (
    DEFAULT_EMOTION_LABELS,
    DEFAULT_SENTIMENT_RANGE,
    MODALITIES,
    TASK_NAMES,
    MTAffectConfig,
)
from mtaffect.data.schema import MODALITIES as SCHEMA_MODALITIES
from mtaffect.data.schema import CorpusInfo, get_corpus_info, set_corpus_info
from mtaffect.tasks import EMOTION_LABELS, SENTIMENT_RANGE
from mtaffect.tasks import TASK_NAMES as REGISTRY_TASKS

CMU = {"cmu": {"text": 300, "audio": 74, "visual": 35}}


def test_standalone_copies_equal_the_registry():
    # The config file is shipped without mtaffect (trust_remote_code), so it holds copies.
    assert DEFAULT_EMOTION_LABELS == EMOTION_LABELS
    assert TASK_NAMES == REGISTRY_TASKS
    assert MODALITIES == SCHEMA_MODALITIES
    assert tuple(DEFAULT_SENTIMENT_RANGE) == tuple(SENTIMENT_RANGE)
    config = MTAffectConfig(feature_sets=CMU)
    assert config.emotion_labels == list(EMOTION_LABELS)
    assert config.tasks == list(REGISTRY_TASKS)


def test_defaults_are_derived_from_feature_sets_and_tasks():
    config = MTAffectConfig(
        feature_sets={"b": {"visual": 35, "text": 300}, "a": {"audio": 74}},
        tasks=["sarcasm", "emotion"],
        task_loss_weights={"emotion": 2.0},
        hidden_size=16,
    )
    assert config.modalities == ["text", "audio", "visual"]  # canonical fusion order
    assert config.feature_sets["b"] == {"text": 300, "visual": 35}
    assert config.tasks == ["emotion", "sarcasm"]
    assert config.task_loss_weights == {"emotion": 2.0, "sarcasm": 1.0}
    assert config.intermediate_size == 64
    assert config.model_type == "mtaffect"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tasks": ["emotion", "humour"]}, "Unknown task 'humour'"),
        ({"tasks": []}, "at least one"),
        ({"feature_sets": {"cmu": {"txt": 300}}}, "unknown modality 'txt'"),
        ({"feature_sets": {"cmu": {"text": 0}}}, "positive int"),
        ({"feature_sets": {"cmu": {"text": 300.0}}}, "positive int"),
        ({"feature_sets": {"cmu": {"text": "300"}}}, "positive int"),
        ({"feature_sets": {"cmu": {"text": True}}}, "positive int"),
        ({"feature_sets": {"cmu": {}}}, "at least one modality"),
        ({"feature_sets": {"glove.840B": {"text": 300}}}, "without '.'"),
        ({"feature_sets": {"keys": {"text": 300}}}, "Invalid feature set name"),
        ({"feature_sets": [("cmu", {"text": 300})]}, "feature_sets must be a dict"),
        ({"hidden_size": "64"}, "hidden_size must be a positive int"),
        ({"hidden_size": 0}, "hidden_size must be a positive int"),
        ({"hidden_size": 30, "num_heads": 4}, "num_heads=4 must divide hidden_size=30"),
        ({"hidden_size": 15, "num_heads": 1, "encoder_type": "bilstm"}, "must be even"),
        ({"encoder_type": "gru"}, "Unknown encoder_type 'gru'"),
        ({"fusion": "tensor"}, "Unknown fusion 'tensor'"),
        ({"num_layers": 0}, "num_layers"),
        ({"dropout": 1.0}, "dropout must lie in [0, 1)"),
        ({"max_frames": -3}, "max_frames"),
        ({"emotion_labels": ["anger", "anger"]}, "distinct"),
        ({"emotion_pos_weight": [1.0, 2.0]}, "one positive weight per emotion label"),
        ({"emotion_pos_weight": [1.0] * 6 + [0.0]}, "one positive weight per emotion label"),
        ({"emotion_single_label_loss": "focal"}, "emotion_single_label_loss"),
        ({"sentiment_range": (3, -3)}, "low < high"),
        ({"sentiment_range": (1,)}, "two numbers"),
        ({"weak_loss_weight": -0.5}, "weak_loss_weight"),
        ({"weak_label_mode": "fuzzy"}, "Unknown weak_label_mode 'fuzzy'"),
        ({"weak_hard_threshold": 1.0}, "weak_hard_threshold"),
        ({"weak_use_confidence": "yes"}, "weak_use_confidence"),
        ({"weak_confidence_threshold": 2}, "weak_confidence_threshold"),
        ({"task_loss_weights": {"humour": 1.0}}, "unknown task 'humour'"),
        ({"task_loss_weights": {"emotion": -1.0}}, ">= 0"),
        ({"modalities": ["text"]}, "lacks ['audio', 'visual']"),
        ({"modalities": ["text", "audio", "visual", "smell"]}, "modalities must be distinct names"),
        ({"initializer_range": 0}, "initializer_range"),
    ],
)
def test_bad_arguments_raise_errors_that_say_what_to_fix(kwargs, message):
    arguments = {"feature_sets": CMU, "hidden_size": 16, **kwargs}
    with pytest.raises(ValueError, match=_literal(message)):
        MTAffectConfig(**arguments)


def _literal(text: str) -> str:
    import re

    return re.escape(text)


def test_unknown_feature_set_names_the_known_ones_and_the_fix():
    config = MTAffectConfig(feature_sets=CMU)
    assert config.check_feature_set("cmu") == CMU["cmu"]
    with pytest.raises(ValueError, match="Unknown feature set 'bert'.*'cmu'.*add_feature_set"):
        config.check_feature_set("bert")


def test_json_round_trip_keeps_every_choice(tmp_path):
    config = MTAffectConfig(
        feature_sets={"cmu": {"text": 300, "audio": 74}, "mustard": {"text": 96, "visual": 256}},
        hidden_size=12,
        num_heads=3,
        encoder_type="transformer",
        fusion="late",
        tasks=["emotion", "sarcasm"],
        emotion_pos_weight=[1, 2, 3, 4, 5, 6, 7, 8, 9],
        weak_loss_weight=0.3,
        weak_label_mode="hard",
        weak_use_confidence=True,
        weak_confidence_threshold=0.2,
        task_loss_weights={"sarcasm": 0.5},
        max_frames=50,
    )
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["auto_map"] == {"AutoConfig": "configuration_mtaffect.MTAffectConfig"}
    assert (tmp_path / "configuration_mtaffect.py").is_file()
    loaded = MTAffectConfig.from_pretrained(tmp_path)
    for key in (
        "feature_sets", "modalities", "hidden_size", "num_heads", "fusion", "tasks", "emotion_labels",
        "sentiment_range", "emotion_pos_weight", "weak_loss_weight", "weak_label_mode", "weak_use_confidence",
        "weak_confidence_threshold", "task_loss_weights", "max_frames", "intermediate_size",
    ):
        assert getattr(loaded, key) == getattr(config, key), key
    assert loaded.emotion_pos_weight == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]


def test_from_corpora_reads_feature_sets_and_gold_tasks(tiny_family):
    config = MTAffectConfig.from_corpora(tiny_family, hidden_size=8, num_heads=2)
    assert config.feature_sets == {"synthetic-cmu": {"text": 300, "audio": 74, "visual": 35}}
    assert config.tasks == ["emotion", "sentiment", "sarcasm"]
    assert config.hidden_size == 8

    single = MTAffectConfig.from_corpora(tiny_family["synthetic_mustard"])
    assert single.tasks == ["sarcasm"]
    listed = MTAffectConfig.from_corpora(
        [tiny_family["synthetic_meld"], tiny_family["synthetic_iemocap"]["train"]], tasks=["emotion"]
    )
    assert listed.tasks == ["emotion"]
    assert listed.modalities == ["text", "audio", "visual"]


def test_from_corpora_separate_feature_sets_and_conflicting_dims():
    from mtaffect.data.corpora.synthetic import make_synthetic_corpus

    mosei = make_synthetic_corpus("synthetic_mosei", size_scale=0.02, min_length=2, max_length=4)
    mustard = make_synthetic_corpus("synthetic_mustard", size_scale=0.02, min_length=2, max_length=4, shared_features=False)
    config = MTAffectConfig.from_corpora({"mosei": mosei, "mustard": mustard})
    assert set(config.feature_sets) == {"synthetic-cmu", "synthetic-mustard"}
    assert config.feature_sets["synthetic-mustard"] == get_corpus_info(mustard).dims

    info = get_corpus_info(mustard)
    info.feature_set = "synthetic-cmu"  # claims the CMU extractors but has other dims
    set_corpus_info(mustard, CorpusInfo(**{**info.__dict__}))
    with pytest.raises(ValueError, match="Feature set 'synthetic-cmu' has text dim 300 in corpus 'mosei' but 96"):
        MTAffectConfig.from_corpora({"mosei": mosei, "mustard": mustard})


def test_from_corpora_balanced_pos_weight_matches_counts(tiny_family):
    config = MTAffectConfig.from_corpora(tiny_family, emotion_pos_weight="balanced")
    train = tiny_family["synthetic_mosei"]["train"].with_format("numpy")
    values, mask = np.asarray(train["emotion"]), np.asarray(train["emotion_mask"])
    for i, label in enumerate(EMOTION_LABELS):
        known, positives = mask[:, i].sum(), (values[:, i] * mask[:, i]).sum()
        expected = (known - positives) / positives if 0 < positives < known else 1.0
        assert config.emotion_pos_weight[i] == pytest.approx(expected), label
    assert config.emotion_pos_weight[EMOTION_LABELS.index("neutral")] == 1.0  # MOSEI has no neutral


def test_the_default_config_builds_saves_and_reloads_a_working_model(tmp_path):
    """Like every transformers config, MTAffectConfig() with its defaults builds a model."""
    import torch
    from transformers import AutoConfig, AutoModel

    import mtaffect  # noqa: F401  (registers mtaffect with the Auto classes)
    from mtaffect.configuration_mtaffect import DEFAULT_FEATURE_SETS

    model = AutoModel.from_config(AutoConfig.for_model("mtaffect"))
    assert model.config.feature_sets == DEFAULT_FEATURE_SETS and model.config.tasks == list(REGISTRY_TASKS)
    (name, dims), = DEFAULT_FEATURE_SETS.items()
    features = torch.randn(2, 5, dims["text"])
    model.eval()
    out = model(feature_set=name, text_features=features, text_mask=torch.ones(2, 5, dtype=torch.bool))
    assert out.emotion_logits.shape == (2, len(EMOTION_LABELS)) and out.sentiment_score.shape == (2,)
    model.save_pretrained(tmp_path / "default")
    reloaded = AutoModel.from_pretrained(tmp_path / "default").eval()
    assert reloaded.config.feature_sets == DEFAULT_FEATURE_SETS
    again = reloaded(feature_set=name, text_features=features, text_mask=torch.ones(2, 5, dtype=torch.bool))
    torch.testing.assert_close(again.sentiment_score, out.sentiment_score)


def test_the_default_feature_set_is_what_the_default_text_extractor_writes():
    from mtaffect.configuration_mtaffect import DEFAULT_FEATURE_SETS
    from mtaffect.data.extract.text import DEFAULT_TEXT_MODEL, default_text_model_path

    (name, dims), = DEFAULT_FEATURE_SETS.items()
    assert name == f"text:{DEFAULT_TEXT_MODEL}:tokens"  # TextExtractor().name, tokens (not pooled)
    try:
        folder = default_text_model_path()
    except ImportError:
        pytest.skip("the default text encoder (mtaffect[text]) is not installed")
    assert dims == {"text": json.loads((folder / "config.json").read_text())["hidden_size"]}
