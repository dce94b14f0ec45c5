#!/usr/bin/env bash
# Set up mmrsfusion's environment, then optionally run the demo or the tests.
#
#   bash tools/setup_env.sh          set up (or check) the environment only
#   bash tools/setup_env.sh demo     + make synthetic data, train, test (table)
#   bash tools/setup_env.sh test     + run the whole test suite (exit code kept)
#
# Environment variables:
#   MMRS_VENV        virtualenv directory, created or reused (default: ./.venv)
#   MMRS_PYTHON      interpreter that creates it (default: python3)
#   PIP_FIND_LINKS   extra wheel folders/URLs for pip (find-links in pip.conf
#                    works too), e.g. a prebuilt mmcv wheel: without one, mmcv
#                    is built from source (about 12 minutes on 2 cores).
#   MMRS_PYTEST_ARGS pytest options for `test` (default: -n 2)
#   DEMO_CONFIG      config of the `demo` target (default below)
#
# A second run only checks the environment: the requirement files, setup.py
# and this script are hashed into a stamp in the venv, and the stack is
# import-checked; anything changed or broken triggers the install again.
set -euo pipefail

DEMO_CONFIG=${DEMO_CONFIG:-configs/mobanet/demo_tinyvit_synthetic.py}

# torch + torchvision: kept when an installed pair imports together, else
# this pair from the package index. `===` (arbitrary equality) is essential:
# `==2.13.0` also matches a local `2.13.0+cpu` file pip may prefer, with
# which the index's torchvision fails to load ("torchvision::nms does not
# exist").
TORCH_PAIR=("torch===2.13.0" "torchvision===0.28.0")
# mmcv with compiled ops (mmseg imports mmcv.ops); no binary wheel on PyPI.
MMCV_SPEC="mmcv==2.1.0"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${MMRS_VENV:-$ROOT/.venv}
case "$VENV" in /*) ;; *) VENV=$ROOT/$VENV ;; esac
PY=$VENV/bin/python
STAMP=$VENV/.mmrsfusion-setup-stamp

log() { echo "[setup_env] $*" >&2; }
pip_install() { "$PY" -m pip install --progress-bar off -q "$@"; }

stamp_value() {
    # Everything that decides what gets installed, plus where from.
    {
        echo "$ROOT"
        "$PY" -VV
        cat requirements/*.txt setup.py tools/setup_env.sh
    } | sha256sum | cut -d' ' -f1
}

check_stack() {
    # The whole stack imports, and mmrsfusion is the one in this checkout.
    "$PY" - "$ROOT" <<'EOF'
import os
import sys
import warnings

warnings.filterwarnings('ignore')
import mmcv.ops  # noqa: E402,F401
import mmpretrain.models  # noqa: E402,F401
import mmseg.models  # noqa: E402,F401
import torch  # noqa: E402
import torchvision  # noqa: E402

import mmrsfusion  # noqa: E402

where = os.path.realpath(mmrsfusion.__file__)
root = os.path.realpath(sys.argv[1])
if not where.startswith(root + os.sep):
    sys.exit(f'mmrsfusion is imported from {where}, not from {root}')
import mmcv, mmengine, mmpretrain, mmseg  # noqa: E402,E401
print(f'[setup_env] python {sys.version.split()[0]}, torch '
      f'{torch.__version__}, torchvision {torchvision.__version__}, mmcv '
      f'{mmcv.__version__}, mmengine {mmengine.__version__}, mmseg '
      f'{mmseg.__version__}, mmpretrain {mmpretrain.__version__}, '
      f'mmrsfusion {mmrsfusion.__version__}', file=sys.stderr)
EOF
}

torch_pair_ok() {
    "$PY" -c 'import torch, torchvision' >/dev/null 2>&1
}

mmcv_ok() {
    # mmcv in the range mmrsfusion/version.py supports, with its ops loading
    # against the installed torch.
    "$PY" - "$ROOT/mmrsfusion/version.py" >/dev/null 2>&1 <<'EOF'
import importlib.util
import sys

spec = importlib.util.spec_from_file_location('version', sys.argv[1])
version = importlib.util.module_from_spec(spec)
spec.loader.exec_module(version)
from packaging.version import Version  # noqa: E402

_, _, low, high = next(d for d in version.DEPENDENCIES if d[0] == 'mmcv')
assert Version(low) <= Version(version.installed_version('mmcv')) < \
    Version(high)
import mmcv.ops  # noqa: E402,F401
EOF
}

install() {
    local t0=$SECONDS
    log "installing build tools (requirements/build.txt)"
    pip_install -r requirements/build.txt

    if torch_pair_ok; then
        log "keeping $("$PY" -c 'import torch, torchvision; print(f"torch {torch.__version__} + torchvision {torchvision.__version__}")')"
    else
        log "installing ${TORCH_PAIR[*]}"
        pip_install "${TORCH_PAIR[@]}"
    fi

    if mmcv_ok; then
        log "keeping mmcv $("$PY" -c 'import mmcv; print(mmcv.__version__)') (ops load)"
    else
        log "installing $MMCV_SPEC with ops: a wheel from PIP_FIND_LINKS /" \
            "find-links or pip's cache if there is one, else a build from" \
            "source (about 12 minutes on 2 cores)"
        MMCV_WITH_OPS=1 pip_install --no-build-isolation "$MMCV_SPEC"
        if ! mmcv_ok; then
            # A wheel built against another torch: its ops do not load.
            log "the installed mmcv's ops do not load with this torch;" \
                "building $MMCV_SPEC from source (about 12 minutes)"
            MMCV_WITH_OPS=1 pip_install --no-build-isolation --no-cache-dir \
                --no-binary mmcv --force-reinstall --no-deps "$MMCV_SPEC"
        fi
    fi

    log "installing requirements/runtime.txt, requirements/tests.txt and" \
        "mmrsfusion (editable)"
    pip_install -r requirements/runtime.txt -r requirements/tests.txt
    pip_install --no-build-isolation --no-deps -e .
    log "installed in $((SECONDS - t0)) s"
}

setup() {
    if [ ! -x "$PY" ]; then
        local python=${MMRS_PYTHON:-python3}
        log "creating virtualenv $VENV ($("$python" -V 2>&1))"
        "$python" -m venv "$VENV"
    fi
    local want
    want=$(stamp_value)
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && check_stack; then
        log "environment $VENV is up to date"
        return
    fi
    rm -f "$STAMP"
    install
    check_stack
    echo "$want" >"$STAMP"
    log "environment $VENV is ready"
}

install_extras() {
    # Optional extras by name: `geo` (pyogrio + shapely + fiona for
    # --vector and vector labels; rasterio is a runtime requirement) and `tb`
    # (TensorBoard: its test).
    # pip returns at once when a file's requirements are already satisfied.
    local name
    for name in "$@"; do
        log "installing requirements/$name.txt (the $name extra)"
        pip_install -r "requirements/$name.txt"
    done
}

run_demo() {
    # tools/train.py's default work dir: work_dirs/<config name>
    local t0=$SECONDS work_dir
    work_dir=work_dirs/$(basename "$DEMO_CONFIG" .py)
    local tiny=pretrain/dinov2_tiny_demo
    log "demo: synthetic data -> data/synthetic_mm"
    "$PY" tools/misc/make_synthetic_dataset.py data/synthetic_mm
    if [ ! -f "${tiny}_converted.pth" ]; then
        # MoBaNet's frozen "pretrained" ViT: random, seeded, written with the
        # official DINOv2 key names and converted like a real checkpoint.
        log "demo: tiny ViT checkpoint -> ${tiny}_converted.pth"
        "$PY" tools/misc/make_tiny_vit_checkpoint.py "${tiny}_pretrain.pth"
        "$PY" tools/model_converters/dinov2.py "${tiny}_pretrain.pth" \
            "${tiny}_converted.pth"
    fi
    log "demo: training $DEMO_CONFIG"
    "$PY" tools/train.py "$DEMO_CONFIG" --work-dir "$work_dir"
    local checkpoint
    checkpoint=$(cat "$work_dir/last_checkpoint")
    log "demo: testing $checkpoint (sliding window)"
    "$PY" tools/test.py "$DEMO_CONFIG" "$checkpoint" --work-dir "$work_dir"
    log "demo: mapping a synthetic 1024 x 1024 GeoTIFF scene"
    "$PY" tools/misc/make_synthetic_dataset.py data/synthetic_scene \
        --geotiff-scene 1024 1024 --dsm-factor 4
    "$PY" tools/predict_scene.py "$DEMO_CONFIG" "$checkpoint" \
        --input rgb=data/synthetic_scene/rgb.tif \
        --input dsm=data/synthetic_scene/dsm.tif \
        -o "$work_dir/scene_pred.tif" --no-progress
    log "demo finished in $((SECONDS - t0)) s"
}

run_tests() {
    local args
    read -r -a args <<<"${MMRS_PYTEST_ARGS--n 2}"
    log "tests: pytest ${args[*]} tests"
    exec "$PY" -m pytest "${args[@]}" tests
}

case "${1:-}" in
    "" | demo | test) ;;
    *)
        echo "usage: bash tools/setup_env.sh [demo|test]" >&2
        exit 2
        ;;
esac
# Not `setup && ...`: set -e is off inside a function called on the left of &&.
setup
case "${1:-}" in
    demo) install_extras geo; run_demo ;;
    test) install_extras geo tb; run_tests ;;
esac
