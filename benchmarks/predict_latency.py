"""Where the time of one ``mtaffect predict`` call goes: start-up, model, extractor, inference.

Builds a tiny text model whose config records the offline MiniLM extractor (as
``tests/conftest.py`` does), then times, in a fresh process each (``--runs`` of them, the best
reported, the least disturbed by other processes on a shared machine):

* start-up: the interpreter, ``import torch``, ``import transformers`` (``PreTrainedModel``,
  which every transformers model needs: the floor, with the scipy and accelerate it imports)
  and mtaffect's own imports (CLI, pipeline, extractors; since ``mtaffect.checkpoints`` and the
  lazy ``mtaffect.data.extract``, not datasets, scikit-learn or the Trainer: the last line
  says which of those start-up pulled in);
* model: loading the checkpoint (``from_pretrained`` and the pipeline around it), loading
  the text extractor (MiniLM, on the first utterance), and one warm utterance;

and the wall time of the whole command line (``mtaffect predict --text ...``) for comparison;
then the CPU time of the floor (torch + ``transformers.modeling_utils``), of predict's imports
alone and of the whole command, which a loaded machine disturbs far less than wall time.

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
marks = {}
last = time.perf_counter()
def mark(name):
    global last
    now = time.perf_counter()
    marks[name] = now - last
    last = now
import torch
mark("import torch")
from transformers import AutoModel, PreTrainedModel
mark("import transformers (PreTrainedModel)")
from mtaffect.cli.main import build_parser
args = build_parser(["predict"]).parse_args(["predict", "--model", sys.argv[1], "--text", "Oh great."])
import mtaffect.pipeline
from mtaffect.data.extract import TextExtractor
mark("import mtaffect (cli, pipeline, extractors)")
unneeded = [m for m in UNNEEDED if m in sys.modules]
from mtaffect.cli.predict import load_classifier
classifier = load_classifier(args.model)
mark("load the checkpoint")
classifier("Oh great, another meeting.")
mark("first utterance")
classifier("I could not be happier.")
mark("warm utterance")
marks["load the text extractor"] = marks["first utterance"] - marks["warm utterance"]
del marks["first utterance"]
print(json.dumps({"unneeded": unneeded}))
print(json.dumps({"python": float(sys.argv[2]), **marks}))
"""
#: What predict does not need (corpus storage, metrics, the Trainer and the recipe): the start-up
#: line says which of them the imports above pulled in (none, since mtaffect.checkpoints).
UNNEEDED = ("datasets", "pyarrow", "pandas", "sklearn", "transformers.trainer", "mtaffect.recipes", "mtaffect.training")


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


def cpu_seconds(code: str, env: dict[str, str]) -> float:
    """CPU time (user + system) of ``python -c code``: steadier than wall time on a shared machine."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


#: What the CPU-time lines run: the floor every transformers model pays, predict's imports alone,
#: and the whole command (imports, model, extractor, one utterance).
_CPU_CASES = {
    "import torch": "import torch",
    "torch + transformers.modeling_utils (the floor)": "import torch, transformers.modeling_utils",
    "predict's imports (CLI, pipeline, extractors, model)":
        "from mtaffect.cli.main import build_parser; build_parser(['predict'])",
    "the whole command line": "from mtaffect.cli.main import main; main(['predict', '--model', {model!r}, "
                              "'--text', 'Oh great, another meeting.'])",
}


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
            code = f"UNNEEDED = {UNNEEDED!r}\n{_PHASES}"
            out = subprocess.run([sys.executable, "-c", code, str(checkpoint), str(bare)], check=True,
                                 capture_output=True, text=True, env=env).stdout
            lines = out.strip().splitlines()
            unneeded = json.loads(lines[-2])["unneeded"]
            phases.append(json.loads(lines[-1]))
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "mtaffect.cli.main", "predict", "--model", str(checkpoint),
                            "--text", "Oh great, another meeting."], check=True, capture_output=True, env=env)
            walls.append(time.perf_counter() - started)
        cpu = {name: min(cpu_seconds(code.format(model=str(checkpoint)), env) for _ in range(args.runs))
               for name, code in _CPU_CASES.items()}
    best = min(phases, key=lambda p: sum(p.values()))
    total = sum(best.values())
    startup = ("python", "import torch", "import transformers (PreTrainedModel)", "import mtaffect (cli, pipeline, extractors)")
    print(f"one `mtaffect predict --text ...` call, best of {args.runs} (cpu count {os.cpu_count()}):")
    for group, names in (("start-up", startup), ("model", [n for n in best if n not in startup])):
        seconds = sum(best[n] for n in names)
        print(f"{group}: {seconds:.2f} s ({seconds / total:.0%})")
        for name in names:
            print(f"  {name:<45} {best[name]:6.2f} s  ({best[name] / total:4.0%})")
    print(f"sum {total:.2f} s; the whole command line: {min(walls):.2f} s (best), {max(walls):.2f} s (worst)")
    print(f"imported at start-up though predict does not need them: {', '.join(unneeded) or 'none'}")
    print(f"CPU time (user + system), best of {args.runs} processes:")
    for name, seconds in cpu.items():
        print(f"  {name:<55} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
