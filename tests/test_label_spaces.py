"""Label spaces: conversions, one head per (task, label space), per-task selection, new loaders, the probe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.data.corpora import CorpusFormatError, load_corpus
from mtaffect.data.schema import corpus_label_spaces, get_corpus_info, validate_corpus
from mtaffect.metrics import compute_corpus_metrics
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect, head_module_name
from mtaffect.tasks import (
    EMOTION_LABELS,
    LABEL_SPACES,
    convert_emotion,
    label_space,
    polarity_to_score,
    score_to_polarity,
)
from mtaffect.training.selection import PerTaskSelection
from mtaffect.training.trainer import FeatureSetCollator

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora"


# --------------------------------------------------------------------------------------------
# Conversions (hand-computed)


def test_score_to_polarity_by_documented_thresholds():
    scores = np.array([-3.0, -0.51, -0.5, 0.0, 0.5, 0.51, 3.0])
    assert score_to_polarity(scores).tolist() == [0, 0, 1, 1, 1, 2, 2]  # ties at ±0.5 go to neutral
    assert score_to_polarity(scores, "polarity2").tolist() == [0, 0, 0, 1, 1, 1, 1]  # 0 is non-negative
    assert score_to_polarity(np.array([-2.6, -2.5, -1.2, 0.4, 1.5, 2.51]), "polarity7").tolist() == [0, 1, 2, 3, 4, 6]
    assert score_to_polarity(np.array([-3.0, -1.5, 1.6]), "polarity5").tolist() == [0, 1, 4]


def test_polarity_to_expected_score():
    probabilities = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(polarity_to_score(probabilities), [0.3, -1.0])  # -0.2 + 0.5; -1
    np.testing.assert_allclose(polarity_to_score(np.array([0, 2]), "polarity"), [-1.0, 1.0])
    with pytest.raises(ValueError, match="has 3 classes"):
        polarity_to_score(np.ones((1, 5)) / 5)


def test_emotion_sets_convert_through_the_union():
    emorynlp = label_space("emotion/emorynlp")
    assert emorynlp.labels == ("Joyful", "Mad", "Neutral", "Peaceful", "Powerful", "Sad", "Scared")
    assert emorynlp.union == ("happiness", "anger", "neutral", "peaceful", "powerful", "sadness", "fear")
    # EmoryNLP probabilities -> MELD's set: Peaceful and Powerful (0.1 + 0.1) have no place, the rest renormalised.
    probs = np.array([[0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]])
    converted, known = convert_emotion(probs, "emorynlp", "meld")
    assert known.tolist() == [True, False, True, True, True, True, False]  # anger disgust fear joy neutral sadness surprise
    np.testing.assert_allclose(converted, [[0.125, 0.0, 0.125, 0.5, 0.125, 0.125, 0.0]])
    # A multi-label source is not renormalised (independent sigmoids).
    converted, known = convert_emotion(np.array([[0.9, 0.2, 0.4, 0.1, 0.3, 0.6]]), "mosei", "iemocap")
    assert known.tolist() == [False, True, True, True]  # neutral happy sad angry
    np.testing.assert_allclose(converted, [[0.0, 0.9, 0.2, 0.4]])


def test_user_label_space_is_data_not_code():
    space = label_space({"task": "emotion", "name": "tiny-test", "labels": ["glad", "cross", "calm"],
                         "union": ["joy", "anger", "neutral"]})
    assert LABEL_SPACES["emotion/tiny-test"] is space and space.union == ("happiness", "anger", "neutral")
    assert label_space(space.to_dict()) is space  # the same space again: the registered one
    with pytest.raises(ValueError, match="defined twice with different contents"):
        label_space({"task": "emotion", "name": "tiny-test", "labels": ["a", "b"], "union": ["joy", "anger"]})
    with pytest.raises(ValueError, match="'union' must give one distinct union name"):
        label_space({"task": "emotion", "name": "clash", "labels": ["joy", "happy"]})  # both are happiness
    with pytest.raises(ValueError, match="needs 5 scores"):
        label_space({"task": "sentiment", "name": "stars", "labels": list("abcde"), "scores": [1, 2], "thresholds": [0]})
    with pytest.raises(ValueError, match="Unknown label space 'polarity9'"):
        label_space("polarity9", task="sentiment")


# --------------------------------------------------------------------------------------------
# One model, a CE polarity head and an L1 score head


def test_polarity_head_trains_with_ce_and_score_head_with_l1_on_one_model(tiny_family):
    """MOSEI-like score rows and MELD-like polarity rows in one batch: each trains only its own head."""
    rows = [dict(tiny_family["synthetic_mosei"]["train"][i]) for i in range(4)]
    rows += [dict(tiny_family["synthetic_meld"]["train"][i]) for i in range(4)]
    collator = FeatureSetCollator.for_datasets([tiny_family["synthetic_mosei"]["train"], tiny_family["synthetic_meld"]["train"]])
    batch = collator(rows)
    assert batch["sentiment_num_classes"].tolist() == [0] * 4 + [3] * 4
    config = MTAffectConfig.from_corpora(
        {k: tiny_family[k] for k in ("synthetic_mosei", "synthetic_meld")}, tasks=["sentiment"], hidden_size=8, num_heads=2,
        dropout=0.0,
    )
    assert list(config.label_spaces) == ["sentiment/polarity", "sentiment/score"]  # one head per space the corpora use
    torch.manual_seed(0)
    model = MTAffectForMultiTaskAffect(config).eval()
    output = model(**batch)
    score, logits = output.head_outputs["sentiment/score"], output.head_outputs["sentiment/polarity"]
    expected_l1 = (score[:4] - batch["sentiment"][:4]).abs().mean()
    expected_ce = torch.nn.functional.cross_entropy(logits[4:], batch["sentiment_class"][4:])
    torch.testing.assert_close(output.task_losses["sentiment/score"], expected_l1)
    torch.testing.assert_close(output.task_losses["sentiment/polarity"], expected_ce)
    torch.testing.assert_close(output.loss, expected_l1 + expected_ce)
    # The gradient of each head comes only from its own rows.
    model.zero_grad()
    output.task_losses["sentiment/polarity"].backward(retain_graph=True)
    assert all(p.grad is None or not p.grad.any() for p in model.heads[head_module_name("sentiment/score")].parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.heads[head_module_name("sentiment/polarity")].parameters())
    # MSE is a config choice of the score space.
    mse_config = MTAffectConfig(feature_sets=config.feature_sets, hidden_size=8, num_heads=2, dropout=0.0,
                                label_spaces=[{**label_space("sentiment/score").to_dict(), "loss": "mse"}])
    torch.manual_seed(0)
    mse_model = MTAffectForMultiTaskAffect(mse_config).eval()
    mse_output = mse_model(**batch)
    expected_mse = (mse_output.sentiment_score[:4] - batch["sentiment"][:4]).square().mean()
    torch.testing.assert_close(mse_output.task_losses["sentiment/score"], expected_mse)
    # Metrics read each corpus' rows with its own head: MELD's classes by the polarity head's argmax.
    labels = {k: batch[k][4:].numpy() for k in ("sentiment", "sentiment_mask", "sentiment_class", "sentiment_num_classes")}
    metrics = compute_corpus_metrics({k: v[4:].detach().numpy() for k, v in output.head_outputs.items()}, labels,
                                     label_spaces=config.label_spaces, include_primary=False)
    predicted = logits[4:].argmax(-1).numpy()
    assert metrics["sentiment_accuracy"] == pytest.approx(float(np.mean(predicted == labels["sentiment_class"])))
    assert "sentiment_MAE" not in metrics


def test_prediction_keys_are_task_names_unless_a_task_has_several_heads():
    """One naming of a prediction's keys, for predict, the pipeline and the demo's panels."""
    from mtaffect.demo import output_heads

    config = MTAffectConfig(feature_sets={"t": {"text": 4}}, hidden_size=8, num_heads=2,
                            label_spaces=["emotion/meld", "emotion/emorynlp", "sentiment/polarity", "sarcasm/binary"])
    assert config.prediction_keys() == {"emotion/meld": "emotion/meld", "emotion/emorynlp": "emotion/emorynlp",
                                        "sentiment/polarity": "sentiment", "sarcasm/binary": "sarcasm"}
    # Restricted to one emotion head, that head answers as "emotion".
    assert config.prediction_keys(["emotion/emorynlp", "sarcasm/binary"]) == {
        "emotion/emorynlp": "emotion", "sarcasm/binary": "sarcasm"}
    keys = [config.prediction_keys()[head] for head in config.label_spaces]  # in the config's head order
    assert sorted(keys) == ["emotion/emorynlp", "emotion/meld", "sarcasm", "sentiment"]
    assert [key for key, _ in output_heads(config)] == keys
    model = MTAffectForMultiTaskAffect(config)
    batch = {"feature_set": "t", "text_features": torch.zeros(2, 3, 4), "text_mask": torch.ones(2, 3, dtype=torch.bool)}
    assert list(model.predict(batch)[0]) == keys
    only = model.predict(batch, heads=["emotion/emorynlp"])[0]
    assert list(only) == ["emotion"] and set(only["emotion"]["scores"]) == set(label_space("emotion/emorynlp").labels)


def test_config_keeps_label_names_and_refuses_ambiguous_heads(tmp_path):
    config = MTAffectConfig(feature_sets={"t": {"text": 4}}, hidden_size=8, num_heads=2,
                            label_spaces=["emotion/meld", "emotion/emorynlp", "sentiment/polarity", "sarcasm/binary"])
    assert config.id2label_of("emotion/emorynlp") == dict(enumerate(["Joyful", "Mad", "Neutral", "Peaceful", "Powerful", "Sad", "Scared"]))
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())["label_spaces"]
    assert saved["emotion/meld"]["labels"][3] == "joy" and saved["sentiment/polarity"]["kind"] == "classes"
    assert MTAffectConfig.from_pretrained(tmp_path).label_spaces == config.label_spaces
    with pytest.raises(ValueError, match="one per number"):
        MTAffectConfig(feature_sets={"t": {"text": 4}}, label_spaces=[
            "sentiment/polarity", {"task": "sentiment", "name": "other3", "kind": "classes", "labels": ["a", "b", "c"],
                                   "scores": [-1, 0, 1], "thresholds": [-0.5, 0.5]}])
    with pytest.raises(ValueError, match="does not fit a score space"):
        MTAffectConfig(feature_sets={"t": {"text": 4}}, label_spaces=[{**label_space("sentiment/score").to_dict(), "loss": "ce"}])


# --------------------------------------------------------------------------------------------
# Per-task model selection


def test_selection_picks_each_tasks_own_best_step_and_stops_with_patience():
    """A constructed case: emotion peaks at step 20, sarcasm at step 40, sentiment (MAE-ranked Non0 F1) at 10."""
    history = {
        10: {"eval_a_emotion_weighted_f1": 0.50, "eval_b_sarcasm_weighted_f1": 0.60, "eval_a_sentiment_Non0_F1_score": 0.9},
        20: {"eval_a_emotion_weighted_f1": 0.70, "eval_b_sarcasm_weighted_f1": 0.61, "eval_a_sentiment_Non0_F1_score": 0.8},
        30: {"eval_a_emotion_weighted_f1": 0.65, "eval_b_sarcasm_weighted_f1": 0.62, "eval_a_sentiment_Non0_F1_score": 0.7},
        40: {"eval_a_emotion_weighted_f1": 0.60, "eval_b_sarcasm_weighted_f1": 0.75, "eval_a_sentiment_Non0_F1_score": 0.7},
        50: {"eval_a_emotion_weighted_f1": 0.60, "eval_b_sarcasm_weighted_f1": 0.70, "eval_a_sentiment_Non0_F1_score": 0.6},
    }
    selection = PerTaskSelection(patience=2)
    improved = {step: selection.observe({**metrics, "test_a_emotion_weighted_f1": 1.0}, step, ["a", "b"])
                for step, metrics in history.items()}
    assert improved[20] == ["a/emotion", "b/sarcasm"] and improved[50] == []
    assert {key: choice["step"] for key, choice in selection.choices().items()} == {
        "a/emotion": 20, "b/sarcasm": 40, "a/sentiment": 10
    }
    assert selection.choices()["b/sarcasm"] == {"step": 40, "score": 0.75, "metric": "sarcasm_weighted_f1"}
    assert selection.stale == 1  # step 50 improved nothing; one more and patience 2 stops training

    class Control:
        should_training_stop = False

    class State:
        global_step = 60

    control = selection.on_evaluate(None, State(), Control(), metrics=history[50])
    assert control.should_training_stop
    # A test-split evaluation is not a selection step (no stale count, no stop).
    fresh = PerTaskSelection(patience=1)
    assert not fresh.on_evaluate(None, State(), Control(), metrics={"test_a_emotion_weighted_f1": 1.0}).should_training_stop
    with pytest.raises(ValueError, match="patience"):
        PerTaskSelection(patience=0)


def test_trainer_scores_each_task_at_its_own_best_step(tiny_family, tmp_path):
    """End to end: test numbers per (corpus, task) equal the model at that task's chosen step."""
    from mtaffect.training import MultiTaskTrainer, MultiTaskTrainingArguments

    corpora = {name: tiny_family[name] for name in ("synthetic_iemocap", "synthetic_mustard")}
    torch.manual_seed(0)
    model = MTAffectForMultiTaskAffect(MTAffectConfig.from_corpora(corpora, hidden_size=8, num_heads=2))
    args = MultiTaskTrainingArguments(
        str(tmp_path), max_steps=8, eval_strategy="steps", eval_steps=1, save_strategy="no", logging_steps=4,
        per_device_train_batch_size=4, learning_rate=5e-3, report_to="none", disable_tqdm=True, use_cpu=True,
    )
    selection = PerTaskSelection()
    trainer = MultiTaskTrainer(model, args, train_dataset={n: c["train"] for n, c in corpora.items()},
                               eval_dataset={n: c["validation"] for n, c in corpora.items()}, callbacks=[selection])
    trainer.train()
    choices = selection.choices()
    assert set(choices) == {"synthetic_iemocap/emotion", "synthetic_mustard/sarcasm"}
    final = {k: v.clone() for k, v in model.state_dict().items()}
    test = {n: c["test"] for n, c in corpora.items()}
    result = trainer.evaluate_per_task(test, selection)
    assert {corpus: set(tasks) for corpus, tasks in result.items()} == {
        "synthetic_iemocap": {"emotion"}, "synthetic_mustard": {"sarcasm"}}  # corpus -> task -> metric
    for key, choice in choices.items():
        corpus, task = key.split("/")
        model.load_state_dict(selection.snapshots[choice["step"]])
        direct = trainer.evaluate({corpus: test[corpus]}, metric_key_prefix="test")
        assert result[corpus][task][f"{task}_weighted_f1"] == pytest.approx(direct[f"test_{corpus}_{task}_weighted_f1"]), key
        # Every metric of the task, read at that step (and nothing of the speed metrics or aggregates).
        assert result[corpus][task] == pytest.approx({
            name[len(f"test_{corpus}_"):]: value for name, value in direct.items()
            if name.startswith(f"test_{corpus}_{task}_")})
    model.load_state_dict(final)
    assert all(torch.equal(v, final[k]) for k, v in model.state_dict().items())


