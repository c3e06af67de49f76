#!/usr/bin/env bash
# Build llama-server and llama-batched-bench from the llama.cpp that llama-cpp-python 0.3.36
# vendors (so the engine is the very one pollama runs), with the wheel's CMAKE_ARGS, into
# bench/.build/llama.cpp-<flags key>/bin. Built once (several minutes on 2 cores), then cached.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
version=0.3.36
flags=$("$root/scripts/cmake-args.sh")
key=$(printf '%s %s' "llama-cpp-python==$version" "$flags" | sha256sum | cut -c1-16)
out="$here/.build/llama.cpp-$key"
if [ -x "$out/bin/llama-server" ] && [ -x "$out/bin/llama-batched-bench" ]; then
  echo "$out/bin"
  exit 0
fi
mkdir -p "$here/.build"
sdist="$here/.build/llama_cpp_python-$version.tar.gz"
if [ ! -f "$sdist" ]; then
  cached=$(find "${PIP_CACHE_DIR:-$HOME/.cache/pip}" /tmp -maxdepth 3 -name "llama_cpp_python-$version.tar.gz" 2>/dev/null | head -1 || true)
  if [ -n "$cached" ]; then
    cp "$cached" "$sdist"
  else
    python3 -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$here/.build" >&2
  fi
fi
src="$here/.build/llama_cpp_python-$version"
[ -d "$src/vendor/llama.cpp" ] || tar -xzf "$sdist" -C "$here/.build"
echo "building llama-server and llama-batched-bench with '$flags' (once; several minutes)" >&2
# shellcheck disable=SC2086  # the flags are a word list on purpose
cmake -S "$src/vendor/llama.cpp" -B "$out/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  $flags -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF >&2
cmake --build "$out/cmake" --target llama-server llama-batched-bench -j "${BENCH_BUILD_JOBS:-2}" >&2
mkdir -p "$out/bin"
cp "$out/cmake/bin/llama-server" "$out/cmake/bin/llama-batched-bench" "$out/bin/"
echo "$out/bin"
