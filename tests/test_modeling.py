"""MTAffectForMultiTaskAffect: architecture choices, exact masked losses, save/load, remote code, predict."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.data.collator import MTAffectCollator
from mtaffect.modeling_mtaffect import (
    MTAffectForMultiTaskAffect,
    MTAffectModel,
    head_module_name,
    masked_binary_loss,
    masked_emotion_loss,
    masked_l1_loss,
)
from mtaffect.tasks import EMOTION_LABELS, SENTIMENT_CLASSES, label_space
from mtaffect.tasks import sentiment_score_to_class as registry_score_to_class

CMU = {"synthetic-cmu": {"text": 300, "audio": 74, "visual": 35}}
LABEL_KEYS = ("emotion", "sentiment", "sarcasm")
#: One head per label space the synthetic family uses (what MTAffectConfig.from_corpora builds).
SPACES = ["emotion/mosei", "emotion/iemocap", "emotion/meld", "sentiment/score", "sentiment/polarity", "sarcasm/binary"]


def make_model(seed: int = 0, **overrides) -> MTAffectForMultiTaskAffect:
    arguments = {
        "feature_sets": CMU, "hidden_size": 8, "num_heads": 2, "dropout": 0.0, "label_spaces": SPACES, **overrides
    }
    torch.manual_seed(seed)
    return MTAffectForMultiTaskAffect(MTAffectConfig(**arguments))


@pytest.fixture(scope="module")
def batches(tiny_family):
    """One collated batch (6 training rows) per synthetic corpus."""
    result = {}
    for name, corpus in tiny_family.items():
        train = corpus["train"]
        result[name] = MTAffectCollator.for_dataset(train)([train[i] for i in range(6)])
    return result


@pytest.fixture(scope="module")
def empty_sequence_batch(tiny_family):
    """A MELD-like batch (no visual) where one row has an empty audio sequence and another no frames at all."""
    train = tiny_family["synthetic_meld"]["train"]
    rows = [dict(train[i]) for i in range(4)]
    rows[1]["audio_features"] = np.zeros((0, 74), np.float32)
    rows[2]["audio_features"] = np.zeros((0, 74), np.float32)
    rows[2]["text_features"] = np.zeros((0, 300), np.float32)
    return MTAffectCollator.for_dataset(train)(rows)


def inputs_only(batch):
    return {k: v for k, v in batch.items() if k == "feature_set" or k.endswith("_features") or k in _MODALITY_MASKS}


_MODALITY_MASKS = {"text_mask", "audio_mask", "visual_mask"}


def head_grads(model, head):
    return [p.grad for p in model.heads[head_module_name(head)].parameters()]


def union_index(head):
    return label_space(head).union_index()


# --------------------------------------------------------------------------------------
# Every architecture on every corpus
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fusion", ["concat", "late"])
@pytest.mark.parametrize("encoder_type", ["transformer", "bilstm", "mean"])
def test_every_encoder_and_fusion_trains_on_every_corpus(encoder_type, fusion, batches, empty_sequence_batch):
    model = make_model(encoder_type=encoder_type, fusion=fusion, dropout=0.1, num_layers=2)
    model.train()
    # Each corpus trains the heads of its own label spaces only.
    expected_terms = {
        "synthetic_mosei": {"emotion/mosei", "sentiment/score"},
        "synthetic_iemocap": {"emotion/iemocap"},
        "synthetic_meld": {"emotion/meld", "sentiment/polarity"},
        "synthetic_mustard": {"sarcasm/binary"},
    }
    widths = {"emotion/mosei": 6, "emotion/iemocap": 4, "emotion/meld": 7, "sentiment/polarity": 3}
    for name, batch in {**batches, "empty_sequences": empty_sequence_batch}.items():
        model.zero_grad()
        output = model(**batch)
        size = len(batch["emotion"])
        assert torch.isfinite(output.loss), name
        assert set(output.task_losses) == expected_terms.get(name, {"emotion/meld", "sentiment/polarity"}), name
        assert {key: tuple(value.shape) for key, value in output.head_outputs.items()} == {
            key: (size, widths[key]) if key in widths else (size,) for key in SPACES
        }
        assert output.pooled_output.shape == (size, 8)
        output.loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), name
    # The MELD-like batch has no visual modality; rows 1-2 lack audio, row 2 has no frames at all.
    encoded = model.mtaffect(**inputs_only(empty_sequence_batch))
    assert encoded.modality_present.tolist() == [
        [True, True, False], [True, False, False], [False, False, False], [True, True, False]
    ]
    assert torch.isfinite(encoded.pooled_output).all()


@pytest.mark.parametrize(
    ("encoder_type", "fusion"), [("transformer", "concat"), ("transformer", "late"), ("bilstm", "concat"), ("mean", "late")]
)
def test_absent_modality_equals_empty_modality(encoder_type, fusion, batches):
    """A modality missing from the batch and one whose rows are all empty are the same thing to the model."""
    model = make_model(encoder_type=encoder_type, fusion=fusion).eval()
    batch = inputs_only(batches["synthetic_mosei"])
    absent = {k: v for k, v in batch.items() if not k.startswith("visual")}
    empty = {**batch, "visual_mask": torch.zeros_like(batch["visual_mask"])}
    first, second = model(**absent), model(**empty)
    torch.testing.assert_close(first.pooled_output, second.pooled_output)
    for key in SPACES:
        torch.testing.assert_close(first.head_outputs[key], second.head_outputs[key])
    # ...and differs from the example with the modality.
    assert not torch.allclose(model(**batch).sentiment_score, first.sentiment_score)


def test_padding_does_not_change_predictions(batches):
    model = make_model().eval()
    batch = inputs_only(batches["synthetic_iemocap"])
    padded = dict(batch)
    for modality in ("text", "audio", "visual"):
        features, mask = batch[f"{modality}_features"], batch[f"{modality}_mask"]
        padded[f"{modality}_features"] = torch.cat([features, torch.randn(features.shape[0], 5, features.shape[2])], 1)
        padded[f"{modality}_mask"] = torch.cat([mask, torch.zeros(mask.shape[0], 5, dtype=torch.bool)], 1)
    key = "emotion/iemocap"
    torch.testing.assert_close(model(**batch).head_outputs[key], model(**padded).head_outputs[key])


# --------------------------------------------------------------------------------------
# Masked losses: exact values
# --------------------------------------------------------------------------------------


def _bce(z: float, y: float, pos_weight: float = 1.0) -> float:
    p = 1 / (1 + math.exp(-z))
    return -(pos_weight * y * math.log(p) + (1 - y) * math.log(1 - p))


def test_masked_emotion_loss_matches_hand_computation():
    logits = torch.tensor([[0.5, -1.0, 2.0, 0.0], [1.0, 2.0, -0.5, 3.0], [0.2, 0.1, -0.3, 0.4], [9.0, 9.0, 9.0, 9.0]])
    targets = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [0, 1, 1, 1], [0, 0, 0, 0]], dtype=torch.bool)
    multilabel = torch.tensor([True, False, False, True])
    pos_weight = torch.tensor([2.0, 1.0, 3.0, 1.0])

    # Row 0 (multi-label, 3 known labels): BCE mean over them; label 3 is unknown and ignored.
    bce = [_bce(0.5, 1, 2.0), _bce(-1.0, 0, 1.0), _bce(2.0, 1, 3.0)]
    multi_mean = sum(bce) / 3
    # Rows 1-2 (single-label): CE over the softmax of their known labels only.
    ce_1 = -(2.0 - math.log(math.exp(1.0) + math.exp(2.0)))
    ce_2 = -(-0.3 - math.log(math.exp(0.1) + math.exp(-0.3) + math.exp(0.4)))
    single_mean = (ce_1 + ce_2) / 2
    # Row 3 knows nothing: it must not dilute the mean. Parts are weighted by rows (1 and 2).
    expected = (1 * multi_mean + 2 * single_mean) / 3
    loss = masked_emotion_loss(logits, targets, mask, multilabel, pos_weight=pos_weight, soft=True)
    assert loss.item() == pytest.approx(expected, rel=1e-6)

    # Only the single-label part, weighted per row (e.g. by teacher confidence).
    weights = torch.tensor([1.0, 0.5, 0.25, 1.0])
    only_single = masked_emotion_loss(logits[1:3], targets[1:3], mask[1:3], multilabel[1:3], row_weight=weights[1:3])
    assert only_single.item() == pytest.approx((0.5 * ce_1 + 0.25 * ce_2) / 2, rel=1e-6)
    # Nothing known -> None (the model turns that into a graph-connected zero).
    assert masked_emotion_loss(logits, targets, torch.zeros_like(mask), multilabel) is None


def test_soft_and_hard_emotion_targets():
    logits = torch.tensor([[0.3, -0.2, 1.0], [0.5, 0.0, -1.0]])
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.6, 0.3, 0.4]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    # Single-label soft: cross-entropy against the probabilities renormalised over the known labels.
    single = torch.tensor([False, False])
    log_p0 = torch.log_softmax(torch.tensor([0.3, -0.2]), 0)
    log_p1 = torch.log_softmax(logits[1], 0)
    soft_0 = -((torch.tensor([0.7, 0.2]) / 0.9) * log_p0).sum().item()
    soft_1 = -((probs[1] / 1.3) * log_p1).sum().item()
    soft = masked_emotion_loss(logits, probs, mask, single, soft=True)
    assert soft.item() == pytest.approx((soft_0 + soft_1) / 2, rel=1e-6)
    # Single-label hard: arg-max label.
    hard = masked_emotion_loss(logits, probs, mask, single, soft=False)
    assert hard.item() == pytest.approx((-log_p0[0] - log_p1[0]).item() / 2, rel=1e-6)
    # Multi-label hard: thresholded at 0.5 (0.6 -> 1, 0.4 -> 0); soft keeps the probabilities.
    multi = torch.tensor([True, True])
    expected_hard = (
        _bce(0.3, 1) + _bce(-0.2, 0) + _bce(0.5, 1) + _bce(0.0, 0) + _bce(-1.0, 0)
    ) / 5
    assert masked_emotion_loss(logits, probs, mask, multi, soft=False).item() == pytest.approx(expected_hard, rel=1e-6)
    expected_soft = sum(
        -(p * math.log(1 / (1 + math.exp(-z))) + (1 - p) * math.log(1 - 1 / (1 + math.exp(-z))))
        for z, p, m in zip(logits.flatten().tolist(), probs.flatten().tolist(), mask.flatten().tolist())
        if m
    ) / 5
    assert masked_emotion_loss(logits, probs, mask, multi, soft=True).item() == pytest.approx(expected_soft, rel=1e-6)


def test_masked_l1_and_binary_losses_match_hand_computation():
    prediction = torch.tensor([0.5, -1.0, 2.0, 0.0])
    target = torch.tensor([1.0, 0.0, 3.0, 2.5])
    mask = torch.tensor([True, False, True, False])
    assert masked_l1_loss(prediction, target, mask).item() == pytest.approx((0.5 + 1.0) / 2)
    assert masked_l1_loss(prediction, target, mask, torch.tensor([0.2, 1, 0.6, 1])).item() == pytest.approx(
        (0.1 + 0.6) / 2
    )
    assert masked_l1_loss(prediction, target, torch.zeros(4, dtype=torch.bool)) is None
    logits = torch.tensor([0.3, 9.0, -1.2, 0.0])
    probs = torch.tensor([0.8, 0.0, 0.4, 1.0])
    soft = (_soft_bce(0.3, 0.8) + _soft_bce(-1.2, 0.4)) / 2
    assert masked_binary_loss(logits, probs, mask).item() == pytest.approx(soft, rel=1e-6)
    hard = (_bce(0.3, 1) + _bce(-1.2, 0)) / 2
    assert masked_binary_loss(logits, probs, mask, soft=False).item() == pytest.approx(hard, rel=1e-6)


def _soft_bce(z: float, p: float) -> float:
    q = 1 / (1 + math.exp(-z))
    return -(p * math.log(q) + (1 - p) * math.log(1 - q))


def test_model_loss_is_the_masked_mean_over_known_labels(batches):
    model = make_model(task_loss_weights={"emotion": 0.5, "sentiment": 2.0}).eval()
    batch = dict(batches["synthetic_meld"])
    sentiment_mask = batch["sentiment_mask"].clone()
    sentiment_mask[::2] = False  # half the sentiment labels unknown
    batch["sentiment_mask"] = sentiment_mask
    batch["sentiment_class"] = torch.where(sentiment_mask, batch["sentiment_class"], torch.full_like(batch["sentiment_class"], -1))
    output = model(**batch)

    # MELD's polarity rows train the 3-class head with cross-entropy over its classes...
    known = sentiment_mask
    log_probs = output.head_outputs["sentiment/polarity"].log_softmax(-1)
    expected_sentiment = -log_probs[known].gather(1, batch["sentiment_class"][known].unsqueeze(1)).mean()
    # ...and its emotions the MELD head (7 outputs in MELD's order: anger, disgust, fear, joy, ...).
    targets = batch["emotion"][:, union_index("emotion/meld")].argmax(-1, keepdim=True)
    expected_emotion = -output.head_outputs["emotion/meld"].log_softmax(-1).gather(1, targets).mean()
    torch.testing.assert_close(output.task_losses["sentiment/polarity"], expected_sentiment)
    torch.testing.assert_close(output.task_losses["emotion/meld"], expected_emotion)
    assert set(output.task_losses) == {"sentiment/polarity", "emotion/meld"}  # no score or other-set term
    torch.testing.assert_close(output.loss, 0.5 * expected_emotion + 2.0 * expected_sentiment)
    # Scores are bounded to the configured range.
    assert (output.sentiment_score.abs() <= 3.0).all()


@pytest.mark.parametrize("fusion", ["concat", "late"])
def test_fully_masked_task_gives_zero_gradient_to_its_head(fusion, batches):
    model = make_model(fusion=fusion)
    batch = dict(batches["synthetic_mosei"])
    batch["sarcasm"] = torch.ones_like(batch["sarcasm"])  # garbage under a fully-off mask
    batch["sentiment_mask"] = torch.zeros_like(batch["sentiment_mask"])
    batch["sentiment"] = torch.full_like(batch["sentiment"], 2.0)
    output = model(**batch)
    output.loss.backward()
    assert set(output.task_losses) == {"emotion/mosei"}
    for head in ("sarcasm/binary", "sentiment/score", "sentiment/polarity", "emotion/meld", "emotion/iemocap"):
        grads = head_grads(model, head)
        assert all(g is not None and torch.count_nonzero(g) == 0 for g in grads), head
    assert any(torch.count_nonzero(g) > 0 for g in head_grads(model, "emotion/mosei"))


def test_no_known_label_gives_a_differentiable_zero(batches):
    model = make_model()
    batch = dict(batches["synthetic_mustard"])
    for key in list(batch):
        if key.endswith("_mask") and key not in _MODALITY_MASKS:
            batch[key] = torch.zeros_like(batch[key])
    output = model(**batch)
    assert output.loss.item() == 0.0 and output.loss.requires_grad
    assert output.task_losses == {}
    output.loss.backward()
    grads = [p.grad for p in model.heads.parameters()]
    assert all(g is not None and torch.count_nonzero(g) == 0 for g in grads)
    # Without any label the model predicts and returns no loss.
    assert model(**inputs_only(batch)).loss is None


def test_single_task_model_ignores_other_labels(batches):
    model = make_model(tasks=["sentiment"]).eval()
    batch = batches["synthetic_mosei"]
    output = model(**batch)
    assert output.emotion_logits is None and output.sarcasm_logits is None
    assert set(output.task_losses) == {"sentiment/score"}
    torch.testing.assert_close(output.loss, output.task_losses["sentiment/score"])
    scrambled = dict(batch)
    scrambled["emotion"] = 1 - batch["emotion"] * batch["emotion_mask"]
    scrambled["sarcasm"] = torch.ones_like(batch["sarcasm"])
    scrambled["sarcasm_mask"] = torch.ones_like(batch["sarcasm_mask"])
    torch.testing.assert_close(model(**scrambled).loss, output.loss)
    assert set(model.heads) == {"sentiment__score", "sentiment__polarity"}
    # A sarcasm-only teacher on a corpus without sarcasm labels: zero loss, no terms.
    teacher = make_model(tasks=["sarcasm"])
    assert teacher(**batch).loss.item() == 0.0


def _with_weak_labels(batch):
    weak = dict(batch)
    size = len(batch["sentiment"])
    generator = torch.Generator().manual_seed(0)
    weak["sarcasm_weak"] = torch.rand(size, generator=generator)
    weak["sarcasm_weak_mask"] = torch.ones(size, dtype=torch.bool)
    weak["sarcasm_weak_confidence"] = torch.linspace(0.1, 1.0, size)
    weak["emotion_weak"] = torch.rand(size, len(EMOTION_LABELS), generator=generator)
    # A MOSEI-set teacher's labels: they train the MOSEI head.
    weak["emotion_weak_mask"] = torch.tensor(label_space("emotion/mosei").union_mask()).expand(size, -1).clone()
    weak["emotion_weak_multilabel"] = torch.ones(size, dtype=torch.bool)
    weak["emotion_weak_confidence"] = torch.ones(size)
    return weak


def test_weak_loss_weight_zero_ignores_weak_labels(batches):
    gold = batches["synthetic_mosei"]
    weak = _with_weak_labels(gold)
    model = make_model(weak_loss_weight=0.0).eval()
    without, with_weak = model(**gold), model(**weak)
    torch.testing.assert_close(without.loss, with_weak.loss)
    assert set(with_weak.task_losses) == {"emotion/mosei", "sentiment/score"}

    model = make_model(weak_loss_weight=0.25).eval()
    output = model(**weak)
    assert set(output.task_losses) == {"emotion/mosei", "sentiment/score", "emotion/mosei_weak", "sarcasm/binary_weak"}
    terms = output.task_losses
    expected = terms["emotion/mosei"] + terms["sentiment/score"] + 0.25 * (
        terms["emotion/mosei_weak"] + terms["sarcasm/binary_weak"]
    )
    torch.testing.assert_close(output.loss, expected)
    # The weak sarcasm term is the soft BCE against the teacher's probabilities.
    soft = torch.nn.functional.binary_cross_entropy_with_logits(output.sarcasm_logits, weak["sarcasm_weak"])
    torch.testing.assert_close(terms["sarcasm/binary_weak"], soft)


def test_hard_mode_confidence_weighting_and_threshold(batches):
    weak = _with_weak_labels(batches["synthetic_mustard"])
    weak["sarcasm_weak_mask"] = torch.zeros_like(weak["sarcasm_weak_mask"])
    weak["sarcasm_weak_mask"][:3] = True  # three weak sarcasm rows, confidences 0.1, 0.28, 0.46
    hard_model = make_model(weak_label_mode="hard", weak_use_confidence=True, weak_confidence_threshold=0.2)
    output = hard_model.eval()(**weak)
    z, p = output.sarcasm_logits.detach(), weak["sarcasm_weak"]
    confidence = weak["sarcasm_weak_confidence"]
    kept = weak["sarcasm_weak_mask"] & (confidence >= 0.2)  # the first row (confidence 0.1) is dropped
    assert kept.sum() == 2
    losses = torch.nn.functional.binary_cross_entropy_with_logits(z, (p >= 0.5).float(), reduction="none")
    torch.testing.assert_close(output.task_losses["sarcasm/binary_weak"].detach(), (losses * confidence)[kept].mean())
    soft_model = make_model(weak_label_mode="soft")
    soft_output = soft_model.eval()(**weak)
    soft_losses = torch.nn.functional.binary_cross_entropy_with_logits(soft_output.sarcasm_logits, p, reduction="none")
    torch.testing.assert_close(soft_output.task_losses["sarcasm/binary_weak"], soft_losses[:3].mean())


# --------------------------------------------------------------------------------------
# Errors that say what to fix
# --------------------------------------------------------------------------------------


def test_unknown_feature_set_and_wrong_dims_raise_clear_errors(batches):
    model = make_model()
    batch = dict(batches["synthetic_mosei"])
    with pytest.raises(ValueError, match="Unknown feature set 'bert-librosa'.*'synthetic-cmu'.*add_feature_set"):
        model(**{**batch, "feature_set": "bert-librosa"})
    with pytest.raises(ValueError, match=r"audio_features has shape \(6, \d+, 80\).*expects \[batch, length, 74\]"):
        model(**{**batch, "audio_features": torch.randn(6, 4, 80), "audio_mask": torch.ones(6, 4, dtype=torch.bool)})
    with pytest.raises(ValueError, match="audio_mask has shape"):
        model(**{**batch, "audio_mask": torch.ones(6, 1, dtype=torch.bool)})
    with pytest.raises(ValueError, match="No features given"):
        model(feature_set="synthetic-cmu", sentiment=torch.zeros(2))
    with pytest.raises(ValueError, match="mixes feature sets"):
        model(**{**inputs_only(batch), "feature_set": ["synthetic-cmu", "other"]})
    with pytest.raises(ValueError, match="expected \\(6, 9\\)"):
        model(**{**batch, "emotion": torch.zeros(6, 4), "emotion_mask": torch.ones(6, 4, dtype=torch.bool)})
    text_only = make_model(feature_sets={"glove": {"text": 300}})
    with pytest.raises(ValueError, match="Feature set 'glove' has no audio modality"):
        text_only(**{**inputs_only(batch), "feature_set": "glove"})
    with pytest.raises(ValueError, match="config.feature_sets is empty.*from_corpora"):
        MTAffectForMultiTaskAffect(MTAffectConfig(feature_sets={}))


def test_add_feature_set_extends_the_model_and_survives_save(tmp_path, batches):
    model = make_model()
    model.add_feature_set("mustard-native", {"text": 96, "visual": 256})
    assert model.config.feature_sets["mustard-native"] == {"text": 96, "visual": 256}
    with pytest.raises(ValueError, match="already exists"):
        model.add_feature_set("mustard-native", {"text": 768})
    text_only = make_model(feature_sets={"glove": {"text": 300}})
    with pytest.raises(ValueError, match="no encoder for"):
        text_only.add_feature_set("covarep", {"audio": 74})
    batch = {"feature_set": "mustard-native", "text_features": torch.randn(3, 4, 96),
             "visual_features": torch.randn(3, 2, 256), "sarcasm": torch.tensor([0.0, 1.0, 1.0])}
    model.eval()
    before = model(**batch)
    before.loss.backward()
    model.save_pretrained(tmp_path)
    reloaded = MTAffectForMultiTaskAffect.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(reloaded(**batch).sarcasm_logits, before.sarcasm_logits, rtol=0, atol=0)


# --------------------------------------------------------------------------------------
# Save / load / remote code
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("encoder_type", "fusion"), [("transformer", "concat"), ("bilstm", "late")])
def test_save_pretrained_round_trip_is_exact_and_pickle_free(tmp_path, batches, encoder_type, fusion):
    model = make_model(encoder_type=encoder_type, fusion=fusion).eval()
    batch = batches["synthetic_mosei"]
    expected = model(**batch)
    model.save_pretrained(tmp_path)
    files = sorted(os.listdir(tmp_path))
    assert files == [
        "README.md",
        "config.json",
        "configuration_mtaffect.py",
        "encoders_mtaffect.py",  # imported by the modeling file: copied for trust_remote_code
        "model.safetensors",
        "modeling_mtaffect.py",
        "mtaffect_card_data.json",
    ]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_mtaffect.MTAffectConfig",
        "AutoModel": "modeling_mtaffect.MTAffectForMultiTaskAffect",
    }
    assert config["model_type"] == "mtaffect" and config["architectures"] == ["MTAffectForMultiTaskAffect"]
    assert set(load_file(tmp_path / "model.safetensors")) == set(model.state_dict())

    for loaded in (MTAffectForMultiTaskAffect.from_pretrained(tmp_path), AutoModel.from_pretrained(tmp_path)):
        assert type(loaded) is MTAffectForMultiTaskAffect
        actual = loaded.eval()(**batch)
        for key in ("loss", "pooled_output"):
            torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0)
        torch.testing.assert_close(actual.head_outputs, expected.head_outputs, rtol=0, atol=0)
        # The label spaces (what every output means) come back with the checkpoint.
        assert loaded.config.label_spaces == model.config.label_spaces
        assert loaded.config.label_spaces["emotion/meld"]["labels"][3] == "joy"
    assert isinstance(AutoConfig.from_pretrained(tmp_path), MTAffectConfig)
    # The shared encoder alone loads from the same checkpoint (base_model_prefix).
    encoder = MTAffectModel.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(encoder(**inputs_only(batch)).pooled_output, expected.pooled_output, rtol=0, atol=0)


_REMOTE_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys

    class BlockMtaffect(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "mtaffect" or name.startswith("mtaffect."):
                raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)")
            return None

    sys.meta_path.insert(0, BlockMtaffect())
    # Only the blocker hides mtaffect: filtering sys.path by the checkout's name also dropped the venv's
    # site-packages when the venv lives inside the checkout (CI: <checkout>/.venv).
    sys.path = [p for p in sys.path if p not in ("", ".")]
    try:
        import mtaffect  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("mtaffect is still importable")

    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModel

    checkpoint, inputs_file, output_file = sys.argv[1:4]
    model = AutoModel.from_pretrained(checkpoint, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    tensors = load_file(inputs_file)
    with torch.no_grad():
        output = model(feature_set="synthetic-cmu", **tensors)
    tensors = {k: v.contiguous() for k, v in output.head_outputs.items()}
    save_file({"loss": output.loss.contiguous(), **tensors}, output_file)
    assert not any(name == "mtaffect" or name.startswith("mtaffect.") for name in sys.modules)
    print("REMOTE-OK", type(model).__module__)
    """
)


