// Gives wasm-bindgen's JavaScript glue the short import and export names Binaryen gave the
// module (`wasm-opt --minify-imports-and-exports-and-modules`, whose map is the first argument):
//
//   node short-names.mjs names.json pkg/alga_storage_web.js pkg/alga_storage_web.d.ts
//
// wasm-bindgen names every import after its Rust path plus a 16-digit hash, and both the module
// and the glue spell each name out: about 2.5 KB of a page's gzipped download. After the rename:
// - each import the glue defines in its own object (`import0`, `name: function`) has its short key,
// - the snippets' functions wasm imports directly (`import1.jsonKind`, …) join that object
//   under their short keys, and the object is the one module Binaryen calls "a",
// - every use of an export (`wasm.name`) and its line in the `InitOutput` type has the short name.
// Anything the glue does not spell as expected stops the build, and scripts/web-package.sh then
// instantiates the result in Node.js: an import left without its function fails there.
import { readFileSync, writeFileSync } from "node:fs";

const [mapFile, jsFile, dtsFile] = process.argv.slice(2);
const map = JSON.parse(readFileSync(mapFile, "utf8"));
let js = readFileSync(jsFile, "utf8");
let dts = readFileSync(dtsFile, "utf8");

function fail(message) {
  console.error(`short-names: ${message}`);
  process.exit(1);
}

// Replaces the one match of `pattern` in `text` (fails on none or several).
function once(text, pattern, replacement, what) {
  const found = text.match(new RegExp(pattern.source, "g")) ?? [];
  if (found.length !== 1) fail(`${what}: expected one match of ${pattern}, found ${found.length}`);
  return text.replace(pattern, replacement);
}

const escape = (name) => name.replace(/[$.]/g, "\\$&");

// The object `__wbg_get_imports` returns: module specifier → the variable holding its imports.
const block = /return \{\s*__proto__: null,((?:\s*"[^"]+": import\d+,)+)\s*\};/;
const returned = js.match(block);
if (!returned) fail("the glue's import object was not found");
const modules = new Map([...returned[1].matchAll(/"([^"]+)": (import\d+)/g)].map((m) => [m[1], m[2]]));
const own = modules.get("./alga_storage_web_bg.js");
if (!own) fail("the glue defines no imports of its own");

const direct = [];
for (const [module, name, short] of map.imports) {
  const holder = modules.get(module);
  if (!holder) fail(`import ${module} ${name}: its module is not in the glue's import object`);
  if (holder === own) {
    js = once(js, new RegExp(`\\b${escape(name)}(?=: function\\()`), short, `import ${name}`);
  } else {
    direct.push(`${short}: ${holder}.${name}`);
  }
}
js = once(
  js,
  block,
  `return { __proto__: null, a: Object.assign(${own}, { ${direct.join(", ")} }) };`,
  "the import object",
);

for (const [name, short] of map.exports) {
  // (Binaryen also renames exports the glue does not use, e.g. `__abort_handler`.)
  js = js.replace(new RegExp(`\\bwasm\\.${escape(name)}\\b`, "g"), `wasm.${short}`);
  dts = dts.replace(new RegExp(`(?<=readonly )${escape(name)}(?=:)`), short);
}
if (/\bwasm\.[A-Za-z_$]{3,}/.test(js)) fail(`an export the module no longer has: ${js.match(/\bwasm\.[A-Za-z_$]{3,}/)[0]}`);

writeFileSync(jsFile, js);
writeFileSync(dtsFile, dts);
