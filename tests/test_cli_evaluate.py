"""`mtaffect evaluate` scores a saved checkpoint on saved corpora with the study's metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from mtaffect.cli.evaluate import metrics_by_corpus
from mtaffect.cli.main import main
from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.data.collator import MTAffectCollator
from mtaffect.data.corpora.synthetic import make_synthetic_corpus
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_family):
    """A small untrained multi-task checkpoint and two saved corpora (its own feature set)."""
    root = tmp_path_factory.mktemp("evaluate")
    corpora = {name: tiny_family[name] for name in ("synthetic_mosei", "synthetic_mustard")}
    torch.manual_seed(0)
    model = MTAffectForMultiTaskAffect(MTAffectConfig.from_corpora(corpora, hidden_size=16, num_heads=2))
    model.save_pretrained(root / "model")
    for name, corpus in corpora.items():
        corpus.save_to_disk(str(root / name))
    return root, model.eval(), corpora


def test_metrics_equal_a_hand_computation(saved, capsys):
    root, model, corpora = saved
    output = root / "out" / "metrics.json"
    code = main([
        "evaluate", "--model", str(root / "model"), "--corpora",
        f"mosei={root / 'synthetic_mosei'}", str(root / "synthetic_mustard"), "--output", str(output),
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "[mosei]" in printed and "[synthetic_mustard]" in printed and "sarcasm_weighted_f1" in printed
    report = json.loads(output.read_text())
    assert report["split"] == "test" and set(report["corpora"]) == {"mosei", "synthetic_mustard"}
    assert "runtime" not in report["corpora"]["mosei"]  # speed metrics are not the model's
    # The literature's headline metrics first (MOSEI emotion: weighted acc and F1 over labels; sentiment:
    # Acc-2 both ways, F1, MAE, Corr), then the rest.
    assert list(report["corpora"]["mosei"])[:7] == [
        "emotion_weighted_acc", "emotion_weighted_f1", "sentiment_Has0_acc_2", "sentiment_Non0_acc_2", "sentiment_Non0_F1_score", "sentiment_MAE", "sentiment_Corr",
    ]
    block = printed[printed.index("[mosei]"):]
    assert block.index("sentiment_Has0_acc_2") < block.index("sentiment_Corr") < block.index("sentiment_Has0_F1_score")

    # Sarcasm weighted F1 on MUStARD's test split, from the model's own forward pass.
    test = corpora["synthetic_mustard"]["test"].with_format("numpy")
    batch = MTAffectCollator.for_dataset(test)([test[i] for i in range(len(test))])
    with torch.no_grad():
        logits = model(**batch).sarcasm_logits.reshape(-1).numpy()
    expected = f1_score(test["sarcasm"][:].astype(int), (logits > 0).astype(int), average="weighted")
    assert report["corpora"]["synthetic_mustard"]["sarcasm_weighted_f1"] == pytest.approx(expected, abs=1e-6)
    # Sentiment MAE on MOSEI's test split.
    test = corpora["synthetic_mosei"]["test"].with_format("numpy")
    batch = MTAffectCollator.for_dataset(test)([test[i] for i in range(len(test))])
    with torch.no_grad():
        scores = model(**batch).sentiment_score.reshape(-1).numpy()
    mae = np.abs(np.clip(scores, -3, 3) - test["sentiment"][:]).mean()
    assert report["corpora"]["mosei"]["sentiment_MAE"] == pytest.approx(mae, abs=1e-5)
    primaries = [report["corpora"][name]["primary_score"] for name in ("mosei", "synthetic_mustard")]
    assert report["combined_score"] == pytest.approx(np.mean(primaries))


def test_validation_split_by_its_other_names(saved, capsys):
    root, _, corpora = saved
    assert main(["evaluate", "--model", str(root / "model"), "--corpora", str(root / "synthetic_mustard"),
                 "--split", "dev"]) == 0
    assert f"validation split of synthetic_mustard ({corpora['synthetic_mustard']['validation'].num_rows})" in (
        capsys.readouterr().out
    )


def test_refuses_features_the_model_was_not_built_for(saved, tmp_path, capsys):
    root, _, _ = saved
    other = make_synthetic_corpus("synthetic_mustard", size_scale=0.1, max_length=8, shared_features=False)
    other.save_to_disk(str(tmp_path / "mustard_own_features"))
    code = main(["evaluate", "--model", str(root / "model"), "--corpora", str(tmp_path / "mustard_own_features")])
    assert code == 2
    error = capsys.readouterr().err
    assert "'synthetic-mustard'" in error and "built for ['synthetic-cmu']" in error and "mtaffect extract" in error


def test_never_overwrites_an_output_file(saved, tmp_path, capsys):
    root, _, _ = saved
    output = tmp_path / "metrics.json"
    output.write_text("mine")
    code = main(["evaluate", "--model", str(root / "model"), "--corpora", str(root / "synthetic_mustard"),
                 "--output", str(output)])
    assert code == 2 and "exists" in capsys.readouterr().err
    assert output.read_text() == "mine"


def test_metrics_of_corpora_whose_names_share_a_prefix():
    metrics = {"test_a_x": 1.0, "test_a_b_x": 2.0, "test_a_b_runtime": 0.1, "test_combined_score": 3.0}
    assert metrics_by_corpus(metrics, ["a", "a_b"], "test") == {"a": {"x": 1.0}, "a_b": {"x": 2.0}}


@pytest.mark.parametrize("broken", ["missing", "bad_json", "bad_weights"])
def test_a_checkpoint_it_cannot_load_is_one_clear_error(saved, tmp_path, capsys, broken):
    root, _, _ = saved
    folder = tmp_path / broken
    if broken != "missing":
        folder.mkdir()
        (folder / "config.json").write_text("{not json" if broken == "bad_json" else (root / "model" / "config.json").read_text())
        (folder / "model.safetensors").write_bytes(b"garbage")
    assert main(["evaluate", "--model", str(folder), "--corpora", str(root / "synthetic_mustard")]) == 2
    error = capsys.readouterr().err
    assert f"cannot load the model {str(folder)!r}" in error and "save_pretrained" in error
    assert "Traceback" not in error


def test_refuses_a_corpus_without_gold_labels_for_the_models_tasks(saved, tmp_path, capsys):
    root, _, corpora = saved
    sentiment_only = MTAffectForMultiTaskAffect(
        MTAffectConfig.from_corpora(corpora, tasks=["sentiment"], hidden_size=8, num_heads=2)
    )
    sentiment_only.save_pretrained(tmp_path / "sentiment-model")
    code = main(["evaluate", "--model", str(tmp_path / "sentiment-model"), "--corpora", str(root / "synthetic_mustard")])
    assert code == 2
    assert "gold labels for ['sarcasm'] but the model predicts ['sentiment']" in capsys.readouterr().err
