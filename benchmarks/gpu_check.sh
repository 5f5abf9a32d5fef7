#!/usr/bin/env bash
# The fine-tuned-encoder path on a lent CUDA device, in under 10 minutes (an H100 / H200):
#
#   1. the encoder tests (tests/test_encoders.py, tests/test_finetune_cli.py) on the GPU;
#   2. bf16 full fine-tuning of MiniLM on MELD emotion, mtaffect against
#      AutoModelForSequenceClassification under the plain Trainer (benchmarks/finetune_parity.py:
#      full train split, 2 epochs, seed 0): test weighted F1 and training throughput of each;
#   3. a one-seed fine-tuned-encoder study (examples/real_corpora/study-finetuned.yaml, seed 0,
#      full fine-tuning instead of top-2, since a GPU affords it).
#
#   benchmarks/gpu_check.sh CORPORA_DIR [OUTPUT_DIR]
#
# CORPORA_DIR holds meld/, emorynlp/ and mustard/ as published (the real-corpus recipe's input).
# Every step's output lands in OUTPUT_DIR (default gpu-check-output): tests.log, parity.json,
# parity.log, study/ (report.md, report.json); paste the parity table and the report's table.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
corpora=$(cd "${1:?usage: gpu_check.sh CORPORA_DIR [OUTPUT_DIR]}" && pwd)
out=$(mkdir -p "${2:-gpu-check-output}" && cd "${2:-gpu-check-output}" && pwd)
cd "$here"
python - <<'PY'
import torch
assert torch.cuda.is_available(), "gpu_check.sh needs a CUDA device"
print("device:", torch.cuda.get_device_name(0), "bf16:", torch.cuda.is_bf16_supported())
PY
start=$SECONDS
echo "== 1. encoder tests"
timeout 180 python -m pytest -q tests/test_encoders.py tests/test_finetune_cli.py 2>&1 | tee "$out/tests.log" | tail -3
echo "== 2. bf16 full fine-tuning: mtaffect vs the plain Trainer (MELD emotion, 2 epochs, seed 0)"
timeout 240 python benchmarks/finetune_parity.py --corpus "$corpora/meld" --seeds 0 --epochs 2 --bf16 --threads 4 \
    --results "$out/parity.json" 2>&1 | tee "$out/parity.log" | grep -v "^{" | tail -12
echo "== 3. one-seed fine-tuned-encoder study"
mkdir -p "$out/work/published"
for name in meld emorynlp mustard; do ln -sfn "$corpora/$name" "$out/work/published/$name"; done
cd "$out/work"
timeout 240 mtaffect run --config "$here/examples/real_corpora/study-finetuned.yaml" --seeds 0 --finetune full \
    --output-dir "$out/study" --quiet 2>&1 | tail -40
echo "gpu_check.sh: done in $((SECONDS - start)) s; outputs in $out"