def test_trust_remote_code_loads_without_mtaffect(tmp_path, batches):
    model = make_model(fusion="late").eval()
    batch = batches["synthetic_mosei"]
    with torch.no_grad():  # as in the subprocess (attention takes another kernel path with grad on)
        expected = model(**batch)
    saved = tmp_path / "saved"
    model.save_pretrained(saved)
    checkpoint = tmp_path / "elsewhere" / "mtaffect-checkpoint"
    shutil.copytree(saved, checkpoint)
    tensors = {k: v.contiguous() for k, v in batch.items() if isinstance(v, torch.Tensor)}
    save_file(tensors, tmp_path / "inputs.safetensors")
    script = tmp_path / "elsewhere" / "load_remote.py"
    script.write_text(_REMOTE_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_HUB_OFFLINE="1", PYTHONNOUSERSITE="1")
    result = subprocess.run(
        [sys.executable, str(script), str(checkpoint), str(tmp_path / "inputs.safetensors"), str(tmp_path / "out.safetensors")],
        cwd=tmp_path / "elsewhere",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "REMOTE-OK transformers_modules" in result.stdout
    remote = load_file(tmp_path / "out.safetensors")
    assert set(remote) == {"loss", *SPACES}
    for key, value in remote.items():
        # Another process may split float reductions across threads differently: ~1e-8 noise.
        reference = expected.loss if key == "loss" else expected.head_outputs[key]
        torch.testing.assert_close(value, reference, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------


def test_sentiment_class_rule_is_the_documented_threshold_rule():
    """The 3-class view by thresholds ±0.5 (ties to neutral) is the old clip-and-round rule."""
    scores = np.array([-3.0, -1.2, -0.51, -0.5, -0.2, 0.0, 0.49, 0.5, 0.51, 1.5, 3.0], dtype=np.float32)
    np.testing.assert_array_equal(registry_score_to_class(scores), np.round(np.clip(scores, -1, 1)) + 1)
    # The model's own copy of the rule (it runs without mtaffect) agrees.
    from mtaffect.modeling_mtaffect import _polarity_of

    assert [_polarity_of(float(s)) for s in scores] == [SENTIMENT_CLASSES[c] for c in registry_score_to_class(scores)]


def test_predict_gives_labelled_outputs_in_each_heads_own_names(batches):
    model = make_model()
    model.train()
    batch = batches["synthetic_iemocap"]
    predictions = model.predict(batch)
    assert model.training  # mode restored
    assert len(predictions) == 6
    first = predictions[0]
    assert set(first) == {"emotion/mosei", "emotion/iemocap", "emotion/meld", "sentiment/score", "sentiment/polarity", "sarcasm"}
    scores = first["emotion/meld"]["scores"]
    assert list(scores) == ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]  # MELD says joy
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert first["emotion/meld"]["label"] == max(scores, key=scores.get)
    assert list(first["emotion/iemocap"]["scores"]) == ["neutral", "happy", "sad", "angry"]
    assert list(first["sentiment/polarity"]["scores"]) == list(SENTIMENT_CLASSES)
    assert -3 <= first["sentiment/score"]["score"] <= 3
    assert first["sentiment/score"]["label"] == SENTIMENT_CLASSES[int(registry_score_to_class(first["sentiment/score"]["score"]))]
    assert 0 <= first["sarcasm"]["score"] <= 1 and isinstance(first["sarcasm"]["label"], bool)

    probabilities = model.predict_proba(batch)
    output = model.eval()(**batch)
    torch.testing.assert_close(probabilities["emotion/meld"], output.head_outputs["emotion/meld"].softmax(-1))
    torch.testing.assert_close(probabilities["emotion/mosei"], output.head_outputs["emotion/mosei"].sigmoid())
    torch.testing.assert_close(probabilities["sarcasm/binary"], output.sarcasm_logits.sigmoid())
    torch.testing.assert_close(probabilities["sentiment/score"], output.sentiment_score)

    multi = model.predict(batch, heads=["emotion/mosei"], threshold=0.0)
    assert set(multi[0]) == {"emotion"}  # one head of the task: keyed by the task
    assert multi[0]["emotion"]["labels"] == ["happy", "sad", "anger", "surprise", "disgust", "fear"]
    with pytest.raises(ValueError, match="Unknown head 'emotion/joy'"):
        model.predict(batch, heads=["emotion/joy"])
    sentiment_only = make_model(tasks=["sentiment"], label_spaces=["sentiment/score"]).predict(batch)
    assert set(sentiment_only[0]) == {"sentiment"} and set(sentiment_only[0]["sentiment"]) == {"score", "label"}


def test_return_dict_false_gives_a_tuple(batches):
    model = make_model(tasks=["sarcasm"]).eval()
    batch = batches["synthetic_mustard"]
    as_tuple = model(**batch, return_dict=False)
    as_output = model(**batch)
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[0], as_output.loss)
    torch.testing.assert_close(as_tuple[1]["sarcasm/binary"], as_output.sarcasm_logits)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("encoder_type", ["transformer", "bilstm"])
def test_cuda_model_takes_cpu_batches(encoder_type, batches):
    model = make_model(encoder_type=encoder_type, fusion="late").to("cuda")
    batch = batches["synthetic_meld"]
    output = model(**{k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in batch.items()})
    output.loss.backward()
    assert output.head_outputs["emotion/meld"].device.type == "cuda"
    assert len(model.predict(batch)) == len(batch["emotion"])  # predict moves CPU inputs to the model
