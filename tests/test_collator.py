"""The collator pads each modality, builds masks and stacks every label tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtaffect.data.collator import MTAffectCollator
from mtaffect.data.schema import LABEL_COLUMNS, unknown_labels


def _row(length: int, dims=(3, 2), feature_set="fs", **labels):
    row = {
        "feature_set": feature_set,
        "text_features": np.arange(length * dims[0], dtype=np.float32).reshape(length, dims[0]),
        "audio_features": np.full((length, dims[1]), 2.0, np.float32),
    }
    row.update(unknown_labels())
    row.update(labels)
    return row


def test_padding_and_masks():
    collator = MTAffectCollator()
    batch = collator([_row(2), _row(4), _row(1)])
    assert batch["feature_set"] == "fs"
    assert batch["text_features"].shape == (3, 4, 3)
    assert batch["audio_features"].shape == (3, 4, 2)
    assert batch["text_mask"].tolist() == [
        [True, True, False, False],
        [True, True, True, True],
        [True, False, False, False],
    ]
    # Real frames copied exactly, padding is zero.
    assert torch.equal(batch["text_features"][0, :2], torch.arange(6, dtype=torch.float32).reshape(2, 3))
    assert batch["text_features"][0, 2:].abs().sum() == 0
    assert "visual_features" not in batch


def test_every_label_tensor_is_present_with_the_right_dtype():
    batch = MTAffectCollator()([_row(2, sentiment=1.5, sentiment_mask=True, sentiment_class=2), _row(3)])
    assert set(LABEL_COLUMNS) <= set(batch)
    assert batch["emotion"].shape == (2, 9) and batch["emotion"].dtype == torch.float32
    assert batch["emotion_mask"].dtype == torch.bool
    assert batch["sentiment_class"].dtype == torch.long
    assert batch["sentiment"].tolist() == [1.5, 0.0]
    assert batch["sentiment_mask"].tolist() == [True, False]
    assert batch["sentiment_class"].tolist() == [2, -1]


def test_empty_sequences_and_all_empty_modality():
    rows = [_row(0), _row(2)]
    batch = MTAffectCollator()(rows)
    assert batch["text_mask"].tolist() == [[False, False], [True, True]]
    empty = [_row(0), _row(0)]
    with pytest.raises(ValueError, match="for_dataset"):
        MTAffectCollator()(empty)
    batch = MTAffectCollator(feature_dims={"text": 3, "audio": 2})(empty)
    assert batch["text_features"].shape == (2, 1, 3)
    assert not batch["text_mask"].any()


def test_truncation_and_multiple_of():
    batch = MTAffectCollator(max_length=3, pad_to_multiple_of=4)([_row(5), _row(1)])
    assert batch["text_features"].shape == (2, 4, 3)
    assert batch["text_mask"].sum(1).tolist() == [3, 1]


def test_mixed_feature_sets_are_refused():
    with pytest.raises(ValueError, match="mixes feature sets"):
        MTAffectCollator()([_row(2, feature_set="a"), _row(2, feature_set="b")])


def test_wrong_rank_is_refused():
    row = _row(2)
    row["text_features"] = np.zeros((2, 3, 1), np.float32)
    with pytest.raises(ValueError, match=r"\[T, D\]"):
        MTAffectCollator()([row])


def test_collates_rows_of_a_real_corpus(tiny_family):
    split = tiny_family["synthetic_meld"]["train"].with_format("numpy")
    collator = MTAffectCollator.for_dataset(split)
    batch = collator([split[i] for i in range(4)])
    assert batch["text_features"].shape[-1] == 300 and batch["audio_features"].shape[-1] == 74
    assert "visual_features" not in batch
    assert batch["emotion_mask"][:, :7].all() and not batch["emotion_mask"][:, 7:].any()  # MELD: 7 of the 9 union labels
    lengths = [len(split[i]["text_features"]) for i in range(4)]
    assert batch["text_mask"].sum(1).tolist() == lengths


def test_row_without_a_modality_is_an_empty_sequence():
    """In a mixed batch, a corpus lacking a modality (MELD: no visual) gets an all-False mask."""
    with_visual = _row(2)
    with_visual["visual_features"] = np.ones((2, 5), np.float32)
    batch = MTAffectCollator()([with_visual, _row(3)])
    assert batch["visual_features"].shape == (2, 2, 5)
    assert batch["visual_mask"].tolist() == [[True, True], [False, False]]


def test_a_model_reads_only_its_label_columns(tiny_family, tmp_path):
    """A single-task model's batches carry its task's gold columns only; the values are the full batch's."""
    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.data.collator import label_columns_read
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
    from mtaffect.training import MultiTaskTrainer, MultiTaskTrainingArguments

    assert label_columns_read(["sarcasm"], weak=False) == ("sarcasm", "sarcasm_mask")
    assert set(label_columns_read(["sentiment"], weak=True)) == {
        name for name in LABEL_COLUMNS if name.startswith("sentiment")}
    corpus = tiny_family["synthetic_mustard"]
    model = MTAffectForMultiTaskAffect(MTAffectConfig.from_corpora({"m": corpus}, tasks=["sarcasm"], hidden_size=8,
                                                                   num_heads=2, weak_loss_weight=0.0))
    args = MultiTaskTrainingArguments(str(tmp_path), per_device_train_batch_size=4, report_to="none", use_cpu=True)
    trainer = MultiTaskTrainer(model, args, train_dataset={"m": corpus["train"]}, eval_dataset={"m": corpus["validation"]})
    batch = next(iter(trainer.get_train_dataloader()))
    assert {name for name in batch if name in LABEL_COLUMNS} == {"sarcasm", "sarcasm_mask"}
    assert trainer.label_names == ["sarcasm", "sarcasm_mask"]
    full = MTAffectCollator.for_dataset(corpus["train"])(corpus["train"].with_format("numpy").select(range(4)))
    rows = corpus["train"].with_format("numpy", columns=["feature_set", "text_features", *label_columns_read(["sarcasm"], False)])
    lean = MTAffectCollator.for_dataset(corpus["train"], label_columns=("sarcasm", "sarcasm_mask"))(rows.select(range(4)))
    assert torch.equal(lean["sarcasm"], full["sarcasm"]) and torch.equal(lean["text_features"], full["text_features"])
    assert "emotion" in full and "emotion" not in lean
    metrics = trainer.evaluate()
    assert "eval_m_sarcasm_weighted_f1" in metrics  # the metrics still read the task's gold labels