# --------------------------------------------------------------------------------------------
# Corpora users have: EmoryNLP and text tables

EMORYNLP_HEADER = "Utterance,Speaker,Emotion,Scene_ID,Utterance_ID,Season,Episode,Start_Time,End_Time"


def write_emorynlp(folder: Path) -> None:
    rows = {
        "train": [('"What you guys don\'t understand is, for us, kissing is as important"', "['Monica Geller']", "Joyful", 1, 1),
                  ('"Yeah, right!.......Y\'serious?"', "['Joey Tribbiani']", "Neutral", 1, 2),
                  ("Ooh.", "['Rachel Green', 'Monica Geller']", "Peaceful", 1, 3),
                  ("Get out.", "['Ross Geller']", "Mad", 2, 1)],
        "dev": [("Coffee.", "['Rachel Green']", "Powerful", 1, 1), ("Thank you.", "['Joey Tribbiani']", "Scared", 1, 2)],
        "test": [("I cannot feel my legs.", "['Ross Geller']", "Sad", 4, 1)],
    }
    folder.mkdir(parents=True, exist_ok=True)
    for split, items in rows.items():
        lines = [EMORYNLP_HEADER] + [
            f"{text},\"{speaker}\",{emotion},{scene},{utt},1,15,00:00:03.795,00:00:05.004"
            for text, speaker, emotion, scene, utt in items
        ]
        (folder / f"emorynlp_{split}_final.csv").write_text("\n".join(lines) + "\n")


