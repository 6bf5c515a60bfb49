#!/usr/bin/env bash
# Issue 27's device session, on one H100/H200 with JAX (no TensorFlow, no Keras, no network), in two calls on one
# warm machine (a call carries at most 64 MiB, and the tracked files alone are about 45 MiB: see gpu_carry.sh):
#   pretrain   (call 1; carry [".whl", ".gpu_pool"], timeout_s 390): install the carried wheels and the project
#              (--no-deps, KERAS_BACKEND=jax); pre-train replication2021 and paper2016 on the nine public-domain
#              painters outside task 1 (2,765 images), and save a random (untrained) replication2021 encoder
#              for the control; bench the 256 px training steps, bfloat16 beside float32;
#   evaluate   (call 2, at once, while the machine is warm: it keeps call 1's installs, encoders and pool;
#              carry [".gpu_task1"], timeout_s 360): 10-fold task 1 (van Gogh / Rembrandt / Renoir, 1,425
#              images) with each of the three encoders, the three cv10 runs side by side (their heads' steps are
#              bound by the host, which has 16 cores);
#   all        both, where one call can carry everything (and the CPU rehearsal).
# Each call packs the compact run folders (no feature caches, autoencoders or final models) into $OUT:
# runs.tar.gz (split into ≤ 15 MiB parts if larger), bench.md, steps.tsv, session.log. Steps run while time
# is left (SESSION_BUDGET_S: 360 s for pretrain, 330 s for evaluate: with a machine's start, about 14 of the 15
# device-minutes a task is lent), each within its own cap; a cut cv10 resumes fold by fold when the same call
# runs again with the packed runs at .gpu_task1/previous/ (a cut pre-training starts again).
#
# Prepare the carry here: bash experiments/gpu_carry.sh
# CPU rehearsal (JAX on the CPU, TensorFlow hidden, 12 images per folder at 32 px):
#   bash experiments/gpu_carry.sh --tiny 12 --python 3.11 && PYTHON=.venv/bin/python bash experiments/gpu_session.sh all --tiny
#
# Settings (environment): PRECISION=bfloat16|float32 (default bfloat16: Keras' mixed_bfloat16 policy for every
# run), PRETRAIN_EPOCHS (default 10), SESSION_BUDGET_S, PYTHON (default python3), OUT (default results/gpu_session).
set -uo pipefail
cd "$(dirname "$0")/.."
PHASE=${1:-}
TINY=0
[ "${2:-}" = --tiny ] && TINY=1
case "$PHASE" in
  pretrain) BUDGET=${SESSION_BUDGET_S:-360} ;;
  evaluate) BUDGET=${SESSION_BUDGET_S:-330} ;;
  all) BUDGET=${SESSION_BUDGET_S:-690} ;;
  *) echo "usage: bash experiments/gpu_session.sh pretrain|evaluate|all [--tiny]" >&2; exit 2 ;;
esac
[ $TINY = 1 ] && BUDGET=${SESSION_BUDGET_S:-3600}
START=$(date +%s)
PACK_RESERVE=20  # seconds kept for packing
PY=${PYTHON:-python3}
OUT=${OUT:-results/gpu_session}
RUNS=results/gpu_runs
SITE=/tmp/deeppainter-site
mkdir -p "$OUT" "$RUNS"
exec > >(tee -a "$OUT/session.log") 2>&1
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 DEEPPAINTER_CACHE=/tmp/deeppainter-cache
# Several JAX processes share the GPU in the evaluate phase: each takes memory as it needs it.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
# Compiled XLA programs are reused across the session's processes (the same models recur).
export JAX_COMPILATION_CACHE_DIR=/tmp/deeppainter-xla JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=1

left() { echo $((BUDGET - ($(date +%s) - START))); }
[ -f "$OUT/steps.tsv" ] || printf 'step\tstatus\tseconds\n' > "$OUT/steps.tsv"
step() {  # step NAME MIN_SECONDS MAX_SECONDS COMMAND...: run COMMAND if MIN_SECONDS are left, interrupted (SIGINT)
  local name=$1 needs=$2 cap=$3 began status limit  # after MAX_SECONDS or at the budget, whichever comes first
  shift 3
  if [ "$(left)" -lt $((needs + PACK_RESERVE)) ]; then
    echo "== skipped $name: $(left) s left, it needs ≥ $needs s"
    printf '%s\tskipped\t0\n' "$name" >> "$OUT/steps.tsv"
    return
  fi
  echo "== $name ($(left) s left)"
  began=$(date +%s)
  limit=$(($(left) - PACK_RESERVE))
  [ $TINY = 0 ] && [ "$limit" -gt "$cap" ] && limit=$cap  # the caps are the GPU's; a CPU rehearsal has none
  timeout --signal=INT --kill-after=10 "$limit" "$@"
  status=$?
  printf '%s\t%s\t%s\n' "$name" "$([ $status = 0 ] && echo done || echo "exit $status")" $(($(date +%s) - began)) \
    >> "$OUT/steps.tsv"
}
pack() {  # $OUT returns at most 8 files of 16 MiB each
  rm -f "$OUT"/runs.tar.gz*
  tar -C results -czf "$OUT/runs.tar.gz" --exclude=cache --exclude=resume --exclude=backup --exclude='*.npy' \
    --exclude='autoencoder*.keras' --exclude='final_model.*' "$(basename "$RUNS")"
  if [ "$(stat -c %s "$OUT/runs.tar.gz")" -gt $((15 * 1024 * 1024)) ]; then
    split -b 15m -d "$OUT/runs.tar.gz" "$OUT/runs.tar.gz." && rm "$OUT/runs.tar.gz"
  fi
  echo "== packed into $OUT: $(ls "$OUT" | tr '\n' ' ')($(($(date +%s) - START)) s in all)"
  cat "$OUT/steps.tsv"
}
trap pack EXIT
need() {  # need PATH WHAT: stop with a one-line reason when a carried or earlier-made input is missing
  [ -e "$1" ] || { echo "error: $1 is missing: $2" >&2; exit 2; }
}

