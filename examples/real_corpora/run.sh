#!/usr/bin/env bash
# The real-corpus recipe: MELD + MUStARD text features, then the weak-supervision study.
#
#   examples/real_corpora/run.sh CORPORA_DIR [WORK_DIR]
#
# CORPORA_DIR holds meld/{train,dev,test}_sent_emo.csv and mustard/{sarcasm_data.json,
# split_indices.p} as published. WORK_DIR (default: mtaffect-real-corpora) receives the
# unified corpora (meld-minilm/, mustard-si-minilm/, corpora.json) and the study's report
# (study-output/report.{json,md,png}, results.jsonl, machine.json, corpora.json). Then
#
#   python examples/real_corpora/make_results_page.py WORK_DIR/study-output --docs docs
#
# copies the report into docs/results/ and regenerates docs/results.md from report.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
corpora=$(cd "${1:?usage: run.sh CORPORA_DIR [WORK_DIR]}" && pwd)
work=${2:-mtaffect-real-corpora}
mkdir -p "$work"
python "$here/prepare.py" --corpora "$corpora" --output "$work"
cd "$work"
mtaffect run --config "$here/study.yaml"
python "$here/record_machine.py" study-output
cp corpora.json study-output/corpora.json
