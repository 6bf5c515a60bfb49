#!/usr/bin/env bash
# Task 1 study (issue 9): every run below is a 10-fold cv10 run on the wikiart14 3 painters at the cpu
# preset, changing one factor at a time against experiments/cpu_3painters.toml. Runs resume where they
# stopped; finished ones are skipped (same fingerprint). Usage:
#   bash experiments/study_task1.sh encoder     # factors that need their own pre-training
#   bash experiments/study_task1.sh classifier  # baselines and classifier-side factors (share the encoder)
#   bash experiments/study_task1.sh slow        # the uncached classifier factors and the RBM baselines
set -uo pipefail
base=(python -m deeppainter.cv10 --experiment experiments/cpu_3painters.toml)
run() { echo "== $*"; "${base[@]}" "$@" || echo "FAILED: $*"; }
case "${1:-all}" in
  encoder|all)
    run --set pretrain.epochs=0                      # pool size 0: random encoder, no pre-training
    run --model cae-svm                              # encoder style descriptors + SVM
    run --model cae-features-svm                     # ... beside the handcrafted features
    run --model cae-svm --set pretrain.epochs=0      # the same descriptors from a random encoder
    run --set autoencoder.unpooling=maxunpool              # [P16] true max-unpooling instead of UpSampling2D
    run --set pretrain.denoise=none
    run --set pretrain.denoise=per_epoch             # [P16] one mask per image per epoch
    run --set data.mode=crop                         # = pad on wikiart14: its images are already padded squares
    # Standardisation ablation on the paintings themselves: cut the old bars first, then pad / crop / resize.
    run --set data.trim_bars=true
    run --set data.trim_bars=true --set data.mode=crop
    run --set data.trim_bars=true --set data.mode=resize
    run --set pretrain.max_images=1000               # pool size 1,000 (all = 3,765 is the base run)
    run --set data.image_size=128
    run --model cae-features-svm --set data.image_size=128
    run --model stack                                # features-svm + cae-svm, combiner fitted in training folds
    run --model cae-svm --set classifier.svm_power=select  # power-normalised Gram descriptors (chosen per fold)
    run --model stack --set classifier.svm_power=select
    run --set pretrain.epochs=20                     # longer pre-training (early stopping on val MSE)
    ;;&
  classifier|all)
    for model in features-svm pixels-svm features-knn; do run --model "$model"; done
    run --set classifier.head=300,300                # [R21] Table II head
    run --set classifier.pooling=meanstd
    run --model features-svm --set data.image_size=128
    run --model features-svm --set data.image_size=256
    run --model features-svm --set classifier.svm_power=select
    run --model features-svm --set classifier.svm_power=select --seed 1   # another fold split
    run --model features-svm --set classifier.svm_power=select --set data.image_size=128 --set classifier.feature_scales=1,2
    ;;&
  slow|all)
    run --set classifier.augment=true --set classifier.epochs=20
    run --set classifier.fine_tune=true --set classifier.epochs=10
    for model in rbm-knn rbm-svm features-rbm-svm; do run --model "$model"; done  # slowest: ~2 min per fold
    ;;
esac