echo "== $PHASE on $(nvidia-smi -L 2>/dev/null || echo 'a CPU (no nvidia-smi)'); $($PY --version)"
if [ $TINY = 1 ]; then  # the device has no TensorFlow: the rehearsal makes sure nothing needs it
  mkdir -p /tmp/deeppainter-no-tf/tensorflow
  echo 'raise ImportError("no TensorFlow on the GPU machine (gpu_session.sh --tiny hides it)")' \
    > /tmp/deeppainter-no-tf/tensorflow/__init__.py
  export PYTHONPATH="/tmp/deeppainter-no-tf${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
for previous in .gpu_pool/previous .gpu_task1/previous; do  # an earlier call's runs: finished ones stay, cut ones resume
  if ls "$previous"/runs.tar.gz* >/dev/null 2>&1; then
    cat "$previous"/runs.tar.gz* | tar -C results -xz && echo "== unpacked $previous"
  fi
done

SETTINGS=(--set "pretrain.epochs=${PRETRAIN_EPOCHS:-10}")  # ASSUMPTION: 10 epochs fit call 1 (issue 27's estimate)
[ "${PRECISION:-bfloat16}" = float32 ] || SETTINGS+=(--set autoencoder.mixed_precision=true --set "autoencoder.mixed_dtype=${PRECISION:-bfloat16}")
BENCH=()
if [ $TINY = 1 ]; then  # the same commands on a tiny problem: 32 px inputs, one pre-training epoch, two head epochs
  SETTINGS+=(--set data.image_size=32 --set pretrain.epochs=1 --set classifier.epochs=2)
  BENCH=(--paper-batch 1 --paper-steps 1)
fi
ENCODERS=(replication2021 paper2016 random)
preset_of() { [ "$1" = random ] && echo replication2021 || echo "$1"; }
random_set() { [ "$1" = random ] && echo "--set pretrain.epochs=0"; }  # the control: an untrained encoder

if [ "$PHASE" != evaluate ]; then
  need .whl "carry .whl (bash experiments/gpu_carry.sh)"
  need .gpu_pool/wikiart14 "carry .gpu_pool (bash experiments/gpu_carry.sh)"
  rm -rf "$SITE"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .whl/*.whl || exit 1
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target "$SITE" . \
    || echo "warning: the project did not install; the commands run it from the working tree anyway"
  "$PY" -c "import keras, jax; print('keras', keras.__version__, 'on', keras.backend.backend(), jax.devices())" || exit 1
  # ASSUMPTION (not measured: no GPU yet): 10 epochs of replication2021 (596 GFLOP per image and step, 2,489
  # training images, about 15 PFLOP) take about 40-80 s at 20-40% of an H100's bf16 peak, paper2016 (347 GFLOP) about 60% of that.
  declare -A CAP=([replication2021]=150 [paper2016]=110 [random]=40)
  for encoder in "${ENCODERS[@]}"; do
    # shellcheck disable=SC2046  # random_set's words are meant to split
    step "pre-train $encoder" 30 "${CAP[$encoder]}" "$PY" -m deeppainter.pretrain_ae --preset "$(preset_of "$encoder")" \
      --data .gpu_pool/wikiart14 --out "$RUNS/pretrain-$encoder" "${SETTINGS[@]}" $(random_set "$encoder")
  done
  # 256 px steps of both autoencoders and of the 246 M-weight head, bfloat16 and float32; MFU of the measured
  # matrix-product peak (add --peak-tflops 495,989 for an H100 SXM's dense TF32/bf16 datasheet peak).
  step "bench, paper size" 45 100 "$PY" -m deeppainter.bench --paper-only --out "$RUNS/bench" --report "$OUT/bench.md" "${BENCH[@]}"
fi

if [ "$PHASE" != pretrain ]; then
  need "$SITE/keras" "the machine was given back after the pretrain call (run evaluate at once after it, or run all)"
  need .gpu_task1/wikiart14 "carry .gpu_task1 (bash experiments/gpu_carry.sh)"
  pids=()
  for encoder in "${ENCODERS[@]}"; do
    run=$(ls -d "$RUNS/pretrain-$encoder"/*_pretrain_ae_* 2>/dev/null | tail -1)
    [ -n "$run" ] && [ -e "$run/DONE" ] || { echo "== no finished $encoder encoder: its cv10 waits for one"; continue; }
    # The three cv10 runs go side by side; each gets the budget that is left.
    # shellcheck disable=SC2046
    step "task 1, cv10 with the $encoder encoder" 90 100000 "$PY" -m deeppainter.cv10 --preset "$(preset_of "$encoder")" \
      --data .gpu_task1/wikiart14 --classes vincent-van-gogh,rembrandt,pierre-auguste-renoir --encoder "$run" \
      --out "$RUNS/cv10-$encoder" --workers 8 "${SETTINGS[@]}" $(random_set "$encoder") &
    pids+=($!)
  done
  [ ${#pids[@]} = 0 ] || wait "${pids[@]}"  # these alone: a bare wait would also wait for the log's tee
fi
