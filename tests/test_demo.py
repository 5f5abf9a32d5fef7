"""`mtaffect demo`: the Gradio app answers over its API exactly what the pipeline answers."""

from __future__ import annotations

import json

import pytest

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
pytest.importorskip("opensmile")

from hub_server import free_port  # noqa: E402

from mtaffect.demo import API_NAME, build_demo, inputs_used, label_values, summarize  # noqa: E402


@pytest.fixture(scope="module")
def text_audio_checkpoint(tmp_path_factory, minilm_checkpoint):
    """A tiny model reading MiniLM text + openSMILE functionals, all three tasks, saved."""
    import torch

    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.data.extract import AudioExtractor, feature_set_name
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

    _, _, text_extractor, _ = minilm_checkpoint
    audio = AudioExtractor(level="functionals")
    name = feature_set_name([text_extractor, audio])
    config = MTAffectConfig(
        feature_sets={name: {"text": text_extractor.dim, "audio": audio.dim}}, hidden_size=8, num_heads=2,
        emotion_labels=["neutral", "joy", "anger"],
    )
    config.feature_extractors = {name: {"text": text_extractor.describe(), "audio": audio.describe()}}
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("demo-checkpoint")
    MTAffectForMultiTaskAffect(config).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def served(text_audio_checkpoint):
    demo = build_demo(str(text_audio_checkpoint))
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def test_the_app_gives_the_pipelines_predictions(served, text_audio_checkpoint, tmp_path):
    from gradio_client import Client, handle_file
    from transformers import pipeline

    import mtaffect.pipeline  # noqa: F401
    from mtaffect.data.extract.samples import write_tone

    wav = write_tone(tmp_path / "clip.wav", seconds=1.0, rate=16_000)
    classifier = pipeline("multimodal-affect", model=str(text_audio_checkpoint))
    client = Client(served, verbose=False)

    text = "Oh great, another meeting."
    summary, used, emotion, sentiment, sarcasm, raw = client.predict(
        text, handle_file(str(wav)), None, 0.5, api_name=f"/{API_NAME}"
    )
    expected = json.loads(json.dumps(classifier({"text": text, "audio": str(wav)})))
    assert raw == expected
    assert "text → text features" in used and "audio → audio features" in used
    # The label panels show the names the model saved, with the pipeline's probabilities.
    assert emotion["label"] == expected["emotion"]["label"]
    assert {c["label"]: pytest.approx(c["confidence"]) for c in emotion["confidences"]} == expected["emotion"]["scores"]
    assert sentiment["label"].startswith(expected["sentiment"]["label"] + " (")
    assert expected["emotion"]["label"] in summary and expected["sentiment"]["label"] in summary
    assert {c["label"] for c in sarcasm["confidences"]} == {"sarcastic", "not sarcastic"}

    # Text alone, another threshold: still the pipeline's answer; a clip without audio differs.
    *_, raw_text = client.predict(text, None, None, 0.3, api_name=f"/{API_NAME}")
    assert raw_text == json.loads(json.dumps(classifier(text, threshold=0.3)))
    assert raw_text["sentiment"] != raw["sentiment"]


def test_the_app_refuses_an_empty_request(served):
    from gradio_client import Client

    client = Client(served, verbose=False)
    with pytest.raises(Exception, match="Type an utterance"):
        client.predict("", None, None, 0.5, api_name=f"/{API_NAME}")


def test_inputs_the_model_cannot_read_are_reported():
    assert inputs_used({"text": ["text"], "video": []}).splitlines()[2:] == [
        "- text → text features", "- video: **ignored** (this model has no extractor that reads it)",
    ]
    assert inputs_used({"video": ["visual", "audio"]}).splitlines()[2:] == ["- video → visual + audio features"]


def test_panels_and_summary_of_a_prediction():
    prediction = {
        "emotion": {"label": "joy", "labels": ["joy"], "scores": {"joy": 0.7, "anger": 0.3}},
        "sentiment": {"score": 1.25, "label": "positive"},
        "sarcasm": {"score": 0.2, "label": False},
    }
    assert label_values(prediction, "emotion") == {"joy": 0.7, "anger": 0.3}
    assert label_values(prediction, "sarcasm") == pytest.approx({"sarcastic": 0.2, "not sarcastic": 0.8})
    assert label_values(prediction, "sentiment") == "positive (+1.25)"  # a score, not a probability
    assert label_values({}, "emotion") is None
    assert summarize(prediction).splitlines()[2:] == [
        "- **emotion**: joy (0.70)", "- **sentiment**: positive (score +1.25)", "- **sarcasm**: not sarcastic (p = 0.20)",
    ]


@pytest.fixture(scope="module")
def context_checkpoint(tmp_path_factory, minilm_checkpoint):
    """A tiny MiniLM-feature model that reads the utterance's 2 preceding turns (``config.context``), saved."""
    import torch

    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.data.extract import feature_set_name
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

    _, _, text_extractor, _ = minilm_checkpoint
    name = feature_set_name([text_extractor])
    config = MTAffectConfig(feature_sets={name: {"text": text_extractor.dim}}, hidden_size=8, num_heads=2,
                            emotion_labels=["neutral", "joy", "anger"], context={"past": 2})
    config.feature_extractors = {name: {"text": text_extractor.describe()}}
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("demo-context-checkpoint")
    MTAffectForMultiTaskAffect(config).eval().save_pretrained(folder)
    return folder


def test_the_context_boxes_reach_the_model_as_the_pipelines_turns(context_checkpoint):
    from gradio_client import Client
    from transformers import pipeline

    import mtaffect.pipeline  # noqa: F401

    demo = build_demo(str(context_checkpoint))
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        text, turns = "Oh. Great.", "Ross: I got us tickets to the opera.\nChandler: The opera?"
        *_, raw = client.predict(text, None, None, 0.5, "Chandler", turns, api_name=f"/{API_NAME}")
        *_, alone = client.predict(text, None, None, 0.5, "", "", api_name=f"/{API_NAME}")
    finally:
        demo.close()
    classifier = pipeline("multimodal-affect", model=str(context_checkpoint))
    given = [{"speaker": "Ross", "text": "I got us tickets to the opera."}, {"speaker": "Chandler", "text": "The opera?"}]
    assert raw == json.loads(json.dumps(classifier({"text": text, "speaker": "Chandler", "context": given})))
    assert alone == json.loads(json.dumps(classifier(text)))
    assert raw["emotion"]["scores"] != alone["emotion"]["scores"]  # the turns did reach the model
