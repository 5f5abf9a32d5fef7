"""`mtaffect predict` gives the pipeline's predictions for raw utterances, one JSON line each."""

from __future__ import annotations

import json

import pytest

from mtaffect.cli.main import main
from mtaffect.cli.predict import read_utterances


@pytest.fixture(scope="module")
def text_model(minilm_checkpoint):
    return minilm_checkpoint[0]


def test_predictions_are_the_pipelines(text_model, tmp_path, capsys):
    from transformers import pipeline

    import mtaffect.pipeline  # noqa: F401

    classifier = pipeline("multimodal-affect", model=str(text_model))
    assert main(["predict", "--model", str(text_model), "--text", "Oh great, another meeting."]) == 0
    (single,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert single == json.loads(json.dumps(classifier("Oh great, another meeting.")))

    utterances = tmp_path / "utterances.jsonl"
    utterances.write_text('{"id": "u1", "text": "I love it"}\n\n{"id": "u2", "text": "This is awful"}\n')
    output = tmp_path / "out" / "predictions.jsonl"
    assert main(["predict", "--model", str(text_model), "--input", str(utterances), "--output", str(output),
                 "--emotion-multilabel", "--threshold", "0.3"]) == 0
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["u1", "u2"]
    expected = json.loads(json.dumps(classifier("This is awful", emotion_multilabel=True, threshold=0.3)))
    assert {k: v for k, v in lines[1].items() if k != "id"} == expected


def test_media_paths_are_relative_to_the_file(tmp_path):
    utterances = tmp_path / "sub" / "utterances.jsonl"
    utterances.parent.mkdir()
    utterances.write_text(json.dumps({"text": "hi", "audio": "clips/a.wav", "video": "/abs/v.mp4"}) + "\n")
    (record,) = read_utterances(utterances)
    assert record == {"text": "hi", "audio": str(tmp_path / "sub" / "clips" / "a.wav"), "video": "/abs/v.mp4"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json\n", "utterances.jsonl:1: not a JSON object"),
        ('{"text": "ok"}\n["a list"]\n', "utterances.jsonl:2: expected an object with 'text'"),
        ('{"text": "ok", "speaker": "A"}\n', "unknown keys ['speaker']"),
    ],
)
def test_bad_utterance_files_name_the_line(tmp_path, capsys, content, message):
    utterances = tmp_path / "utterances.jsonl"
    utterances.write_text(content)
    assert main(["predict", "--model", str(tmp_path / "unused"), "--input", str(utterances)]) == 2
    assert message in capsys.readouterr().err


def test_refusals(tmp_path, capsys):
    model = str(tmp_path / "unused")
    assert main(["predict", "--model", model]) == 2
    assert "nothing to predict" in capsys.readouterr().err
    assert main(["predict", "--model", model, "--text", "hi", "--input", str(tmp_path / "u.jsonl")]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["predict", "--model", model, "--text", "hi", "--audio", str(tmp_path / "none.wav")]) == 2
    assert "no such audio file" in capsys.readouterr().err
    output = tmp_path / "mine.jsonl"
    output.write_text("mine")
    assert main(["predict", "--model", model, "--text", "hi", "--output", str(output)]) == 2
    assert "exists" in capsys.readouterr().err and output.read_text() == "mine"
