"""Write what the results page says about the machine a study ran on (``machine.json``).

    python examples/real_corpora/record_machine.py STUDY_OUTPUT_DIR

Run it on the machine that ran the study, right after it: CPU count and model, whether a
GPU was visible to torch, the load average (other jobs sharing the cores slow a study
down), and the versions that matter.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path


def machine_record() -> dict:
    import torch
    import transformers

    cpu_model = None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    cuda = torch.cuda.is_available()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model or platform.processor() or None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "machine.json").write_text(json.dumps(machine_record(), indent=2) + "\n")
    print(f"wrote {folder / 'machine.json'}")


if __name__ == "__main__":
    main()
