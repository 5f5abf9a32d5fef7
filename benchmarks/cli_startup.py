"""Start-up time of the ``mtaffect`` command, next to ``import torch``.

``mtaffect --help`` imports no command module and ``mtaffect data list`` imports neither
torch nor transformers (``mtaffect/__init__.py`` registers the model with the Auto classes
only once transformers' Auto modules are imported), so both should start well under a second
on a warm machine, faster than torch alone. Each command runs ``--repeats`` times in a fresh
process after one warm-up run; the median wall time is reported.

    python benchmarks/cli_startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def wall_time(command: list[str], repeats: int) -> float:
    """Median wall time of ``command`` over ``repeats`` fresh processes (after one warm-up)."""
    subprocess.run(command, check=True, capture_output=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    executable = shutil.which("mtaffect")
    cli = [executable] if executable else [sys.executable, "-m", "mtaffect.cli.main"]
    commands = {
        "mtaffect --help": [*cli, "--help"],
        "mtaffect data list": [*cli, "data", "list"],
        'python -c "import mtaffect"': [sys.executable, "-c", "import mtaffect"],
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        'python -c "import mtaffect, transformers.AutoModel"': [
            sys.executable, "-c", "import mtaffect; from transformers import AutoModel",
        ],
    }
    print(f"median wall time of {args.repeats} runs (after one warm-up):")
    for name, command in commands.items():
        print(f"  {name:<55} {wall_time(command, args.repeats):6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