def _text_features(ids_by_split: dict[str, list[str]], path: Path, dim: int = 3) -> Path:
    arrays = {f"{split}/{i}": np.full((1, dim), k, np.float32) for split, ids in ids_by_split.items() for k, i in enumerate(ids)}
    np.savez(path, **arrays)
    return path


def test_emorynlp_loads_with_its_own_label_set(tmp_path):
    write_emorynlp(tmp_path / "emorynlp")
    ids = {"train": ["s01_e15_c01_u001", "s01_e15_c01_u002", "s01_e15_c01_u003", "s01_e15_c02_u001"],
           "dev": ["s01_e15_c01_u001", "s01_e15_c01_u002"], "test": ["s01_e15_c04_u001"]}
    features = _text_features(ids, tmp_path / "text.npz")
    corpus = load_corpus("emorynlp", tmp_path / "emorynlp", cache_dir=tmp_path / "cache", features={"text": str(features)})
    validate_corpus(corpus)
    info = get_corpus_info(corpus)
    assert info.tasks == ["emotion"] and info.label_spaces == {"emotion": "emotion/emorynlp"}
    assert info.emotion_labels == ["Joyful", "Mad", "Neutral", "Peaceful", "Powerful", "Sad", "Scared"]
    train = corpus["train"].with_format("numpy")
    assert train["id"][:].tolist() == ids["train"]
    assert train[2]["speaker"] == "Rachel Green, Monica Geller"
    emotions = [EMOTION_LABELS[int(np.argmax(train[i]["emotion"]))] for i in range(4)]
    assert emotions == ["happiness", "neutral", "peaceful", "anger"]  # Joyful, Neutral, Peaceful, Mad
    assert train[0]["emotion_mask"].tolist() == label_space("emotion/emorynlp").union_mask()
    assert corpus_label_spaces(corpus)["emotion"].key == "emotion/emorynlp"
    # A model built from it has EmoryNLP's head, which predicts in EmoryNLP's names.
    config = MTAffectConfig.from_corpora({"emorynlp": corpus}, hidden_size=8, num_heads=2)
    assert list(config.label_spaces) == ["emotion/emorynlp"]
    batch = FeatureSetCollator.for_datasets([corpus["train"]])([corpus["train"].with_format("numpy")[i] for i in range(4)])
    prediction = MTAffectForMultiTaskAffect(config).predict(batch)[0]["emotion"]
    assert set(prediction["scores"]) == {"Joyful", "Mad", "Neutral", "Peaceful", "Powerful", "Sad", "Scared"}
    (tmp_path / "emorynlp" / "emorynlp_test_final.csv").write_text(EMORYNLP_HEADER + "\nHi.,['A'],Happy,1,1,1,1,0,0\n")
    with pytest.raises(CorpusFormatError, match="line 2: unknown emotion 'Happy' .*Joyful, Mad"):
        load_corpus("emorynlp", tmp_path / "emorynlp", cache_dir=tmp_path / "cache2", features={"text": str(features)})


