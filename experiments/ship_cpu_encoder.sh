#!/usr/bin/env bash
# Produces the encoder shipped in deeppainter/pretrained_encoders/cpu/ (issue 16): the cpu preset's
# autoencoder pre-trained on the wikiart14 painters that are NOT evaluated by the default cv10 run
# (never van Gogh, Rembrandt or Renoir; Picasso and Konchalovsky are left out too), then copied into the
# package with its provenance. Usage: bash experiments/ship_cpu_encoder.sh [WIKIART14_DIR]
set -euo pipefail
data="${1:-../shared/data/wikiart14}"
out=results/ship_encoder_runs
dest=deeppainter/pretrained_encoders/cpu
included=(claude-monet paul-cezanne paul-gauguin gustave-courbet william-turner edouard-manet
          eugene-delacroix gerard-van-honthorst jacques-louis-david)
excluded=(vincent-van-gogh rembrandt pierre-auguste-renoir pablo-picasso pyotr-konchalovsky)
for folder in "${included[@]}" "${excluded[@]}"; do [ -d "$data/$folder" ] || { echo "missing $data/$folder" >&2; exit 1; }; done
extra=$(comm -23 <(ls "$data" | sort) <(printf '%s\n' "${included[@]}" | sort) | paste -sd, -)
python -m deeppainter.pretrain_ae --preset cpu --seed 0 --data "$data" --exclude "$extra" --out "$out" | tee "$out.log"
run_dir=$(sed -n 's/^run folder: //p' "$out.log" | tail -1)
mkdir -p "$dest"
cp "$run_dir/encoder.keras" "$dest/encoder.keras"
cp "$run_dir/metrics.json" "$dest/pretrain_metrics.json"
cp "$run_dir/pretrain_images.csv" "$dest/pretrain_images.csv"
python experiments/ship_cpu_encoder_provenance.py "$run_dir"
