#!/usr/bin/env bash
# Tasks 2 and 4 (issue 9): the 10-artist task and the Monet / Renoir look-alike pair, CAE classifier
# beside the strongest baselines in the same folds. Runs resume; finished ones are skipped.
set -uo pipefail
run() { echo "== $*"; python -m deeppainter.cv10 "$@" || echo "FAILED: $*"; }
for experiment in experiments/cpu_monet_renoir.toml experiments/cpu_10artists.toml; do
  run --experiment "$experiment"
  for model in features-svm cae-svm pixels-svm cae-features-svm; do run --experiment "$experiment" --model "$model"; done
done