@pytest.mark.skipif(not (SHARED / "emorynlp" / "emorynlp_train_final.csv").is_file(), reason="EmoryNLP not in ../shared")
def test_the_published_emorynlp_files_parse():
    from mtaffect.data.corpora.emorynlp import EMORYNLP_FILES, read_emorynlp_csv

    counts = {}
    for split, (_, name) in EMORYNLP_FILES.items():
        rows = read_emorynlp_csv(SHARED / "emorynlp" / name)
        assert len({r["id"] for r in rows}) == len(rows), split  # ids are unique within a split
        counts[split] = np.bincount([r["emotion"] for r in rows], minlength=7)
    assert counts["train"].sum() > 7000 and (counts["train"] > 0).all()
    # Peaceful and Powerful (indices 3, 4) are a real share of EmoryNLP (16% of the training rows).
    share = counts["train"][[3, 4]].sum() / counts["train"].sum()
    assert 0.1 < share < 0.3


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_text_table_loads_with_its_own_label_set(tmp_path, suffix):
    import pandas as pd

    frame = pd.DataFrame({
        "utterance": ["so glad", "furious", "meh", "yay", "grr", "calm down"],
        "mood": ["glad", "cross", "calm", "Glad", "", "2"],  # names any case, a missing label, a class index
        "fold": ["train", "train", "train", "dev", "test", "test"],
    })
    file = tmp_path / f"moods{suffix}"
    if suffix == ".csv":
        frame.to_csv(file, index=False)
    elif suffix == ".jsonl":
        frame.to_json(file, orient="records", lines=True)
    else:
        frame.to_parquet(file)
    space = {"task": "emotion", "name": "moods", "labels": ["glad", "cross", "calm"], "union": ["joy", "anger", "neutral"]}
    ids = {"train": ["train-1", "train-2", "train-3"], "validation": ["validation-4"], "test": ["test-5", "test-6"]}
    features = _text_features(ids, tmp_path / "text.npz")
    corpus = load_corpus("table", file, corpus_name="moods", cache_dir=tmp_path / "cache", task="emotion", label_space=space,
                         text_column="utterance", label_column="mood", split_column="fold", features={"text": str(features)})
    validate_corpus(corpus)
    assert {split: corpus[split].num_rows for split in corpus} == {"train": 3, "validation": 1, "test": 2}
    info = get_corpus_info(corpus)
    assert info.label_spaces["emotion"]["labels"] == ["glad", "cross", "calm"] and info.emotion_labels == ["glad", "cross", "calm"]
    test = corpus["test"].with_format("numpy")
    assert not test[0]["emotion_mask"].any()  # the empty label: kept, without a gold label
    assert EMOTION_LABELS[int(np.argmax(test[1]["emotion"]))] == "neutral"  # class index 2 = calm
    assert corpus["train"]["text"] == ["so glad", "furious", "meh"]
    config = MTAffectConfig.from_corpora({"moods": corpus}, hidden_size=8, num_heads=2)
    assert config.label_spaces["emotion/moods"]["labels"] == ["glad", "cross", "calm"]
    bad = tmp_path / "bad.csv"
    bad.write_text("utterance,mood,fold\nhi,happyish,train\n")
    with pytest.raises(CorpusFormatError, match="row 1: label 'happyish' does not fit emotion/moods"):
        load_corpus("table", bad, cache_dir=tmp_path / "c2", task="emotion", label_space=space, text_column="utterance",
                    label_column="mood", split_column="fold", features={"text": str(features)})


