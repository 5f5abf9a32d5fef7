"""Load an mtaffect model with pretrained encoders back and run it on raw text and audio.

Run by tests/test_encoders_hub.py in subprocesses whose HF_* variables point at the test Hub.

    python encoder_roundtrip.py publish FOLDER REPO_ID INPUTS_JSON OUT_DIR
        (mtaffect installed) push the saved folder to the Hub, load it back by id with
        AutoModel (no remote code), run it on the raw inputs, and run
        pipeline("multimodal-affect", model=REPO_ID) on each raw input.
    python encoder_roundtrip.py remote FOLDER REPO_ID INPUTS_JSON OUT_DIR
        (mtaffect hidden) load the folder and the Hub id with trust_remote_code=True and run
        them on the raw inputs, tokenized / featurized with the processors saved in the checkpoint.

The two run side by side: ``publish`` writes OUT_DIR/pushed once the repo is on the Hub, and
``remote`` loads the Hub id when that file is there (the folder before it).

INPUTS_JSON holds {"texts": [...], "audio": [paths of 16 kHz wav files]}.
"""

from __future__ import annotations

import importlib.abc
import json
import sys
from pathlib import Path

OUTPUTS = ("emotion_logits", "sentiment_score", "sarcasm_logits")


class _HideMtaffect(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "mtaffect" or name.startswith("mtaffect."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)", name=name)
        return None


def _save(output, path: Path) -> None:
    from safetensors.torch import save_file

    # Read by attribute: the per-task outputs are properties over head_outputs (one head per task here).
    save_file({key: getattr(output, key).contiguous() for key in OUTPUTS}, str(path))


def publish(folder: str, repo_id: str, inputs: dict, out: Path) -> None:
    import torch
    from transformers import AutoModel, pipeline

    import mtaffect.pipeline  # noqa: F401  (registers the task)
    from mtaffect.data.raw_inputs import EncoderInputCollator
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

    MTAffectForMultiTaskAffect.from_pretrained(folder).push_to_hub(repo_id)
    (out / "pushed").write_text(repo_id)
    model = AutoModel.from_pretrained(repo_id).eval()
    assert type(model).__module__ == "mtaffect.modeling_mtaffect", type(model).__module__
    rows = [{"id": str(i), "text": t, "audio": a} for i, (t, a) in enumerate(zip(inputs["texts"], inputs["audio"]))]
    batch = EncoderInputCollator.for_model(model, base=lambda rows: {})(rows)
    with torch.no_grad():
        _save(model(**batch), out / "hub-installed.safetensors")
    classifier = pipeline("multimodal-affect", model=repo_id)
    predictions = [classifier({"text": t, "audio": a}) for t, a in zip(inputs["texts"], inputs["audio"])]
    (out / "pipeline.json").write_text(json.dumps(predictions))
    print("PUBLISH-OK")


def remote(folder: str, repo_id: str, inputs: dict, out: Path) -> None:
    sys.meta_path.insert(0, _HideMtaffect())
    import soundfile
    import torch
    from transformers import AutoModel

    for name, source in (("folder", folder), ("hub", repo_id)):
        if name == "hub":
            _wait_for(out / "pushed")
        model = AutoModel.from_pretrained(source, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        specs = model.config.pretrained_encoders
        tokenizer, extractor = model.processors["text"], model.processors["audio"]
        text = tokenizer(inputs["texts"], padding=True, truncation=True, max_length=specs["text"]["max_length"],
                         return_tensors="pt")
        waves = [soundfile.read(path, dtype="float32")[0] for path in inputs["audio"]]
        audio = extractor(waves, sampling_rate=16000, padding="longest", return_attention_mask=True, return_tensors="pt")
        with torch.no_grad():
            output = model(
                text_input_ids=text["input_ids"], text_attention_mask=text["attention_mask"],
                audio_input_values=audio["input_values"], audio_attention_mask=audio["attention_mask"],
            )
        _save(output, out / f"remote-{name}.safetensors")
    assert not any(n == "mtaffect" or n.startswith("mtaffect.") for n in sys.modules)
    print("REMOTE-OK")


def _wait_for(marker: Path, timeout: float = 600) -> None:
    """Until the publishing process has pushed the repo (it writes ``marker``), or fail."""
    import time

    deadline = time.monotonic() + timeout
    while not marker.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{marker} did not appear: the publishing process never pushed.")
        time.sleep(0.2)


if __name__ == "__main__":
    mode, folder, repo_id, inputs_file, out_dir = sys.argv[1:6]
    {"publish": publish, "remote": remote}[mode](folder, repo_id, json.loads(Path(inputs_file).read_text()), Path(out_dir))
