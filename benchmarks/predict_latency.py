"""Where the time of one ``mtaffect predict`` call goes: start-up, model, extractor, inference.

Builds a tiny text model whose config records the offline MiniLM extractor (as
``tests/conftest.py`` does), then times, in a fresh process each (``--runs`` of them, the best
reported, the least disturbed by other processes on a shared machine):

* ``startup``: Python start-up plus the imports of ``mtaffect predict`` up to argument parsing;
* ``model``: ``MTAffectForMultiTaskAffect.from_pretrained`` and the pipeline around it;
* ``extractor``: building the text extractor (MiniLM) on the first utterance;
* ``inference``: one utterance through extractor and model, warm;

and the wall time of the whole command line (``mtaffect predict --text ...``) for comparison.

    nice python benchmarks/predict_latency.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_PHASES = r"""
import json, sys, time
start = time.perf_counter()
from mtaffect.cli.main import build_parser
args = build_parser(["predict"]).parse_args(["predict", "--model", sys.argv[1], "--text", "Oh great."])
parsed = time.perf_counter()
from mtaffect.cli.predict import load_classifier
classifier = load_classifier(args.model)
loaded = time.perf_counter()
classifier("Oh great, another meeting.")
first = time.perf_counter()
classifier("I could not be happier.")
second = time.perf_counter()
print(json.dumps({"startup": parsed - start + float(sys.argv[2]), "model": loaded - parsed,
                  "extractor": (first - loaded) - (second - first), "inference": second - first}))
"""


def build_checkpoint(folder: Path) -> Path:
    import torch

    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.data.extract import TextExtractor, feature_set_name
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

    extractor = TextExtractor(pooled=True)
    name = feature_set_name([extractor])
    config = MTAffectConfig(feature_sets={name: {"text": extractor.dim}}, hidden_size=32, num_heads=2)
    config.feature_extractors = {name: {"text": extractor.describe()}}
    torch.manual_seed(0)
    MTAffectForMultiTaskAffect(config).eval().save_pretrained(folder)
    return folder


def interpreter_startup() -> float:
    """Seconds of a bare ``python -c pass`` (counted into start-up: every call pays it)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = build_checkpoint(Path(tmp) / "model")
        phases = []
        walls = []
        for _ in range(args.runs):
            bare = interpreter_startup()
            out = subprocess.run([sys.executable, "-c", _PHASES, str(checkpoint), str(bare)], check=True,
                                 capture_output=True, text=True, env=env).stdout
            phases.append(json.loads(out.strip().splitlines()[-1]))
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "mtaffect.cli.main", "predict", "--model", str(checkpoint),
                            "--text", "Oh great, another meeting."], check=True, capture_output=True, env=env)
            walls.append(time.perf_counter() - started)
    best = min(phases, key=lambda p: sum(p.values()))
    total = sum(best.values())
    print(f"one `mtaffect predict --text ...` call, best of {args.runs} (cpu count {os.cpu_count()}):")
    for name, seconds in best.items():
        print(f"  {name:<10} {seconds:6.2f} s  ({seconds / total:4.0%})")
    print(f"  {'sum':<10} {total:6.2f} s;  whole command line: {min(walls):.2f} s (best), {max(walls):.2f} s (worst)")


if __name__ == "__main__":
    main()
