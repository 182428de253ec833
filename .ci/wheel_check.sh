#!/usr/bin/env bash
# The package as users install it: build the wheel, check what it carries, install it into
# clean virtual environments and run it there.
#   1. without torch (extra "onnxruntime"): `clipseg --help`, and an ONNX export (made by the
#      development environment) segmented by OnnxPredictor;
#   2. with the CPU torch (extra "torch"): `clipseg --help` and a tiny `clipseg segment`.
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=${DEV:-.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

$DEV -m pip wheel -q --no-deps -w "$WORK/dist" . 2>&1 | grep -v WARNING || true
WHEEL=$(ls "$WORK"/dist/clipseg-*.whl)
echo "wheel: $(basename "$WHEEL")"
$DEV - "$WHEEL" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = ["clipseg/py.typed", "clipseg/tokenizer/VOCAB_LICENSE.md", "clipseg/configs/clipseg-pc-plus.json",
        "clipseg/tokenizer/bpe_simple_vocab_16e6.txt.gz", "clipseg/server/static/index.html",
        "clipseg/assets/world/clip.safetensors", "clipseg/assets/world/clipseg.safetensors",
        "clipseg/assets/world/MODEL_CARD.md", "clipseg/assets/world/example-scene.png",
        "clipseg/assets/photos/coffee.jpg", "clipseg/assets/photos/LICENSE.md"]
missing = [n for n in need if n not in names]
licenses = [n for n in names if n.endswith(("/LICENSE", "licenses/LICENSE"))]
meta = [n for n in names if n.endswith("METADATA")][0]
text = zipfile.ZipFile(sys.argv[1]).read(meta).decode()
problems = missing + ([] if licenses else ["LICENSE"]) + [k for k in ("Project-URL", "Classifier") if k not in text]
if problems:
    sys.exit(f"the wheel lacks: {problems}")
print(f"wheel carries LICENSE, the vocabulary licence, {sum(n.startswith('clipseg/configs/') for n in names)} configs, "
      "the world models, the example photo, py.typed, project URLs and classifiers")
PY

# 1. no torch
python3 -m venv "$WORK/ort"
"$WORK/ort/bin/pip" install -q "$WHEEL[onnxruntime]" 2>&1 | grep -v WARNING || true
if "$WORK/ort/bin/python" -c "import torch" 2>/dev/null; then echo "torch was installed by the onnxruntime extra"; exit 1; fi
"$WORK/ort/bin/clipseg" --help > /dev/null
$DEV - "$WORK/export" "$WORK/ref.npy" <<'PY'
import sys, numpy as np
import clipseg
from clipseg import Predictor
from clipseg.export import export_onnx
model = clipseg.load("tiny:random")
export_onnx(model, sys.argv[1], input_size=model.config.input_size)
img = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
p = Predictor(model); p.set_image(img)
np.save(sys.argv[2], p.predict(["a cat", "grass"]))
PY
(cd "$WORK" && "$WORK/ort/bin/python" - "$WORK/export" "$WORK/ref.npy" <<'PY'
import sys, numpy as np
from clipseg.export import OnnxPredictor
img = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
p = OnnxPredictor(sys.argv[1]); p.set_image(img)
diff = float(np.abs(p.predict(["a cat", "grass"]) - np.load(sys.argv[2])).max())
assert "torch" not in sys.modules and diff < 1e-4, diff
print(f"torch-free install: OnnxPredictor equals PyTorch (max diff {diff:.1e}), torch not installed")
PY
)

# 2. with torch (the CPU build from this machine's disk, as the Makefile installs it)
python3 -m venv "$WORK/torch"
"$WORK/torch/bin/pip" install -q torch==2.13.0 2>&1 | grep -v WARNING || true
"$WORK/torch/bin/pip" install -q "$WHEEL[torch]" 2>&1 | grep -v WARNING || true
"$WORK/torch/bin/clipseg" --help > /dev/null
"$WORK/torch/bin/python" -c "import numpy as np; from PIL import Image; Image.fromarray((np.random.default_rng(0).random((30, 40, 3))*255).astype(np.uint8)).save('$WORK/x.png')"
(cd "$WORK" && "$WORK/torch/bin/clipseg" segment x.png -p "a cat" --weights tiny:random --no-progress -o out)
test -f "$WORK/out/x.png.a_cat-"*".mask.png" || { echo "tiny segment wrote no mask"; exit 1; }
"$WORK/torch/bin/python" -c "from clipseg.training.config import Experiment; print('shipped config by name:', Experiment.load('clipseg-pc-plus').name)"
# the embedded world model, by registry name, offline, from the installed package
(cd "$WORK" && HF_HUB_OFFLINE=1 "$WORK/torch/bin/clipseg" segment x.png -p "a photo of a star." --weights world --no-progress -o world-out)
ls "$WORK/world-out/" | grep -q "x.png.*mask.png" || { echo "the world model wrote no mask"; exit 1; }
"$WORK/torch/bin/python" -c "import clipseg; m = clipseg.load('world'); print('clipseg.load(\"world\"):', m.config.input_size, 'px input, threshold', m.threshold)"
echo "wheel check passed"
