#!/usr/bin/env bash
# Tasks 2 and 4 (issue 9): the 10-artist task and the Monet / Renoir look-alike pair, CAE classifier
# beside the strongest baselines in the same folds. Runs resume; finished ones are skipped.
# On 2 CPU cores the SVMs on encoder descriptors (cae-svm, cae-features-svm) take about 10 min per fold
# for the 10-artist task (4,441 images, 45 one-vs-one SVMs × grid search × calibration): run those on
# a bigger machine or with --folds subsets + cv10 merge.
set -uo pipefail
run() { echo "== $*"; python -m deeppainter.cv10 "$@" || echo "FAILED: $*"; }
for experiment in experiments/cpu_monet_renoir.toml experiments/cpu_10artists.toml; do
  run --experiment "$experiment"
  for model in features-svm cae-svm pixels-svm cae-features-svm; do run --experiment "$experiment" --model "$model"; done
done
# Power normalisation of the features (chosen per fold by the inner grid search) and input size, task 2.
run --experiment experiments/cpu_10artists.toml --model features-svm --set classifier.svm_power=select
run --experiment experiments/cpu_10artists.toml --model features-svm --set classifier.svm_power=select --set data.image_size=128
run --experiment experiments/cpu_10artists.toml --model features-svm --set classifier.svm_power=select --set data.image_size=128 --set classifier.feature_scales=1,2
run --experiment experiments/cpu_monet_renoir.toml --model features-svm --set classifier.svm_power=select
run --experiment experiments/cpu_monet_renoir.toml --model features-svm --set classifier.svm_power=select --set data.image_size=128 --set classifier.feature_scales=1,2
