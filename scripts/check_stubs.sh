#!/usr/bin/env bash
# Checks python/lamina/_core.pyi against the built lamina._core: regenerates it into a temp dir
# (scripts/gen_stubs.py), diffs it with the checked-in file, then runs mypy's stubtest on it.
#   scripts/check_stubs.sh            # check (non-zero exit on a difference or a stubtest error)
#   scripts/check_stubs.sh --write    # regenerate the checked-in file instead
# Uses the python3 on PATH unless PYTHON is set; lamina._core must be importable by it (installed,
# or PYTHONPATH=python after scripts/dev_build.sh). Needs pybind11-stubgen and mypy.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
checked_in=python/lamina/_core.pyi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$PYTHON" scripts/gen_stubs.py "$tmp"
if [ "${1:-}" = "--write" ]; then
  cp "$tmp/lamina/_core.pyi" "$checked_in"
  echo "wrote $checked_in"
  exit 0
fi
if ! diff -u "$checked_in" "$tmp/lamina/_core.pyi"; then
  echo "$checked_in is out of date with the built module: run scripts/check_stubs.sh --write" >&2
  exit 1
fi

# stubtest type-checks the stub's package; a package holding only the stub keeps the check on
# _core (the runtime module still comes from the interpreter's lamina). The allowlist's entries
# are pybind11 details that a stub cannot express, each explained there.
mkdir -p "$tmp/stubs/lamina"
cp "$checked_in" "$tmp/stubs/lamina/_core.pyi"
: > "$tmp/stubs/lamina/__init__.pyi"
allowlist="$PWD/scripts/stubtest_allowlist.txt"
(cd "$tmp/stubs" && MYPYPATH="$tmp/stubs" "$PYTHON" -m mypy.stubtest --allowlist "$allowlist" lamina._core)
echo "stubs match lamina._core"
