#!/usr/bin/env bash
# Prepare, here (with network), what experiments/gpu_session.sh needs on a GPU machine with no network, no
# TensorFlow and no Keras. A device call carries the checkout's tracked files plus the named folders, 64 MiB in
# all; the tracked files alone are about 45 MiB, so the images travel in two calls on one warm machine:
#   .whl/          keras and the two packages it needs that the device image lacks (namex, optree): the versions
#                  installed here, for the device's Python (3.12 unless --python says otherwise)
#   .gpu_pool/wikiart14/   the pre-training pool: the nine public-domain wikiart14 painters outside task 1,
#                  re-encoded as WebP at the best quality that fits beside .whl (call 1: gpu_session.sh pretrain)
#   .gpu_task1/wikiart14/  task 1 (van Gogh, Rembrandt, Renoir), the files byte for byte, so folds, duplicate
#                  groups and image lists are those of the cpu runs on ../shared/data/wikiart14
#                  (call 2: gpu_session.sh evaluate)
# All three are git-ignored. Run this in the checkout the session's device calls are sent from.
#
# Usage: bash experiments/gpu_carry.sh [--python 3.12] [--tiny N] [--data ../shared/data/wikiart14]
#   --tiny N   only N images per folder (the CPU rehearsal: gpu_session.sh all --tiny)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
DEVICE_PYTHON=3.12
TINY=0
DATA=../shared/data/wikiart14
while [ $# -gt 0 ]; do
  case "$1" in
    --python) DEVICE_PYTHON=$2; shift 2 ;;
    --tiny) TINY=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    *) echo "error: unknown option $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
[ -d "$DATA" ] || { echo "error: --data $DATA: no such folder (wikiart14, see ../shared/data/README.md)" >&2; exit 2; }

# 1. Wheels: the versions this environment runs (the tests pass with them), for the device's interpreter.
rm -rf .whl && mkdir -p .whl
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$DEVICE_PYTHON" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
  "keras==$(version keras)" "namex==$(version namex)" "optree==$(version optree)"

# 2. What travels besides: tracked and untracked-not-ignored files.
TREE=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null \
  | awk '{s += $1} END {print s + 0}')

# 3. Images: task 1 byte for byte; the pool re-encoded to fit (Picasso and Konchalovsky, under copyright, stay home).
rm -rf .gpu_pool .gpu_task1
"$PY" - "$DATA" "$TINY" "$TREE" <<'EOF'
import io
import shutil
import sys
from pathlib import Path

from PIL import Image

data, tiny, tree = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
TASK1 = ["vincent-van-gogh", "rembrandt", "pierre-auguste-renoir"]
POOL = ["claude-monet", "paul-cezanne", "paul-gauguin", "gustave-courbet", "william-turner", "edouard-manet",
        "eugene-delacroix", "gerard-van-honthorst", "jacques-louis-david"]
LIMIT, MARGIN = 64 * 2 ** 20, 2 * 2 ** 20  # the margin leaves room for the tracked files to grow
wheels = sum(p.stat().st_size for p in Path(".whl").iterdir())


def files(folder):
    found = sorted((data / folder).glob("*.jpg"), key=lambda p: (len(p.stem), p.stem))
    if not found:
        sys.exit(f"error: {data / folder}: no .jpg files")
    return found[:tiny or None]


def webp(path, quality):
    with Image.open(path) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "WEBP", quality=quality, method=6)
    return buffer.getvalue()


pool = {folder: files(folder) for folder in POOL}
every = [path for paths in pool.values() for path in paths]
room = LIMIT - MARGIN - tree - wheels
# ASSUMPTION: the best WebP quality (of 90, 80, ..., 20) whose size, estimated on every 20th image, fits the room.
sample = every[::20]
for quality in range(90, 10, -10):
    estimate = sum(len(webp(p, quality)) for p in sample) * len(every) / len(sample)
    if estimate <= room:
        break
else:
    sys.exit(f"error: the pool does not fit beside {tree / 2 ** 20:.1f} MiB of tracked files even at WebP quality 20")
for folder, paths in pool.items():
    (Path(".gpu_pool/wikiart14") / folder).mkdir(parents=True)
    for path in paths:
        (Path(".gpu_pool/wikiart14") / folder / f"{path.stem}.webp").write_bytes(webp(path, quality))
for folder in TASK1:
    (Path(".gpu_task1/wikiart14") / folder).mkdir(parents=True)
    for path in files(folder):
        shutil.copyfile(path, Path(".gpu_task1/wikiart14") / folder / path.name)
size = {name: sum(p.stat().st_size for p in Path(name).rglob("*") if p.is_file()) for name in (".gpu_pool", ".gpu_task1")}
print(f"pool: {len(every)} images, WebP quality {quality}, {size['.gpu_pool'] / 2 ** 20:.1f} MiB; "
      f"task 1: {sum(1 for _ in Path('.gpu_task1').rglob('*.jpg'))} images, {size['.gpu_task1'] / 2 ** 20:.1f} MiB")
calls = {"call 1 (pretrain): tracked + .whl + .gpu_pool": tree + wheels + size[".gpu_pool"],
         "call 2 (evaluate): tracked + .gpu_task1": tree + size[".gpu_task1"]}
for what, total in calls.items():
    print(f"{what} = {total / 2 ** 20:.1f} MiB of 64 MiB")
if max(calls.values()) > LIMIT:
    sys.exit("error: a call is over the 64 MiB a device call carries")
EOF
ls .whl
