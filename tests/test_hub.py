"""End-to-end Hub round trips against the local test Hub server (tests/hub_server.py).

CI has no Hub, so a Hub-compatible server runs on 127.0.0.1 inside the test process and the
round trips run in subprocesses whose environment points HF_ENDPOINT / HF_TOKEN / HF_HOME at
it before any Hugging Face library is imported (they read those variables at import). The
code under test is the real huggingface_hub / transformers / datasets code: nothing is
patched, and the server records the requests it served, which the tests check.

To keep the module fast, the subprocesses run once per module and in parallel where they
are independent: the publisher (train -> Trainer.push_to_hub, model.push_to_hub, load back,
pipeline, corpora), the hub_scripts, then the remote-code consumer and the quickstart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hub_server import DEFAULT_USER, HubTestServer, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent / "scripts"
HUB_SCRIPTS = REPO_ROOT / "hub_scripts"
TIMEOUT = 600

TRAINED = f"{DEFAULT_USER}/tiny-trained"
MODEL = f"{DEFAULT_USER}/tiny-model"
NO_EVAL = f"{DEFAULT_USER}/no-eval"
CORPORA = f"{DEFAULT_USER}/affect-corpora"
FINETUNED = f"{DEFAULT_USER}/quickstart-finetuned"
CHECKPOINT = f"{DEFAULT_USER}/pushed-checkpoint"
METRIC_SPACE = f"{DEFAULT_USER}/mtaffect_metrics"
SCRIPT_CORPORA = f"{DEFAULT_USER}/script-corpora"


@dataclass
class Run:
    """A finished subprocess: its command, exit code and output."""

    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def check(self) -> Run:
        assert self.returncode == 0, f"{self.name} failed ({self.returncode}):\n{self.stdout[-3000:]}\n{self.stderr[-6000:]}"
        return self


class _Launcher:
    """Start subprocesses with the test Hub's environment; wait for them together."""

    def __init__(self, hub: HubTestServer, tmp: Path):
        self.hub, self.tmp = hub, tmp
        self.running: dict[str, tuple[subprocess.Popen, float]] = {}

    def env(self, name: str, hide_mtaffect: bool = False, **overrides: str) -> dict[str, str]:
        env = self.hub.env(hf_home=self.tmp / f"hf-home-{name}")
        if not hide_mtaffect:
            # The package from this checkout, whatever state the installed copy is in.
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env.update(overrides)
        return env

    def start(self, name: str, args: list[str], hide_mtaffect: bool = False, **overrides: str) -> None:
        cwd = self.tmp / f"cwd-{name}"
        cwd.mkdir(exist_ok=True)
        process = subprocess.Popen(
            [sys.executable, *args], cwd=cwd, env=self.env(name, hide_mtaffect, **overrides),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.running[name] = (process, time.monotonic())

    def wait(self) -> dict[str, Run]:
        finished = {}
        for name, (process, start) in self.running.items():
            try:
                stdout, stderr = process.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
            finished[name] = Run(name, process.returncode, stdout, stderr, time.monotonic() - start)
        self.running.clear()
        return finished


@pytest.fixture(scope="module")
def hub():
    with HubTestServer() as server:
        yield server


@pytest.fixture(scope="module")
def runs(hub, tmp_path_factory) -> dict[str, Run]:
    """Every subprocess of this module, run once, overlapping where they are independent.

    The publisher starts with the light CLI runs; the remote-code consumer and the quickstart
    start as soon as the publisher has pushed the evaluated model (it writes a marker file).
    """
    tmp = tmp_path_factory.mktemp("hub-runs")
    out = tmp / "publish"
    out.mkdir()
    launcher = _Launcher(hub, tmp)
    launcher.start("publish", [str(SCRIPTS / "hub_publish.py"), str(out)])
    for script in ("push_checkpoint", "push_corpus", "push_metric"):
        launcher.start(f"{script}-help", [str(HUB_SCRIPTS / f"{script}.py"), "--help"])
    launcher.start("push_metric", [str(HUB_SCRIPTS / "push_metric.py"), METRIC_SPACE])
    launcher.start(
        "push_metric_bad_token", [str(HUB_SCRIPTS / "push_metric.py"), f"{DEFAULT_USER}/bad-token-metric"],
        HF_TOKEN="hf_not_a_valid_token",
    )
    # --keep-card uploads the folder as is, so files that only look like a checkpoint will do:
    # this run is about the error when the endpoint does not answer.
    folder = tmp / "fake-checkpoint"
    folder.mkdir()
    for name, content in {"config.json": "{}", "model.safetensors": "x", "README.md": "# card\n"}.items():
        (folder / name).write_text(content)
    launcher.start(
        "push_checkpoint_unreachable",
        [str(HUB_SCRIPTS / "push_checkpoint.py"), str(folder), f"{DEFAULT_USER}/unreachable", "--keep-card"],
        HF_ENDPOINT=f"http://127.0.0.1:{free_port()}",
    )
    publisher = launcher.running["publish"][0]
    deadline = time.monotonic() + TIMEOUT
    while not (out / "model-pushed").exists() and publisher.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if (out / "model-pushed").exists():
        launcher.start(
            "remote_code", [str(SCRIPTS / "hub_remote_code.py"), MODEL, str(out / "reference.pt"), str(out)],
            hide_mtaffect=True,
        )
        launcher.start(
            "evaluate_cli",
            ["-m", "mtaffect.cli.main", "evaluate", "--model", MODEL, "--corpora",
             f"synthetic_mustard={out / 'synthetic_mustard'}", "--split", "validation",
             "--output", str(out / "evaluate.json")],
        )
        launcher.start(
            "quickstart",
            [str(REPO_ROOT / "examples" / "quickstart.py"), "--base-model", MODEL, "--push-to", FINETUNED,
             "--size-scale", "0.05", "--epochs", "1", "--output-dir", str(tmp / "quickstart-out")],
        )
    finished = launcher.wait()
    finished["publish"].check()
    finished["out"] = out  # type: ignore[assignment]
    return finished


@pytest.fixture(scope="module")
def published(runs) -> dict:
    return json.loads((runs["out"] / "results.json").read_text())


def _ok(published: dict, step: str) -> dict:
    result = published[step]
    assert not (isinstance(result, dict) and "error" in result), f"{step} failed in hub_publish.py:\n{result['error']}"
    return result


# ---------------------------------------------------------------------------------------------
# The server itself (in process, explicit endpoint: fast, and independent of the round trips)


def test_server_answers_like_the_hub(hub):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError, RepositoryNotFoundError

    api = HfApi(endpoint=hub.url, token=hub.token)
    url = api.create_repo("server-check")
    assert url.repo_id == f"{DEFAULT_USER}/server-check"
    api.upload_file(path_or_fileobj=b"\x00binary", path_in_repo="data/blob.bin", repo_id=url.repo_id)
    api.upload_file(path_or_fileobj=b"hello", path_in_repo="notes.txt", repo_id=url.repo_id)
    assert hub.is_lfs(url.repo_id, "data/blob.bin") and not hub.is_lfs(url.repo_id, "notes.txt")
    assert sorted(api.list_repo_files(url.repo_id)) == [".gitattributes", "data/blob.bin", "notes.txt"]
    assert [f.path for f in api.list_repo_tree(url.repo_id, "data")] == ["data/blob.bin"]
    with pytest.raises(RemoteEntryNotFoundError):
        list(api.list_repo_tree(url.repo_id, "missing-folder"))
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(f"{DEFAULT_USER}/does-not-exist")
    assert not api.file_exists(url.repo_id, "nope.txt")
    with pytest.raises(HfHubHTTPError) as refused:
        HfApi(endpoint=hub.url, token="hf_wrong").create_repo("never-created")
    assert refused.value.response.status_code == 401
    assert not hub.has_repo(f"{DEFAULT_USER}/never-created")
    with pytest.raises(ValueError, match="model-index"):
        api.upload_file(path_or_fileobj=b"---\nmodel-index: {}\n---\n", path_in_repo="README.md", repo_id=url.repo_id)
    head = hub.requests_matching("HEAD", r"/resolve/")
    assert head and all(r.status in (200, 404) for r in head)
    assert hub.commit_titles(url.repo_id)[0] == "initial commit"


def test_push_folder_leaves_no_repo_behind_when_the_hub_refuses(hub, tmp_path):
    """The hub_scripts' one push: created, uploaded; a refused upload deletes the repo it created."""
    from huggingface_hub import HfApi

    from mtaffect.hub import HubPushError, push_folder

    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    commit = push_folder(folder, f"{DEFAULT_USER}/pushed-folder", token=hub.token, endpoint=hub.url,
                         commit_message="Upload notes")
    assert hub.commit_titles(f"{DEFAULT_USER}/pushed-folder")[-1] == "Upload notes" and commit.commit_url
    (folder / "README.md").write_text("---\nmodel-index: {}\n---\n")  # the Hub refuses this card
    with pytest.raises(HubPushError, match=r"refused the push \(HTTP 400\): Invalid metadata in README.md. - "
                       r'"model-index" must be an array\. Deleted mtaffect-tester/refused'):
        push_folder(folder, f"{DEFAULT_USER}/refused", token=hub.token, endpoint=hub.url)
    assert not hub.has_repo(f"{DEFAULT_USER}/refused")
    # A repo that was there before keeps what it had.
    with pytest.raises(HubPushError, match="HTTP 400") as refused:
        push_folder(folder, f"{DEFAULT_USER}/pushed-folder", token=hub.token, endpoint=hub.url)
    assert "Deleted" not in str(refused.value)
    assert "notes.txt" in HfApi(endpoint=hub.url, token=hub.token).list_repo_files(f"{DEFAULT_USER}/pushed-folder")
    with pytest.raises(HubPushError, match="HTTP 401.*HF_TOKEN"):
        push_folder(folder, f"{DEFAULT_USER}/never", token="hf_wrong", endpoint=hub.url)
    with pytest.raises(HubPushError, match=r"cannot reach the Hub at http://127\.0\.0\.1:\d+.*HF_ENDPOINT"):
        push_folder(folder, f"{DEFAULT_USER}/never", token=hub.token, endpoint=f"http://127.0.0.1:{free_port()}")
    assert not hub.has_repo(f"{DEFAULT_USER}/never")


# ---------------------------------------------------------------------------------------------
# Models


def test_trainer_push_to_hub_at_the_end_of_training(published, hub):
    _ok(published, "trainer_push")
    files = hub.repo_files(TRAINED)
    for name in ("config.json", "model.safetensors", "configuration_mtaffect.py", "modeling_mtaffect.py", "README.md"):
        assert name in files, f"Trainer.push_to_hub did not upload {name}: {files}"
    assert hub.is_lfs(TRAINED, "model.safetensors")
    assert hub.commit_titles(TRAINED)[-1] == "End of training"
    # The real huggingface_hub upload path: preupload, LFS batch + PUT, NDJSON commit.
    for method, pattern in [
        ("POST", r"^/api/repos/create$"),
        ("POST", rf"^/api/models/{TRAINED}/preupload/main$"),
        ("POST", rf"^/{TRAINED}\.git/info/lfs/objects/batch$"),
        ("PUT", r"^/_test_hub/lfs/"),
        ("POST", rf"^/api/models/{TRAINED}/commit/main$"),
    ]:
        assert any(r.status == 200 for r in hub.requests_matching(method, pattern)), (method, pattern)


def test_trainer_pushes_the_mtaffect_model_card(published, hub):
    from huggingface_hub import ModelCard

    metrics = _ok(published, "model_push")["metrics"]
    _ok(published, "trainer_push")
    card = ModelCard(hub.read_file(TRAINED, "README.md").decode())
    assert card.data.get("library_name") == "mtaffect", (
        "Trainer.push_to_hub uploaded transformers' generic card: MultiTaskTrainer must add "
        "mtaffect.modelcard.ModelCardCallback and override create_model_card with "
        "mtaffect.modelcard.trainer_create_model_card."
    )
    found = {(r.dataset_name, r.metric_name): r.metric_value for r in card.data.eval_results or []}
    assert found[("synthetic_mustard", "sarcasm weighted_f1")] == pytest.approx(
        metrics["eval_synthetic_mustard_sarcasm_weighted_f1"]
    )
    for section in ("Training corpora", "synthetic_iemocap", "Training hyperparameters", "learning_rate: 0.001"):
        assert section in card.text, section
    assert f'AutoModel.from_pretrained("{TRAINED}"' in card.text


def test_model_push_and_load_with_mtaffect_installed(published, hub, runs):
    import torch

    _ok(published, "model_push")
    loaded = _ok(published, "load_installed")
    assert loaded["class"] == "MTAffectForMultiTaskAffect"
    assert loaded["module"] == "mtaffect.modeling_mtaffect"
    reference = torch.load(runs["out"] / "reference.pt")["outputs"]
    installed = torch.load(runs["out"] / "installed.pt")
    for name, value in reference.items():
        assert torch.equal(value, installed[name]), name
    assert any(r.path.startswith(f"/api/models/{MODEL}") for r in hub.requests_matching("GET", "/api/models/"))
    # The label names survive the Hub: the checkpoint says what every head's outputs mean.
    assert loaded["label_spaces"] == loaded["pushed_label_spaces"]
    assert loaded["label_spaces"]["emotion/meld"]["labels"] == ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
    assert loaded["label_spaces"]["sentiment/polarity"]["labels"] == ["negative", "neutral", "positive"]
    assert loaded["direct"]["emotion/meld"]["label"] in loaded["label_spaces"]["emotion/meld"]["labels"]
    assert hub.requests_matching("GET", rf"^/{MODEL}/resolve/[0-9a-f]{{40}}/model\.safetensors$")


def test_model_card_is_valid_and_holds_the_evaluation_numbers(published, hub):
    from huggingface_hub import ModelCard

    metrics = _ok(published, "model_push")["metrics"]
    card = ModelCard(hub.read_file(MODEL, "README.md").decode())  # parses the YAML, raises if malformed
    assert card.data.get("library_name") == "mtaffect", "model.push_to_hub did not upload the mtaffect card"
    assert "mtaffect" in card.data.tags
    results = card.data.eval_results
    assert results, "an evaluated model's card must carry a model-index"
    found = {(r.dataset_name, r.metric_name): r.metric_value for r in results}
    key = ("synthetic_mosei", "sentiment MAE")
    assert found[key] == pytest.approx(metrics["eval_synthetic_mosei_sentiment_MAE"])
    assert ("synthetic_mustard", "sarcasm weighted_f1") in found
    assert all(r.dataset_split == "validation" for r in results)
    text = card.text
    for section in ("Tasks and label spaces", "Expected input features", "Training corpora",
                    "Weak-label settings", "Training hyperparameters", "Evaluation", "2104.11560",
                    "## Citation"):
        assert section in text, section
    assert f'AutoModel.from_pretrained("{MODEL}"' in text


def test_trust_remote_code_without_mtaffect_gives_identical_outputs(runs):
    import torch

    assert "remote_code" in runs, "hub_publish.py never pushed the model; see test_model_push_and_load_*"
    runs["remote_code"].check()
    remote = json.loads((runs["out"] / "remote_code.json").read_text())
    assert remote["mtaffect_imported"] == []
    assert remote["module"].startswith("transformers_modules.")
    reference = torch.load(runs["out"] / "reference.pt")["outputs"]
    outputs = torch.load(runs["out"] / "remote_code.pt")
    for name, value in reference.items():
        assert torch.equal(value, outputs[name]), name
    # The card's usage snippet ran as written, without mtaffect.
    predictions = remote["snippet_predictions"]
    assert len(predictions) == 1 and {"emotion/meld", "sentiment/polarity", "sentiment/score", "sarcasm"} <= set(predictions[0])
    # ...and without mtaffect the config still names every output (MELD's "joy").
    assert remote["label_spaces"]["emotion/meld"]["labels"][3] == "joy"


def test_pipeline_loads_by_hub_id(published):
    loaded = _ok(published, "load_installed")
    assert loaded["pipeline_class"] == "MultimodalAffectPipeline"
    from_pipeline, direct = loaded["pipeline"], loaded["direct"]
    assert from_pipeline["emotion/meld"]["label"] == direct["emotion/meld"]["label"]
    assert from_pipeline["sentiment/score"]["score"] == pytest.approx(direct["sentiment/score"]["score"], abs=1e-5)
    assert from_pipeline["sarcasm"]["score"] == pytest.approx(direct["sarcasm"]["score"], abs=1e-5)
    listed = loaded["pipeline_list"]
    assert len(listed) == 2 and listed[0] == listed[1] == from_pipeline


def test_evaluate_command_scores_the_hub_checkpoint_as_before_the_push(published, runs):
    metrics = _ok(published, "model_push")["metrics"]
    assert "evaluate_cli" in runs, "hub_publish.py never pushed the model; see test_model_push_and_load_*"
    runs["evaluate_cli"].check()
    report = json.loads((runs["out"] / "evaluate.json").read_text())
    assert report["model"] == MODEL and report["split"] == "validation"
    scored = report["corpora"]["synthetic_mustard"]
    for metric in ("sarcasm_weighted_f1", "sarcasm_accuracy", "loss"):
        assert scored[metric] == pytest.approx(metrics[f"eval_synthetic_mustard_{metric}"], abs=1e-6), metric


def test_model_without_evaluation_gets_a_card_that_says_so(published, hub):
    from huggingface_hub import ModelCard

    result = _ok(published, "no_eval_push")
    card = ModelCard(hub.read_file(NO_EVAL, "README.md").decode())
    assert card.data.get("library_name") == "mtaffect"
    assert card.data.eval_results is None and "model-index" not in card.content.split("---")[1]
    assert "No evaluation results were recorded" in card.text
    assert any("No evaluation results are recorded" in m for m in result["logs"]), result["logs"]


def test_invalid_token_fails_clearly_and_creates_no_repo(published, hub, runs):
    result = _ok(published, "bad_token_push")
    assert "401" in result["message"] and "Invalid credentials" in result["message"], result
    assert not hub.has_repo(f"{DEFAULT_USER}/bad-token")
    bad = runs["push_metric_bad_token"]
    assert bad.returncode == 1
    assert "HTTP 401" in bad.stderr and "HF_TOKEN" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
    assert not hub.has_repo(f"{DEFAULT_USER}/bad-token-metric", repo_type="space")


def test_unreachable_endpoint_fails_clearly(runs):
    run = runs["push_checkpoint_unreachable"]
    assert run.returncode == 1, run.stderr
    assert "cannot reach the Hub" in run.stderr and "HF_ENDPOINT" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


# ---------------------------------------------------------------------------------------------
# Corpora


def test_corpus_push_and_load_dataset_give_equal_rows(published, hub):
    report = _ok(published, "corpora")
    for name in ("synthetic_meld", "synthetic_mustard"):
        corpus = report[name]
        assert corpus["splits"] and corpus["rows_equal"] and corpus["features_equal"], (name, corpus)
        assert corpus["restored_rows_equal"], name
    files = hub.repo_files(CORPORA, repo_type="dataset")
    assert any(f.startswith("synthetic_meld/train-") and f.endswith(".parquet") for f in files), files
    assert any(f.startswith("synthetic_mustard/test-") for f in files), files


def test_corpus_metadata_survives_the_hub_through_the_card(published, hub):
    from huggingface_hub import DatasetCard

    report = _ok(published, "corpora")
    # datasets drops DatasetInfo.description on the way; the card carries CorpusInfo instead.
    assert report["synthetic_meld"]["plain_description"] == ""
    assert report["synthetic_meld"]["info_restored"] and report["synthetic_mustard"]["info_restored"]
    card = DatasetCard(hub.read_file(CORPORA, "README.md", repo_type="dataset").decode())
    corpora = card.data["mtaffect"]["corpora"]
    assert set(corpora) == {"synthetic_meld", "synthetic_mustard"}
    assert corpora["synthetic_meld"]["feature_set"] == "synthetic-cmu"
    assert {c["config_name"] for c in card.data["configs"]} == {"synthetic_meld", "synthetic_mustard"}
    assert "right to share" in card.text


# ---------------------------------------------------------------------------------------------
# hub_scripts and the quickstart


@pytest.mark.parametrize("script", ["push_checkpoint", "push_corpus", "push_metric"])
def test_hub_scripts_have_help(runs, script):
    run = runs[f"{script}-help"].check()
    assert "usage:" in run.stdout and "repo_id" in run.stdout


def test_push_checkpoint_script(published, hub):
    from huggingface_hub import ModelCard

    assert _ok(published, "push_checkpoint_script") == 0
    files = hub.repo_files(CHECKPOINT)
    for name in ("config.json", "model.safetensors", "modeling_mtaffect.py", "README.md",
                 "report/report.json", "report/report.md"):
        assert name in files, files
    card = ModelCard(hub.read_file(CHECKPOINT, "README.md").decode())
    assert card.data.get("library_name") == "mtaffect" and card.data.get("license") == "apache-2.0"
    # The card data saved next to the weights came along: the evaluation numbers are still there.
    assert card.data.eval_results
    assert f'AutoModel.from_pretrained("{CHECKPOINT}"' in card.text
    assert len(hub.commit_titles(CHECKPOINT)) == 2  # the initial commit and one upload


def test_push_corpus_script(published, hub):
    assert _ok(published, "push_corpus_script") == 0
    files = hub.repo_files(SCRIPT_CORPORA, repo_type="dataset")
    assert any(f.startswith("synthetic_iemocap/train-") for f in files), files


def test_push_metric_script_creates_a_gradio_space(runs, hub):
    runs["push_metric"].check()
    assert hub.has_repo(METRIC_SPACE, repo_type="space")
    assert hub.store.get_repo("space", METRIC_SPACE).sdk == "gradio"
    files = hub.repo_files(METRIC_SPACE, repo_type="space")
    assert {"mtaffect_metrics.py", "README.md", "app.py"} <= set(files), files


def test_quickstart_runs_against_the_hub(runs, hub):
    from huggingface_hub import ModelCard

    assert "quickstart" in runs, "hub_publish.py never pushed the base model; see test_model_push_and_load_*"
    run = runs["quickstart"].check()
    assert "MTAffectForMultiTaskAffect" in run.stdout
    assert "pushed:" in run.stdout
    assert hub.requests_matching("GET", rf"^/{MODEL}/resolve/[0-9a-f]{{40}}/model\.safetensors$")
    card = ModelCard(hub.read_file(FINETUNED, "README.md").decode())
    assert card.data.get("library_name") == "mtaffect"
    assert card.data.get("base_model") == MODEL
    assert card.data.eval_results

