#!/usr/bin/env bash
# The prepared GPU check (issue 15): the training benchmark of the Table 1 models in fp32 and
# bf16 and the inference benchmark, on one GPU, in under 10 minutes.
#
#   bash experiments/gpu_check.sh --stage   # here, with network and ../shared/data: fills
#                                           # .gpu_check/ (wheels the GPU machine lacks + the
#                                           # local NLI / STS-B files the benchmark reads)
#   bash experiments/gpu_check.sh           # on the GPU machine (carry .gpu_check/): installs
#                                           # from the repo's files, runs, writes under $OUT
#
#   SWEEPS="table1_converged embedding_peers" bash experiments/gpu_check.sh
#                                           # instead of the benchmarks: trains those sweeps'
#                                           # missing runs, WORKERS (8) processes at a time, for
#                                           # at most SWEEP_LIMIT (480) seconds in all
#
# Results: $OUT/fp32/benchmark.{json,md} and $OUT/bf16/benchmark.{json,md}; commit them under
# experiments/results/gpu/ with the device named (the JSON's meta.devices names it). With
# SWEEPS: $OUT/runs/ holds every run record (copy it over experiments/results/runs/ and rerun
# the sweeps with --results_only); a run cut off by the limit leaves no record.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=.gpu_check
# What the GPU machine has no copy of (it has jax, flax, optax, orbax, tokenizers ...).
MISSING="ml_collections==1.1.0 tensorboardX==2.6.5 filelock tqdm"

if [[ "${1:-}" == "--stage" ]]; then
  data=${PETE_DATA_DIR:-../shared/data}
  mkdir -p "$STAGE/data/nli" "$STAGE/data/stsb" "$STAGE/wheels"
  cp "$data"/nli/*.csv "$STAGE/data/nli/"
  cp "$data"/stsb/*.tsv "$STAGE/data/stsb/"
  python -m pip download -q --dest "$STAGE/wheels" --only-binary=:all: \
    --python-version 3.12 --platform manylinux2014_x86_64 $MISSING
  du -sh "$STAGE"
  exit 0
fi

OUT=${OUT:-experiments/results/gpu}
mkdir -p "$OUT"
python -m pip install -q --no-index --find-links "$STAGE/wheels" $MISSING
python -m pip install -q --no-deps --no-build-isolation -e .
export PETE_DATA_DIR=$STAGE/data PETE_PROGRESS=log
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/device.csv" || true
if [[ -n "${SWEEPS:-}" ]]; then
  deadline=$((SECONDS + ${SWEEP_LIMIT:-480}))
  for sweep in $SWEEPS; do
    left=$((deadline - SECONDS))
    ((left > 0)) || break
    timeout "$left" python -m experiments.run "$sweep" --workers="${WORKERS:-8}" 2>&1 \
      | tee -a "$OUT/sweeps.log" || true
  done
  cp -r experiments/results/runs "$OUT/runs"
  exit 0
fi
common=(--configs=fourier_1x256,learned_1x256,fourier_1x512,learned_1x512,fourier_2x256,learned_2x256,fourier_2x512,learned_2x512
  --steps=50 --padded_steps=30 --peer=off --fresh)
# QUICK=1: the tiny model, for trying the script on a CPU.
[[ -n "${QUICK:-}" ]] && common+=(--quick)
# Each benchmark under its own limit, so that one stuck section still leaves the others' files.
timeout 240 python -m experiments.benchmark --sections=train "${common[@]}" \
  --compute_dtype=float32 --out_dir="$OUT/fp32" 2>&1 | tee "$OUT/fp32.log"
timeout 300 python -m experiments.benchmark --sections=train,inference "${common[@]}" \
  --compute_dtype=bfloat16 --inference_sizes=1x256,2x256,2x512 --out_dir="$OUT/bf16" \
  2>&1 | tee "$OUT/bf16.log"
