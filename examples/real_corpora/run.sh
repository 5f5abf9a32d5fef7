#!/usr/bin/env bash
# The real-corpus recipe: MELD + EmoryNLP + MUStARD text features (with 4 preceding turns of
# context per utterance), then the weak-supervision study four times (MUStARD
# speaker-independent, MUStARD's 5 folds inside the study, speaker-independent again with
# conversational context: study-context.yaml, and with all-MiniLM-L6-v2 fine-tuned inside every
# model on the published files read text-only: study-finetuned.yaml).
#
#   examples/real_corpora/run.sh CORPORA_DIR [WORK_DIR]
#
# CORPORA_DIR holds meld/{train,dev,test}_sent_emo.csv, emorynlp/emorynlp_{train,dev,test}_final.csv
# and mustard/{sarcasm_data.json,split_indices.p} as published. WORK_DIR (default:
# mtaffect-real-corpora) receives the unified corpora (meld-minilm/, emorynlp-minilm/,
# mustard-si-minilm/, mustard-fold{0..4}-minilm/, corpora.json) and the studies' outputs
# (study-output/, study-5fold-output/, study-context-output/ and study-finetuned-output/:
# report.{json,md,png}, results.jsonl, study.json, machine.json, corpora.json). Then
#
#   python examples/real_corpora/make_results_page.py --docs docs \
#       --study speaker-independent=WORK_DIR/study-output --study 5-fold=WORK_DIR/study-5fold-output \
#       --study fine-tuned=WORK_DIR/study-finetuned-output --study context=WORK_DIR/study-context-output
#
# copies the four into docs/results/<study>/ (the context study into docs/results/context-study/) and
# regenerates docs/results.md from their report.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
corpora=$(cd "${1:?usage: run.sh CORPORA_DIR [WORK_DIR]}" && pwd)
work=${2:-mtaffect-real-corpora}
mkdir -p "$work"
python "$here/prepare.py" --corpora "$corpora" --output "$work"
cd "$work"
# study-finetuned.yaml reads the published files themselves (text-only: its encoder reads the transcripts).
mkdir -p published
for name in meld emorynlp mustard; do ln -sfn "$corpora/$name" "published/$name"; done
for config in study.yaml study-5fold.yaml study-context.yaml study-finetuned.yaml; do
    output=$(python -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['output_dir'])" "$here/$config")
    mtaffect run --config "$here/$config"
    python "$here/record_machine.py" "$output"
    cp corpora.json "$output/corpora.json"
done
