"""A Gradio app for any mtaffect checkpoint: type an utterance, add its audio or video, see the affect.

The app is a thin face on the ``"multimodal-affect"`` pipeline (``mtaffect.pipeline``): what
it shows is exactly what ``pipeline("multimodal-affect", model=...)`` returns for the same
inputs, with the label names the checkpoint saved, plus which of the given inputs the
model's feature extractors read (a text-only model ignores an uploaded clip, and says so).
``mtaffect demo --model MODEL`` serves it locally; ``hub_scripts/push_demo.py`` publishes it as a
Space whose ``app.py`` is two lines calling ``build_demo``.

Gradio is an optional extra (``pip install "mtaffect[demo]"``); nothing else in mtaffect
imports this module.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)

#: The demo's inputs, in the order of its API (``gradio_client.Client.predict``).
API_INPUTS: tuple[str, ...] = ("text", "audio", "video", "threshold")
#: What a model with conversational context (``config.context``) takes after ``API_INPUTS``: the
#: utterance's speaker and the preceding turns, one ``Speaker: text`` line each, oldest first.
CONTEXT_INPUTS: tuple[str, ...] = ("speaker", "context")
#: The name of the prediction endpoint (``client.predict(..., api_name="/predict")``).
API_NAME = "predict"
_MODALITY_NAMES = {"text": "text", "audio": "audio", "visual": "visual"}


def _gradio() -> Any:
    try:
        import gradio
    except ImportError as error:
        raise ImportError("The demo app needs Gradio, which is not installed: pip install 'mtaffect[demo]'") from error
    return gradio


def load_classifier(model: Any, extractors: Mapping[str, Any] | None = None) -> Any:
    """The ``"multimodal-affect"`` pipeline of a model, a checkpoint folder or a Hub id.

    Args:
        model: an ``MTAffectForMultiTaskAffect``, a ``save_pretrained`` folder or a Hub id.
        extractors: modality -> extractor (or its description) for raw inputs, when the
            model's config records none.
    """
    from transformers import pipeline

    import mtaffect.pipeline  # noqa: F401  (registers the task)

    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

        model = MTAffectForMultiTaskAffect.from_pretrained(str(model))
    return pipeline("multimodal-affect", model=model, extractors=extractors)


def output_heads(config: Any) -> list[tuple[str, dict[str, Any]]]:
    """(prediction key, label space) of every head, in the pipeline's naming (``config.prediction_keys``):
    the task name when the model has one head for the task, else the head name (``"emotion/meld"``)."""
    return [(name, config.label_spaces[key]) for key, name in config.prediction_keys().items()]


def describe_model(classifier: Any) -> str:
    """Markdown: the heads and label names the model saved and the inputs it reads."""
    lines = []
    for key, space in output_heads(classifier.model.config):
        if space["kind"] == "score":
            lines.append(f"- **{key}**: a score (and its negative / neutral / positive polarity)")
        elif space["kind"] == "binary":
            lines.append(f"- **{key}**: probability of {space['task']}")
        else:
            view = " (multi-label)" if space["kind"] == "multilabel" else ""
            lines.append(f"- **{key}**{view}: {', '.join(space['labels'])}")
    reads = _extractor_lines(classifier)
    return "\n".join(["This model predicts", *lines, "", "It reads", *reads])


def _extractor_lines(classifier: Any) -> list[str]:
    config = classifier.model.config
    source = {"text": "the utterance", "audio": "the audio (or the video's sound track)", "visual": "the video"}
    # Pretrained encoders inside the model read raw inputs with their own tokenizer / feature extractor.
    lines = [
        f"- **{modality}** from {source[modality]}: its own encoder `{spec.get('name_or_path')}` "
        f"(fine-tuned: {spec.get('finetune')})"
        for modality, spec in (getattr(config, "pretrained_encoders", None) or {}).items()
    ]
    if lines and not config.feature_sets:
        return lines
    try:
        _, extractors = classifier._extractor_specs(None)
    except ValueError as error:
        return [*lines, f"- nothing else from raw media: {error}" if lines else f"- nothing from raw media: {error}"]
    for modality, extractor in extractors.items():
        lines.append(f"- **{modality}** from {source.get(modality, modality)}: `{extractor.name}` ({extractor.dim} dims)")
    return lines


def parse_turns(text: str | None) -> list[dict[str, str]]:
    """The context box's lines as pipeline turns: ``Speaker: text`` (or just ``text``) per line, oldest first.

    Examples:
        >>> parse_turns("Ross: I got us tickets.\\n\\nWhat for?")
        [{'speaker': 'Ross', 'text': 'I got us tickets.'}, {'speaker': '', 'text': 'What for?'}]
    """
    turns = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        speaker, colon, rest = line.partition(":")
        if colon and rest.strip() and 0 < len(speaker.strip()) <= 40:
            turns.append({"speaker": speaker.strip(), "text": rest.strip()})
        else:
            turns.append({"speaker": "", "text": line})
    return turns


def inputs_used(use: Mapping[str, list[str]]) -> str:
    """Markdown line per given input: the modality it fed, or that the model ignored it."""
    if not use:
        return "No input given."
    lines = ["**Inputs used**", ""]
    for key, feeds in use.items():
        if feeds:
            lines.append(f"- {key} → {' + '.join(_MODALITY_NAMES.get(m, m) for m in feeds)} features")
        else:
            lines.append(f"- {key}: **ignored** (this model has no extractor that reads it)")
    return "\n".join(lines)


def summarize(prediction: Mapping[str, Any]) -> str:
    """Markdown: one line per task of a pipeline prediction (label, then its score)."""
    lines = ["**Prediction**", ""]
    for task, value in prediction.items():
        if not isinstance(value, Mapping):
            continue
        if "scores" in value:
            top = value["label"]
            chosen = value.get("labels", [top])
            shown = ", ".join(chosen) if chosen else f"none above the threshold (top: {top})"
            lines.append(f"- **{task}**: {shown} ({value['scores'][top]:.2f})")
        elif isinstance(value.get("label"), bool):  # a binary head (sarcasm)
            name = "sarcastic" if task == "sarcasm" else task
            verdict = name if value["label"] else f"not {name}"
            lines.append(f"- **{task}**: {verdict} (p = {value['score']:.2f})")
        elif "score" in value:
            lines.append(f"- **{task}**: {value['label']} (score {value['score']:+.2f})")
    return "\n".join(lines)


def label_values(prediction: Mapping[str, Any], task: str) -> dict[str, float] | str | None:
    """What a ``gr.Label`` of ``task`` shows: label -> probability, or the label alone for a
    score that is no probability (sentiment); ``None`` if the task is absent."""
    value = prediction.get(task)
    if not isinstance(value, Mapping):
        return None
    if "scores" in value:
        return {name: float(p) for name, p in value["scores"].items()}
    if isinstance(value.get("label"), bool):  # a binary head (sarcasm)
        name = "sarcastic" if task == "sarcasm" else task
        return {name: float(value["score"]), f"not {name}": 1.0 - float(value["score"])}
    return f"{value['label']} ({value['score']:+.2f})"


def build_demo(
    model: Any,
    extractors: Mapping[str, Any] | None = None,
    title: str | None = None,
    text: str | None = None,
    examples: list[str] | None = None,
) -> Any:
    """The Gradio ``Blocks`` app of a model (not launched).

    Args:
        model: an ``MTAffectForMultiTaskAffect``, a ``save_pretrained`` folder or a Hub id.
        extractors: modality -> extractor for raw inputs when the config records none.
        title: the heading; defaults to the model's name or path.
        text: an utterance the app opens with, already predicted (what a visitor sees first).
        examples: utterances offered as clickable examples under the text box.

    The prediction endpoint is ``/predict`` with inputs ``API_INPUTS`` (text, audio file,
    video file, threshold), followed for a model with conversational context (``config.context``)
    by ``CONTEXT_INPUTS`` (the utterance's speaker, the preceding turns as ``Speaker: text``
    lines), and outputs: a summary, the inputs used,
    one label panel per head (per task where the task has one head), and the pipeline's prediction as JSON (the last output).
    """
    gr = _gradio()
    classifier = load_classifier(model, extractors)
    config = classifier.model.config
    name = title or _display_name(getattr(config, "_name_or_path", "")) or "mtaffect model"
    heads = output_heads(config)
    tasks = [key for key, _ in heads]

    with_context = bool((getattr(config, "context", None) or {}).get("past"))

    def predict(
        text: str | None, audio: str | None, video: str | None, threshold: float,
        speaker: str | None = None, context: str | None = None,
    ):
        raw = {key: value for key, value in (("text", text), ("audio", audio), ("video", video)) if value}
        if not raw:
            raise gr.Error("Type an utterance or give its audio or video.")
        try:
            use = classifier.raw_input_use(raw)
            if not any(use.values()):
                raise ValueError(f"this model reads none of the inputs given ({', '.join(raw)}).")
            turns = parse_turns(context)
            given = {**raw, "context": turns, "speaker": speaker or ""} if turns else raw
            prediction = classifier(given, threshold=float(threshold))
        except (ValueError, ImportError) as error:  # ExtractionError is a ValueError; MissingExtraError an ImportError
            logger.info("demo input refused: %s", error)
            raise gr.Error(str(error)) from None
        return (summarize(prediction), inputs_used(use), *(label_values(prediction, t) for t in tasks), prediction)

    # The opening utterance is predicted here, so the first page a visitor sees is already filled in.
    initial = predict(text, None, None, 0.5) if text else (None, None, *(None for _ in tasks), None)

    with gr.Blocks(title=f"mtaffect · {name}") as demo:
        gr.Markdown(f"# {name}\nEmotion, sentiment and sarcasm of one utterance, by an mtaffect model.")
        with gr.Row():
            with gr.Column(scale=1):
                text_box = gr.Textbox(label="Utterance", placeholder="Oh great, another meeting.", value=text, lines=2)
                context_inputs = []
                if with_context:
                    # The model reads up to config.context["past"] preceding turns of the dialogue.
                    speaker_box = gr.Textbox(label="Speaker of the utterance", placeholder="Chandler", lines=1)
                    context_box = gr.Textbox(
                        label=f"Preceding turns (one 'Speaker: text' per line, oldest first; the last "
                        f"{config.context['past']} are read)", placeholder="Ross: I got us tickets.", lines=3,
                    )
                    context_inputs = [speaker_box, context_box]
                if examples:
                    gr.Examples([[example] for example in examples], inputs=[text_box], label="Examples")
                with gr.Row():
                    audio = gr.Audio(label="Audio (upload or record)", sources=["upload", "microphone"], type="filepath")
                    video = gr.Video(label="Video", sources=["upload"], height=180)
                with gr.Accordion("Options", open=False):
                    threshold = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Threshold (multi-label emotion, sarcasm)")
                button = gr.Button("Predict", variant="primary")
                with gr.Accordion("About this model", open=True):
                    gr.Markdown(describe_model(classifier))
            with gr.Column(scale=1):
                summary = gr.Markdown(initial[0], label="Prediction")
                used = gr.Markdown(initial[1], label="Inputs used")
                labels = [
                    gr.Label(value, label=key, num_top_classes=len(space.get("labels") or ()) or None)
                    for (key, space), value in zip(heads, initial[2:-1])
                ]
                with gr.Accordion("Pipeline output (JSON)", open=False):
                    raw_output = gr.JSON(initial[-1], label="pipeline output")
        inputs = [text_box, audio, video, threshold, *context_inputs]
        outputs = [summary, used, *labels, raw_output]
        button.click(predict, inputs=inputs, outputs=outputs, api_name=API_NAME)
        text_box.submit(predict, inputs=inputs, outputs=outputs, api_name=False)
    return demo


def _display_name(name_or_path: str) -> str:
    """A Hub id as is; a local checkpoint by its folder name (not a long temporary path)."""
    from pathlib import Path

    path = Path(name_or_path)
    return path.name if name_or_path and path.exists() else name_or_path
