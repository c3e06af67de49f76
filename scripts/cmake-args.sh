#!/usr/bin/env bash
# Portable llama.cpp build flags for this CPU, for llama-cpp-python's CMAKE_ARGS.
#
# The default native build (-march=native) turns on AMX on recent Xeons, and llama_decode
# then crashes in ggml_backend_amx_mul_mat on Gemma 3. So: GGML_NATIVE=OFF, the AVX2 set
# every x86-64 machine we target has, plus AVX-512 (F/VNNI/BF16) only when /proc/cpuinfo
# reports all of them. Never AMX. A user-supplied CMAKE_ARGS (e.g. -DGGML_CUDA=on) wins.
set -euo pipefail
if [ -n "${CMAKE_ARGS:-}" ]; then
  printf '%s\n' "$CMAKE_ARGS"
  exit 0
fi
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { [[ " $flags " == *" $1 "* ]]; }
args="-DGGML_NATIVE=OFF"
if has avx2 && has fma && has f16c; then
  args+=" -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
fi
if has avx512f && has avx512_vnni && has avx512_bf16; then
  args+=" -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON"
fi
printf '%s\n' "$args"
