#!/bin/sh
# Rebuild the benchmark's C modules (needs clang + wasm-ld, e.g. Debian's
# `apt-get install clang lld`). The built .wasm files are kept in the
# repository so the benchmarks run without clang.
set -eu
cd "$(dirname "$0")"
build() {  # build <name> <exported function>
    src=$1
    clang --target=wasm32 -O2 -nostdlib -fno-builtin \
        -Wl,--no-entry -Wl,--export="$2" -Wl,--strip-all \
        -o "$src.wasm" "$src.c"
    echo "built $src.wasm ($(wc -c < "$src.wasm") bytes)"
}
build sort sort_checksum
build interp run_program
build hash hash_bench
