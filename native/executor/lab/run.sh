#!/usr/bin/env bash
# Builds and runs the kernel lab (validation + timing of every matmul version).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${TMPDIR:-/tmp}/tandem_kernel_lab
g++ -std=c++20 -O3 -march=native -fopenmp -I"$here/../include" -I"$here/../cpp" \
  "$here/kernel_lab.cc" "$here/../cpp/cpu/kernels.cc" -o "$out"
"$out"
