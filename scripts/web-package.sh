#!/usr/bin/env bash
# Builds the browser SDK's npm package, as it would be published:
#
#   ./scripts/web-package.sh      # → target/web-pkg/alga-storage-web-<version>.tgz
#
# wasm-pack builds sdk-web with the size-first `web` profile for `--target web` (an ES module
# that loads its .wasm with `new URL(…, import.meta.url)`: browsers take it as is, and Vite,
# webpack 5, Rollup and esbuild bundle it, so one target serves both), using wasm-bindgen-cli
# from PATH (scripts/test.sh installs it from crates.io; nothing is downloaded). Binaryen's
# `wasm-opt` then optimises the module (the npm build of Binaryen), and esbuild makes wasm-bindgen's
# JavaScript glue and its snippets (sdk-web/js, the inline ones) one minified module (both pinned
# in sdk-web/tools and installed from the registry on first use). Then `npm pack` makes the
# tarball a user installs, and the sizes are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/web-pkg
wasm_opt=sdk-web/tools/node_modules/.bin/wasm-opt
esbuild=sdk-web/tools/node_modules/.bin/esbuild
if [ ! -x "$wasm_opt" ] || [ ! -x "$esbuild" ]; then
  echo "web-package: installing Binaryen's wasm-opt and esbuild (npm, sdk-web/tools)" >&2
  npm ci --prefix sdk-web/tools --no-audit --no-fund --loglevel=error >/dev/null
fi
rm -rf "$out/pkg"
CARGO_TARGET_DIR="$PWD/target/wasm" wasm-pack --quiet build sdk-web \
  --profile web --target web --out-dir "$PWD/$out/pkg" --no-gitignore
# -O1 and no further: measured on this module (2026-11-30, 86.6 KB gzipped), -Os, -Oz, -O2 and
# -O3 make the raw module smaller but the gzipped one 4-5 % larger than -O1.
# It also drops the names section (--strip-debug) and what browsers ignore.
wasm="$out/pkg/alga_storage_web_bg.wasm"
"$wasm_opt" -O1 --all-features --strip-debug --strip-producers --strip-target-features "$wasm" -o "$wasm"
# One module a page downloads: the glue with its snippets bundled in, minified. The doc comments
# stay in the .d.ts, where editors read them. `new URL("….wasm", import.meta.url)` is kept as
# written, so browsers and bundlers find the module as before.
js="$out/pkg/alga_storage_web.js"
"$esbuild" "$js" --bundle --format=esm --minify --legal-comments=none --log-level=error \
  --outfile="$js" --allow-overwrite
rm -rf "$out/pkg/snippets"
node -e '
const fs = require("fs");
const file = process.argv[1];
const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
pkg.files = pkg.files.filter((f) => f !== "snippets");
pkg.sideEffects = false;
fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
' "$out/pkg/package.json"
(cd "$out/pkg" && npm pack --silent --pack-destination .. >/dev/null)
size() { printf '%-28s %8d bytes raw, %7d gzipped\n' "$(basename "$1")" "$(wc -c <"$1")" "$(gzip -9c "$1" | wc -c)"; }
size "$out/pkg/alga_storage_web_bg.wasm"
size "$out/pkg/alga_storage_web.js"
size "$out/pkg/alga_storage_web.d.ts"
gz() { gzip -9c "$1" | wc -c; }
total=$(( $(gz "$out/pkg/alga_storage_web_bg.wasm") + $(gz "$out/pkg/alga_storage_web.js") ))
awk -v t="$total" 'BEGIN { printf "what a page downloads: wasm + js = %d bytes gzipped (%.1f KiB)\n", t, t / 1024 }'
ls "$out"/alga-storage-web-*.tgz
