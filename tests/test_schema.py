"""The unified schema: every synthetic corpus conforms; broken datasets are rejected clearly."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Array2D, Dataset, Features, Value

from mtaffect.data.schema import (
    NUM_EMOTIONS,
    CorpusInfo,
    SchemaError,
    build_features,
    feature_dims,
    get_corpus_info,
    gold_tasks,
    set_corpus_info,
    unknown_labels,
    validate_corpus,
)
from mtaffect.tasks import EMOTION_LABELS, emotion_label_mask, sentiment_score_to_class


def _rows(n: int = 3, dims: dict[str, int] | None = None) -> dict[str, list]:
    dims = dims or {"text": 4, "audio": 2}
    rows: dict[str, list] = {
        "id": [f"u{i}" for i in range(n)],
        "source": ["toy"] * n,
        "feature_set": ["toy-set"] * n,
        "text": ["hello"] * n,
        "speaker": ["A"] * n,
    }
    for modality, dim in dims.items():
        rows[f"{modality}_features"] = [np.ones((i + 1, dim), np.float32) for i in range(n)]
    labels = [unknown_labels() for _ in range(n)]
    for i, row in enumerate(labels):
        row.update(sentiment=float(i) - 1.0, sentiment_mask=True)
    for key in labels[0]:
        rows[key] = [row[key] for row in labels]
    return rows


def _dataset(rows: dict[str, list], dims: dict[str, int] | None = None) -> Dataset:
    return Dataset.from_dict(rows, features=build_features(dims or {"text": 4, "audio": 2}))


def test_every_synthetic_corpus_conforms(tiny_family):
    for name, corpus in tiny_family.items():
        validate_corpus(corpus)
        info = get_corpus_info(corpus)
        assert info.corpus == name
        assert info.dims == feature_dims(corpus["train"].features)


def test_valid_toy_dataset_passes_and_reports_gold_tasks():
    dataset = _dataset(_rows())
    validate_corpus(dataset)
    assert gold_tasks(dataset) == ["sentiment"]


def test_missing_column_is_named():
    dataset = _dataset(_rows()).remove_columns("sarcasm_mask")
    with pytest.raises(SchemaError, match="missing column 'sarcasm_mask'"):
        validate_corpus(dataset)


def test_wrong_dtype_is_named():
    rows = _rows()
    features = build_features({"text": 4, "audio": 2})
    features["sentiment"] = Value("float64")
    dataset = Dataset.from_dict(rows, features=features)
    with pytest.raises(SchemaError, match="column 'sentiment' has type .*float64.*expected .*float32"):
        validate_corpus(dataset)


def test_feature_column_of_wrong_kind_is_rejected():
    rows = _rows()
    features = build_features({"text": 4, "audio": 2})
    features["audio_features"] = Array2D(shape=(None, 2), dtype="float64")
    dataset = Dataset.from_dict(rows, features=features)
    with pytest.raises(SchemaError, match="audio_features"):
        validate_corpus(dataset)


def test_sentiment_out_of_range_is_rejected():
    rows = _rows()
    rows["sentiment"][1] = 3.5
    with pytest.raises(SchemaError, match=r"'sentiment' has scores outside \[-3.0, 3.0\] \(rows \[1\]\)"):
        validate_corpus(_dataset(rows))


def test_label_without_mask_is_a_mismatch():
    rows = _rows()
    rows["sarcasm"][2] = 1.0  # sarcasm_mask stays False
    with pytest.raises(SchemaError, match="'sarcasm' is non-zero where sarcasm_mask is off"):
        validate_corpus(_dataset(rows))


def test_emotion_outside_mask_is_a_mismatch():
    rows = _rows()
    rows["emotion"][0] = [1.0] + [0.0] * (NUM_EMOTIONS - 1)
    rows["emotion_mask"][0] = emotion_label_mask(["sadness"])
    rows["emotion_multilabel"][0] = True
    with pytest.raises(SchemaError, match="non-zero where emotion_mask is off"):
        validate_corpus(_dataset(rows))


def test_single_label_emotion_needs_exactly_one_positive():
    rows = _rows()
    rows["emotion"][0] = [1.0, 1.0] + [0.0] * (NUM_EMOTIONS - 2)
    rows["emotion_mask"][0] = [True] * NUM_EMOTIONS
    with pytest.raises(SchemaError, match="exactly one positive label"):
        validate_corpus(_dataset(rows))


def test_sentiment_class_needs_mask():
    rows = _rows()
    rows["sentiment_mask"][0] = False
    rows["sentiment"][0] = 0.0
    rows["sentiment_class"][0] = 2
    with pytest.raises(SchemaError, match="sentiment_class' is set where sentiment_mask is off"):
        validate_corpus(_dataset(rows))


def test_weak_confidence_out_of_range():
    rows = _rows()
    rows["sarcasm_weak_confidence"][0] = 1.5
    with pytest.raises(SchemaError, match="sarcasm_weak_confidence"):
        validate_corpus(_dataset(rows))


def test_nonfinite_features_are_rejected():
    rows = _rows()
    rows["audio_features"][1][0, 1] = np.nan
    with pytest.raises(SchemaError, match="'audio_features' holds NaN or inf"):
        validate_corpus(_dataset(rows))
    validate_corpus(_dataset(rows), check_finite=False)


def test_a_text_only_corpus_is_valid_and_one_without_text_or_features_is_not():
    rows = _rows()
    for key in ("text_features", "audio_features"):
        rows.pop(key)
    features = build_features({})  # text-only: no feature column, the raw transcripts are the input
    assert not [name for name in features if name.endswith("_features")] and "text" in features
    validate_corpus(Dataset.from_dict(rows, features=features))
    rows.pop("text")
    without_text = Features({k: v for k, v in features.items() if k != "text"})
    with pytest.raises(SchemaError, match="no modality column"):
        validate_corpus(Dataset.from_dict(rows, features=without_text))


def test_bad_dims_are_rejected():
    with pytest.raises(SchemaError, match="positive int"):
        build_features({"text": 0})
    with pytest.raises(SchemaError, match="positive int"):
        build_features({"text": "300"})
    with pytest.raises(ValueError, match="Unknown modality"):
        build_features({"smell": 3})


def test_corpus_info_survives_map_and_disk(tmp_path):
    dataset = _dataset(_rows())
    info = CorpusInfo(corpus="toy", feature_set="toy-set", dims={"text": 4, "audio": 2}, tasks=["sentiment"],
                      replaced_nonfinite=3)
    set_corpus_info(dataset, info)
    mapped = dataset.map(lambda batch: batch, batched=True)
    assert get_corpus_info(mapped) == info
    dataset.save_to_disk(str(tmp_path / "toy"))
    from datasets import load_from_disk

    assert get_corpus_info(load_from_disk(str(tmp_path / "toy"))) == info


def test_sentiment_class_view():
    scores = np.array([-3.0, -0.51, -0.5, 0.0, 0.5, 0.51, 2.0])
    assert sentiment_score_to_class(scores).tolist() == [0, 0, 1, 1, 1, 2, 2]
    assert sentiment_score_to_class(np.array([-1.0, 0.0, 1.0])).tolist() == [0, 1, 2]


def test_emotion_label_space_is_the_documented_union():
    assert EMOTION_LABELS == (
        "anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral", "peaceful", "powerful"
    )
    assert emotion_label_mask(["joy", "Angry"]) == [True, False, False, True, False, False, False, False, False]
    # EmoryNLP's spellings map onto the union too.
    assert emotion_label_mask(["Joyful", "Mad", "Scared", "Peaceful"]) == [True, False, True, True, False, False, False, True, False]


def test_the_task_column_tables_agree_with_the_schema():
    """tasks.GOLD_COLUMNS / WEAK_COLUMNS group the schema's label columns per task (one set of names)."""
    from mtaffect.data.schema import LABEL_COLUMNS
    from mtaffect.metrics import GOLD_LABEL_COLUMNS
    from mtaffect.tasks import GOLD_COLUMNS, TASK_NAMES, WEAK_COLUMNS

    grouped = [column for task in TASK_NAMES for column in (*GOLD_COLUMNS[task], *WEAK_COLUMNS[task])]
    assert sorted(grouped) == sorted(LABEL_COLUMNS) and len(set(grouped)) == len(grouped)
    assert GOLD_LABEL_COLUMNS == tuple(c for c in LABEL_COLUMNS if "_weak" not in c)