def test_a_table_folder_with_polarity_classes(tmp_path):
    folder = tmp_path / "reviews"
    folder.mkdir()
    (folder / "train.csv").write_text("text,label\ngood,positive\nbad,negative\nok,neutral\n")
    (folder / "dev.csv").write_text("text,label\nfine,1\n")
    (folder / "test.csv").write_text("text,label\nawful,0\n")
    ids = {"train": ["train-1", "train-2", "train-3"], "validation": ["validation-1"], "test": ["test-1"]}
    features = _text_features(ids, tmp_path / "text.npz")
    corpus = load_corpus("table", folder, cache_dir=tmp_path / "cache", label_space="sentiment/polarity",
                         features={"text": str(features)})
    validate_corpus(corpus)
    train = corpus["train"].with_format("numpy")
    assert train["sentiment_class"][:].tolist() == [2, 0, 1] and set(train["sentiment_num_classes"][:].tolist()) == {3}
    assert corpus_label_spaces(corpus)["sentiment"].key == "sentiment/polarity"


# --------------------------------------------------------------------------------------------
# The linear probe


def test_linear_probe_matches_sklearn_on_the_same_rows(tiny_family):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import StandardScaler

    from mtaffect.probe import linear_probe, pooled_features

    corpus = tiny_family["synthetic_meld"]
    result = linear_probe(corpus, "sentiment", grid=(1.0,))
    assert result.space == "sentiment/polarity" and result.parameter == "C" and result.value == 1.0
    x_train, x_test = pooled_features(corpus["train"]), pooled_features(corpus["test"])
    # The pooled features are the per-modality frame means, concatenated.
    first = corpus["train"].with_format("numpy")[0]
    np.testing.assert_allclose(x_train[0], np.concatenate([first["text_features"].mean(0), first["audio_features"].mean(0)]),
                               rtol=1e-5, atol=1e-7)  # float32 sums in another order: a value near 0 differs by ~5e-9
    scaler = StandardScaler().fit(x_train)
    y_train = np.asarray(corpus["train"]["sentiment_class"])
    y_test = np.asarray(corpus["test"]["sentiment_class"])
    reference = LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(x_train), y_train)
    expected = f1_score(y_test, reference.predict(scaler.transform(x_test)), average="weighted")
    assert result.test_metrics["sentiment_weighted_f1"] == pytest.approx(expected)
    score = linear_probe(tiny_family["synthetic_mosei"], "sentiment", grid=(0.1, 10.0))
    assert score.parameter == "alpha" and score.value in (0.1, 10.0) and "sentiment_MAE" in score.test_metrics
    assert set(score.validation) == {0.1, 10.0}


