#!/usr/bin/env bash
# Builds lamina._core from this checkout into build/dev and copies it next to python/lamina, so
# `PYTHONPATH=python python -m pytest` tests this tree without installing anything (several
# checkouts can then be built and tested side by side, each against its own extension).
#   scripts/dev_build.sh            # Release build
#   BUILD_TYPE=RelWithDebInfo scripts/dev_build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -f build/dev/build.ninja ]; then
  cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" \
    -DSKBUILD_PROJECT_NAME=lamina -DSKBUILD_PROJECT_VERSION=0.1.0 \
    -Dpybind11_DIR="$("$PYTHON" -m pybind11 --cmakedir)" >/dev/null
fi
ninja -C build/dev -j "${JOBS:-2}"
cp build/dev/_core*.so python/lamina/
