#!/usr/bin/env bash
# Stage onnxruntime-gpu and PyAV (the version pyproject.toml allows) for the device machine as
# .gpu/p1 .. .gpu/pN: both wheels unpacked into site/, tarred and xz-compressed (-9: 227 MB
# against the wheels' 290, so five pieces instead of six), split into 48 MiB pieces, which fit
# a call's 64 MiB beside this 14 MiB tree. Run here, from the project root; then carry one piece
# per device call (`run` with carry [".gpu/pK"], command `ls .gpu`), back to back, and in the
# last call unpack and run:
#   cat .gpu/p*/piece.* | python3 -c "import sys,tarfile; tarfile.open(fileobj=sys.stdin.buffer,
#     mode='r|xz').extractall('/tmp')"; export PYTHONPATH=/tmp/site; bash scripts/device/gpu_check.sh
# The compression takes about 6 minutes on two cores.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
av=$(python3 -c "import tomllib; d=tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']; print(next(x for x in d if x.startswith('av')))" 2>/dev/null || echo 'av>=18,<20')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$work/whl" onnxruntime-gpu "$av"
mkdir -p "$work/site"
for w in "$work"/whl/*.whl; do (cd "$work/site" && python3 -m zipfile -e "$w" .); done
tar -C "$work" -cf - site | xz -9 -T2 > "$work/site.tar.xz"
rm -rf .gpu && mkdir -p .gpu
split -b 48M -d -a 1 "$work/site.tar.xz" .gpu/piece.
for f in .gpu/piece.*; do i=$(( ${f##*.} + 1 )); mkdir -p ".gpu/p$i"; mv "$f" ".gpu/p$i/"; done
echo "staged $(ls -d .gpu/p* | wc -l) pieces:"; du -sh .gpu/p*