def test_study_training_arguments_are_honoured(tiny_family, tmp_path):
    """`training: {eval_strategy: steps, ...}` in a study config reaches the Trainer (it used to raise a TypeError)."""
    from mtaffect.study import StudyConfig, train_and_evaluate

    corpus = tiny_family["synthetic_mustard"]
    config = StudyConfig(
        model={"hidden_size": 8, "num_heads": 2},
        training={"eval_strategy": "steps", "eval_steps": 2, "max_steps": 6, "per_device_train_batch_size": 8,
                  "logging_strategy": "steps", "logging_steps": 2},
        patience=2,
    )
    trained = train_and_evaluate({"m": corpus["train"]}, {"m": corpus["validation"]}, {"m": corpus["test"]}, ["sarcasm"],
                                 config, 0, tmp_path / "run", all_corpora={"m": corpus})
    choice = trained.selection["m/sarcasm"]
    assert choice["step"] in (2, 4, 6) and choice["metric"] == "sarcasm_weighted_f1"
    assert trained.validation_score == pytest.approx(choice["score"])
    assert "sarcasm_weighted_f1" in trained.test_metrics["m"]["sarcasm"]  # corpus -> task -> metric
    with pytest.raises(ValueError, match="training.seed is set by the study"):
        StudyConfig(training={"seed": 3}).validate()
