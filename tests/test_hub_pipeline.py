"""The "multimodal-affect" pipeline on local checkpoints (the Hub round trip is in test_hub.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import pipeline
from transformers.pipelines import PIPELINE_REGISTRY

import mtaffect.pipeline  # noqa: F401  (registers the task)
from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
from mtaffect.pipeline import MultimodalAffectPipeline


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    config = MTAffectConfig(
        feature_sets={"cmu": {"text": 6, "audio": 4}, "other": {"text": 5}}, hidden_size=8, num_heads=2,
    )
    model = MTAffectForMultiTaskAffect(config)
    folder = tmp_path_factory.mktemp("pipeline-model")
    model.save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module")
def classifier(checkpoint):
    return pipeline("multimodal-affect", model=str(checkpoint[0]))


def _features(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"text_features": rng.normal(size=(5, 6)).astype(np.float32),
            "audio_features": rng.normal(size=(3, 4)).astype(np.float32)}


def test_task_is_registered():
    assert "multimodal-affect" in PIPELINE_REGISTRY.get_supported_tasks()


def test_features_give_the_model_predictions(classifier, checkpoint):
    _, model = checkpoint
    features = _features()
    assert isinstance(classifier, MultimodalAffectPipeline)
    result = classifier(features)
    batch = {"feature_set": "cmu"}
    for key, value in features.items():
        modality = key.removesuffix("_features")
        batch[key] = torch.from_numpy(value)[None]
        batch[f"{modality}_mask"] = torch.ones(1, len(value), dtype=torch.bool)
    expected = model.predict(batch)[0]
    assert result["emotion"]["label"] == expected["emotion"]["label"]
    assert result["sentiment"]["score"] == pytest.approx(expected["sentiment"]["score"], abs=1e-6)
    assert result["sarcasm"]["score"] == pytest.approx(expected["sarcasm"]["score"], abs=1e-6)
    assert result["sentiment"]["label"] in ("negative", "neutral", "positive")
    both = classifier([features, _features(1)])
    assert len(both) == 2 and both[0] == result


def test_feature_set_is_inferred_from_dims_or_named(classifier):
    five = {"text_features": np.ones((4, 5), np.float32)}
    assert classifier(five) == classifier(five, feature_set="other")
    only = classifier(_features(), heads=["sarcasm"], threshold=0.0)
    assert set(only) == {"sarcasm"} and only["sarcasm"]["label"] is True


@pytest.mark.parametrize(
    ("inputs", "kwargs", "message"),
    [
        ({"text_features": np.ones((4, 7), np.float32)}, {}, "Cannot tell which feature set"),
        ({"text_features": np.ones((4, 7), np.float32)}, {"feature_set": "cmu"}, "expects 6"),
        ({"visual_features": np.ones((2, 3), np.float32)}, {"feature_set": "cmu"}, "has no visual modality"),
        ({"txt_features": np.ones((4, 6), np.float32)}, {}, "Unknown input key"),
        ({"text_features": np.full((4, 6), np.nan, np.float32)}, {"feature_set": "cmu"}, "NaN"),
        ({"text_features": np.ones((4, 6), np.float32)}, {"feature_set": "nope"}, "Unknown feature set"),
        ("Oh, great.", {}, "records none"),
        (42, {}, "takes a transcript"),
    ],
)
def test_bad_inputs_fail_clearly(classifier, inputs, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        classifier(inputs, **kwargs)


def test_batched_calls_are_refused_with_a_pointer(classifier):
    with pytest.raises(ValueError, match="one utterance at a time"):
        classifier([_features(), _features(1)], batch_size=2)


def test_raw_text_goes_through_the_recorded_extractor(minilm_checkpoint):
    folder, model, extractor, name = minilm_checkpoint
    classifier = pipeline("multimodal-affect", model=str(folder))
    text = "Oh, great. Just what I needed today."
    result = classifier(text)
    assert classifier({"text": text}) == result
    features = extractor([text])[0]
    expected = model.predict({
        "feature_set": name,
        "text_features": torch.from_numpy(features)[None],
        "text_mask": torch.ones(1, features.shape[0], dtype=torch.bool),
    })[0]
    assert result["sentiment"]["score"] == pytest.approx(expected["sentiment"]["score"], abs=1e-5)
    assert result["emotion"]["label"] == expected["emotion"]["label"]
