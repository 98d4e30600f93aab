#!/usr/bin/env bash
# Issue 13's GPU checks in one run, for a session that has a GPU (never run yet: the session
# that wrote it had none).  Run from the repository root with the package importable and the
# reference data in $NNI_ZEROCOST_DATA; everything lands in $OUT.  Each step has its own time
# limit, so one slow step cannot eat the device time of the others (about 12 min in all).
#
#   OUT=gpu-out bash examples/gpu_checks.sh
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
step() {  # step NAME SECONDS COMMAND...: output in $OUT/NAME.txt, wall/CPU time in $OUT/NAME.time
  local name=$1 limit=$2; shift 2
  echo "== $name: $*" | tee -a "$OUT/steps.txt"
  /usr/bin/time -v -o "$OUT/$name.time" timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  echo "   rc=$? $(grep -E 'Elapsed' "$OUT/$name.time" | sed 's/.*: //')" | tee -a "$OUT/steps.txt"
}
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))" > "$OUT/torch.txt" 2>&1
# 1. every proxy on CUDA (conformance) and CPU/GPU agreement over 100 + 100 architectures
step conformance_cuda 120 python -m pytest -q -x tests/test_conformance.py -k cuda
step cuda_agreement 300 python -m pytest -q -x tests/test_cuda.py
# 2. throughput on one GPU, from the CLI's own timing (issue targets: <= 60 s each)
for w in 1 4; do
  step "nlp_hc_gpu_w$w" 150 nni-zerocost benchmark nasbench-nlp --proxy hidden_covariance --device cuda \
    --workers "$w" --no-store --no-progress --json
done
step bert_all_gpu_w4 150 nni-zerocost benchmark nasbench-bert --proxy head_confidence \
  --proxy head_softmax_confidence --proxy head_importance --proxy synaptic_diversity --proxy synaptic_saliency \
  --proxy activation_distance --proxy jacobian_covariance --proxy params --proxy nonembedding_params \
  --device cuda --workers 4 --no-store --no-progress --json
