// The browser SDK's cost per call, measured in headless Chromium: N sequential `get`s through
// `StorageClient` against N sequential `fetch`es of the same route with the same headers, on one
// page, interleaved in rounds so a noisy machine hits both alike. Prints figures; asserts nothing.
//
//   STORAGE_URL=http://127.0.0.1:8787 STORAGE_ADMIN_TOKEN=… node bench.mjs   [N, default 500]
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const storageUrl = (process.env.STORAGE_URL ?? "http://127.0.0.1:8787").replace(/\/$/, "");
const adminToken = process.env.STORAGE_ADMIN_TOKEN;
const n = Number(process.argv[2] ?? 500);
const tenant = crypto.randomUUID();
const install = `bench-${Date.now()}`;

async function admin(method, path, body) {
  const res = await fetch(`${storageUrl}/api/admin/tenants/${tenant}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}
await admin("PUT", `/installs/${install}`, {
  extensionId: "bench",
  grants: [{ namespace: "bench", access: ["read", "write"] }],
});
const { token } = await admin("POST", `/installs/${install}/tokens`, { ttlSeconds: 600 });

// PKG=dir serves another build of the package (e.g. target/web-pkg/pkg) to compare two builds.
const pkg = process.env.PKG ?? join(here, "node_modules/alga-storage-web");
const server = createServer(async (req, res) => {
  if (req.url === "/") {
    res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>bench</title>");
    return;
  }
  try {
    const body = await readFile(join(pkg, req.url.slice(1)));
    const type = req.url.endsWith(".wasm") ? "application/wasm" : "text/javascript";
    res.writeHead(200, { "content-type": type }).end(body);
  } catch {
    res.writeHead(404).end();
  }
}).listen(0, "127.0.0.1");
await new Promise((r) => server.once("listening", r));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  const page = await browser.newPage();
  await page.goto(`${origin}/`);
  const result = await page.evaluate(
    async ({ storageUrl, token, n }) => {
      const t0 = performance.now();
      const sdk = await import("/alga_storage_web.js");
      await sdk.default();
      const initMs = performance.now() - t0;
      const client = new sdk.StorageClient({ baseUrl: storageUrl, token });
      const value = { title: "bench", text: "x".repeat(200), tags: ["a", "b", "c"] };
      await client.put("bench", "k", value);
      const url = `${storageUrl}/api/ext-storage/bench/k`;
      const headers = { authorization: `Bearer ${token}` };
      const viaSdk = async () => client.get("bench", "k");
      const viaFetch = async () => (await fetch(url, { headers })).json();
      for (let i = 0; i < 50; i++) { await viaSdk(); await viaFetch(); }
      const times = { sdk: 0, fetch: 0 };
      const rounds = 10;
      for (let r = 0; r < rounds; r++) {
        for (const [name, call] of [["sdk", viaSdk], ["fetch", viaFetch]]) {
          const start = performance.now();
          for (let i = 0; i < n / rounds; i++) await call();
          times[name] += performance.now() - start;
        }
      }
      // A put of a bigger value (300 fields, ~20 KB of JSON): the value read and checked in
      // the browser, against a raw fetch PUT of the same body.
      const big = Object.fromEntries(
        Array.from({ length: 300 }, (_, i) => [`field${i}`, { n: i, text: "y".repeat(50), on: i % 2 === 0 }]),
      );
      const putSdk = async () => client.put("bench", "big", big);
      const putFetch = async () =>
        (await fetch(url.replace(/k$/, "big"), {
          method: "PUT",
          headers: { ...headers, "content-type": "application/json" },
          body: JSON.stringify({ value: big }),
        })).json();
      const puts = { sdk: 0, fetch: 0 };
      const m = Math.max(10, n / 5);
      for (let i = 0; i < 10; i++) { await putSdk(); await putFetch(); }
      for (let r = 0; r < rounds; r++) {
        for (const [name, call] of [["sdk", putSdk], ["fetch", putFetch]]) {
          const start = performance.now();
          for (let i = 0; i < m / rounds; i++) await call();
          puts[name] += performance.now() - start;
        }
      }
      // Validation alone: a call rejected in the browser before any request.
      const start = performance.now();
      for (let i = 0; i < n; i++) await client.get("Bad NS", "k").catch(() => {});
      const rejectUs = ((performance.now() - start) / n) * 1000;
      return {
        initMs,
        sdkUs: (times.sdk / n) * 1000,
        fetchUs: (times.fetch / n) * 1000,
        putSdkUs: (puts.sdk / m) * 1000,
        putFetchUs: (puts.fetch / m) * 1000,
        rejectUs,
      };
    },
    { storageUrl, token, n },
  );
  const f = (x) => x.toFixed(0).padStart(6);
  console.log(`browser SDK, ${n} sequential gets in headless Chromium against ${storageUrl}`);
  console.log(`  init (fetch + compile the wasm):   ${result.initMs.toFixed(1)} ms`);
  console.log(`  fetch() + res.json():            ${f(result.fetchUs)} µs/call`);
  console.log(`  StorageClient.get():             ${f(result.sdkUs)} µs/call (x${(result.sdkUs / result.fetchUs).toFixed(2)})`);
  console.log(`  fetch() PUT of a 20 KB value:    ${f(result.putFetchUs)} µs/call`);
  console.log(`  StorageClient.put() of it:       ${f(result.putSdkUs)} µs/call (x${(result.putSdkUs / result.putFetchUs).toFixed(2)})`);
  console.log(`  rejected in the browser:         ${f(result.rejectUs)} µs/call (no request)`);
} finally {
  await browser.close();
  server.close();
}
