// `npm run build`: the notes app bundled by Vite into dist/ (what most users ship), with the
// alga-storage-web package resolved from node_modules and its .wasm emitted as an asset.
// `config.js` stays a runtime import: serve.mjs writes it per origin.
import { defineConfig } from "vite";

export default defineConfig({
  root: "app",
  base: "./",
  logLevel: "warn",
  build: {
    outDir: "../dist",
    emptyOutDir: true,
    // The app awaits at top level (ES2022), as every browser that runs WebAssembly does.
    target: "es2022",
    rollupOptions: { external: [/\/config\.js$/] },
  },
});
