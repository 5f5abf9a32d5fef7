"""Load an mtaffect checkpoint from the test Hub with ``trust_remote_code=True``, mtaffect hidden.

Run by tests/test_hub.py in a subprocess (HF_* variables set, the test Hub server running)
after hub_publish.py pushed the model. Any import of ``mtaffect`` fails here, so the model
can only come from the code files stored next to the weights. Also runs the usage snippet of
the pushed model card, which promises to work without mtaffect.

Usage: python hub_remote_code.py REPO_ID REFERENCE_PT OUT_DIR
"""

from __future__ import annotations

import importlib.abc
import json
import re
import sys
from pathlib import Path


class _HideMtaffect(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "mtaffect" or name.startswith("mtaffect."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)", name=name)
        return None


sys.meta_path.insert(0, _HideMtaffect())


def main(repo_id: str, reference_path: Path, out: Path) -> None:
    import torch
    from huggingface_hub import hf_hub_download
    from transformers import AutoModel

    results: dict = {}
    model = AutoModel.from_pretrained(repo_id, trust_remote_code=True)
    reference = torch.load(reference_path)
    with torch.no_grad():
        output = model(**reference["inputs"])
    torch.save(dict(output.head_outputs), out / "remote_code.pt")
    results["label_spaces"] = model.config.label_spaces
    results["module"] = type(model).__module__
    results["mtaffect_imported"] = sorted(name for name in sys.modules if name.split(".")[0] == "mtaffect")

    # The card's usage snippet, verbatim.
    card = Path(hf_hub_download(repo_id, "README.md")).read_text(encoding="utf-8")
    snippets = re.findall(r"```python\n(.*?)```", card, flags=re.DOTALL)
    if not snippets:
        raise SystemExit(f"The README.md of {repo_id} has no Python usage snippet: it is not the mtaffect model card.")
    namespace: dict = {}
    exec(compile(snippets[0], "model-card-usage-snippet", "exec"), namespace)  # noqa: S102
    predictions = namespace["predictions"]
    results["snippet_predictions"] = predictions
    (out / "remote_code.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
