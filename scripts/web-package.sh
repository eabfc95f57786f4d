#!/usr/bin/env bash
# Builds the browser SDK's npm package, as it would be published:
#
#   ./scripts/web-package.sh      # → target/web-pkg/alga-storage-web-<version>.tgz
#
# wasm-pack builds sdk-web with the size-first `web` profile for `--target web` (an ES module
# that loads its .wasm with `new URL(…, import.meta.url)`: browsers take it as is, and Vite,
# webpack 5, Rollup and esbuild bundle it, so one target serves both), using wasm-bindgen-cli
# from PATH (scripts/test.sh installs it from crates.io; nothing is downloaded). Then `npm pack`
# makes the tarball a user installs, and the sizes are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/web-pkg
rm -rf "$out/pkg"
# (wasm-bindgen warns that `strip = true` removed the target_features section; it is expected:
# see [profile.web] in Cargo.toml.)
CARGO_TARGET_DIR="$PWD/target/wasm" wasm-pack --quiet build sdk-web \
  --profile web --target web --out-dir "$PWD/$out/pkg" --no-gitignore
(cd "$out/pkg" && npm pack --silent --pack-destination .. >/dev/null)
size() { printf '%-28s %8d bytes raw, %7d gzipped\n' "$(basename "$1")" "$(wc -c <"$1")" "$(gzip -9c "$1" | wc -c)"; }
size "$out/pkg/alga_storage_web_bg.wasm"
size "$out/pkg/alga_storage_web.js"
size "$out/pkg/alga_storage_web.d.ts"
ls "$out"/alga-storage-web-*.tgz
