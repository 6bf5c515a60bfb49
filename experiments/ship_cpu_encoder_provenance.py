"""Write deeppainter/pretrained_encoders/cpu/PROVENANCE.md for the encoder ship_cpu_encoder.sh copied there."""
import hashlib
import json
import sys
from pathlib import Path

import pandas as pd

dest = Path("deeppainter/pretrained_encoders/cpu")
run_dir = Path(sys.argv[1])
encoder = dest / "encoder.keras"
metrics = json.loads((dest / "pretrain_metrics.json").read_text())
table = pd.read_csv(dest / "pretrain_images.csv")
sha = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731
rows = []
for path in sorted(table["path"]):
    rows.append(f"{Path(path).parent.name}/{Path(path).name}  {sha(Path(path).read_bytes())}")
listing = "\n".join(rows) + "\n"
(dest / "pretrain_images.sha256").write_text(listing)
folders = table["path"].map(lambda p: Path(p).parent.name).value_counts().sort_index()
text = f"""# Shipped encoder for the `cpu` preset

`encoder.keras` is the encoder half of the `cpu`-preset convolutional autoencoder (64 px, 5 epochs,
seed 0), used by `python -m deeppainter.cv10` on the embedded sample when neither `--encoder` nor
`--pretrain-data` is given (issue 16). It was pre-trained **only on painters that are not evaluated**:
never van Gogh, Rembrandt or Renoir (the sample's classes), and Picasso and Konchalovsky were left out too.

- Command: `bash experiments/ship_cpu_encoder.sh` (runs `python -m deeppainter.pretrain_ae --preset cpu
  --seed 0 --data ../shared/data/wikiart14 --exclude pablo-picasso,pierre-auguste-renoir,pyotr-konchalovsky,rembrandt,vincent-van-gogh`
  and copies the encoder here), then `python experiments/ship_cpu_encoder_provenance.py RUN_DIR`.
- Pre-training run: `{run_dir.name}` (its folder is local: `results/ship_encoder_runs/`)
- Data: {len(table)} public-domain WikiArt paintings in ../shared/data/wikiart14:
{chr(10).join(f"  - {name}: {count}" for name, count in folders.items())}
- Per-image sha256: `pretrain_images.sha256` (sorted); sha256 of that list: `{sha(listing.encode())}`
- Validation MSE (best epoch, 10% held out of the pool): {metrics['val_mse_best']:.5f}
  (untrained {metrics['val_mse_untrained']:.5f}, {100 * metrics['val_mse_relative_drop']:.1f}% drop,
  {metrics['epochs_run']} epochs, {metrics['wall_seconds']:.0f} s on 2 CPU cores); full metrics: `pretrain_metrics.json`
- `encoder.keras`: {encoder.stat().st_size} bytes, sha256 `{sha(encoder.read_bytes())}`
"""
(dest / "PROVENANCE.md").write_text(text)
print(text)
