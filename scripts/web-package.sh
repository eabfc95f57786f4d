#!/usr/bin/env bash
# Builds the browser SDK's npm package, as it would be published:
#
#   ./scripts/web-package.sh      # → target/web-pkg/alga-storage-web-<version>.tgz
#
# wasm-pack builds sdk-web with the size-first `web` profile for `--target web` (an ES module
# that loads its .wasm with `new URL(…, import.meta.url)`: browsers take it as is, and Vite,
# webpack 5, Rollup and esbuild bundle it, so one target serves both), using wasm-bindgen-cli
# from PATH (scripts/test.sh installs it from crates.io; nothing is downloaded). Binaryen's
# `wasm-opt` then optimises the module (the npm build of Binaryen) and gives its imports and
# exports short names (sdk-web/tools/short-names.mjs gives the glue the same), and esbuild makes
# wasm-bindgen's JavaScript glue and its snippets (sdk-web/js, the inline ones) one minified
# module (all pinned in sdk-web/tools and installed from the registry on first use). Node.js
# instantiates the result and makes one call, `npm pack` makes the tarball a user installs, and
# the sizes are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/web-pkg
wasm_opt=sdk-web/tools/node_modules/.bin/wasm-opt
esbuild=sdk-web/tools/node_modules/.bin/esbuild
vendored=sdk-web/tools/node_modules/eventsource-parser
if [ ! -x "$wasm_opt" ] || [ ! -x "$esbuild" ] || [ ! -f "$vendored/package.json" ]; then
  echo "web-package: installing Binaryen's wasm-opt, esbuild and eventsource-parser (npm, sdk-web/tools)" >&2
  npm ci --prefix sdk-web/tools --no-audit --no-fund --loglevel=error >/dev/null
fi
# sdk-web/js/transport.js parses a watch's stream with eventsource-parser, vendored in
# sdk-web/js/vendor (the browser tests load the snippets without a bundler, so the package
# cannot be imported by name): the copy must be the pinned package's files, byte for byte.
for f in dist/parse.js dist/errors.js LICENSE; do
  cmp -s "$vendored/$f" "sdk-web/js/vendor/eventsource-parser/$(basename "$f")" || {
    echo "web-package: sdk-web/js/vendor/eventsource-parser/$(basename "$f") is not $vendored/$f" >&2
    exit 1
  }
done
rm -rf "$out/pkg"
CARGO_TARGET_DIR="$PWD/target/wasm" wasm-pack --quiet build sdk-web \
  --profile web --target web --out-dir "$PWD/$out/pkg" --no-gitignore
# Binaryen's -O3 without its inlining: measured on this module (2026-11-30), -O3 is 2.5 % smaller
# gzipped than -O1, and every setting that inlines (-O2/-O3/-Os/-Oz as they come) makes the raw
# module smaller but the gzipped one larger. --low-memory-unused lets it fold address arithmetic
# into loads and stores (Rust puts its stack there: the first KiB is reached only by a stack
# about to overflow). No --all-features: the features are the ones rustc wrote in the module
# (read before --strip-target-features drops the section), so no newer encoding sneaks in (with
# --all-features Binaryen wrote GC-only `ref.null noextern`, which browsers before WasmGC, Safari
# before 18.2 among them, refuse). It also drops the names section and what browsers ignore, and
# gives every import and export a one- or two-letter name (the map goes to names.json);
# sdk-web/tools/short-names.mjs gives the glue the same names.
wasm="$out/pkg/alga_storage_web_bg.wasm"
"$wasm_opt" -O3 -ocimfs=0 -aimfs=0 -fimfs=0 --low-memory-unused --converge "$wasm" -o "$wasm"
"$wasm_opt" --strip-debug --strip-producers --strip-target-features \
  --minify-imports-and-exports-and-modules "$wasm" -o "$wasm" >"$out/names.json"
js="$out/pkg/alga_storage_web.js"
node sdk-web/tools/short-names.mjs "$out/names.json" "$js" "$out/pkg/alga_storage_web.d.ts"
# One module a page downloads: the glue with its snippets bundled in, minified. The doc comments
# stay in the .d.ts, where editors read them. `new URL("….wasm", import.meta.url)` is kept as
# written, so browsers and bundlers find the module as before.
"$esbuild" "$js" --bundle --format=esm --minify --legal-comments=none --log-level=error \
  --outfile="$js" --allow-overwrite
rm -rf "$out/pkg/snippets"
# The bundle holds eventsource-parser's code (MIT): its licence travels with the package.
cp sdk-web/js/vendor/eventsource-parser/LICENSE "$out/pkg/LICENSE-eventsource-parser"
node -e '
const fs = require("fs");
const file = process.argv[1];
const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
pkg.files = pkg.files.filter((f) => f !== "snippets").concat("LICENSE-eventsource-parser");
pkg.sideEffects = false;
fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
' "$out/pkg/package.json"
# The module and its glue fit together (every import has its function, every export its user):
# Node.js instantiates them and a call the SDK refuses before any request rejects as it should.
node --input-type=module -e '
const dir = process.argv[1];
const sdk = await import(`${dir}/alga_storage_web.js`);
const { readFileSync } = await import("node:fs");
sdk.initSync({ module: readFileSync(`${dir}/alga_storage_web_bg.wasm`) });
const client = new sdk.StorageClient({ baseUrl: "http://127.0.0.1:9", token: "t" });
const error = await client.put("", "k", 1).then(() => null, (e) => e);
if (!sdk.isStorageError(error) || error.code !== "VALIDATION_FAILED") {
  console.error("web-package: the built package does not work:", error);
  process.exit(1);
}
' "$PWD/$out/pkg"
(cd "$out/pkg" && npm pack --silent --pack-destination .. >/dev/null)
size() { printf '%-28s %8d bytes raw, %7d gzipped\n' "$(basename "$1")" "$(wc -c <"$1")" "$(gzip -9c "$1" | wc -c)"; }
size "$out/pkg/alga_storage_web_bg.wasm"
size "$out/pkg/alga_storage_web.js"
size "$out/pkg/alga_storage_web.d.ts"
gz() { gzip -9c "$1" | wc -c; }
total=$(( $(gz "$out/pkg/alga_storage_web_bg.wasm") + $(gz "$out/pkg/alga_storage_web.js") ))
awk -v t="$total" 'BEGIN { printf "what a page downloads: wasm + js = %d bytes gzipped (%.1f KiB)\n", t, t / 1024 }'
ls "$out"/alga-storage-web-*.tgz
