// Serves the example on two origins, as a real deployment would:
//
// - the host application (HOST_PORT, default 5180): its page embeds the notes app in an iframe,
//   and its backend mints a storage token for the app (here with the storage admin API, as in
//   dev mode; a real host would mint it for the signed-in user);
// - the notes app (APP_PORT, default 5181): static files plus the alga-storage-web package
//   installed from npm (node_modules), which the app imports by name through an import map.
//
// Environment: STORAGE_URL (default http://127.0.0.1:8787), STORAGE_ADMIN_TOKEN (required),
// STORAGE_TENANT and STORAGE_INSTALL (the install the app runs as; provisioned at start with
// read/write on the "notes" namespace), APP_DIR (default "app": the sources as plain ES modules,
// importing the package through an import map; "dist": the bundle `npm run build` makes).
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const storageUrl = (process.env.STORAGE_URL ?? "http://127.0.0.1:8787").replace(/\/$/, "");
const adminToken = process.env.STORAGE_ADMIN_TOKEN;
const tenant = process.env.STORAGE_TENANT ?? "00000000-0000-4000-8000-000000000001";
const install = process.env.STORAGE_INSTALL ?? "notes-example";
const hostPort = Number(process.env.HOST_PORT ?? 5180);
const appPort = Number(process.env.APP_PORT ?? 5181);
const appOrigin = `http://127.0.0.1:${appPort}`;
const appDir = process.env.APP_DIR ?? "app";
const hostOrigin = `http://127.0.0.1:${hostPort}`;

if (!adminToken) {
  console.error("STORAGE_ADMIN_TOKEN is required (the storage server prints it in dev mode)");
  process.exit(2);
}

const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
};

async function admin(method, path, body) {
  const res = await fetch(`${storageUrl}/api/admin/tenants/${tenant}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`admin ${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

async function serveFile(res, root, urlPath) {
  const path = normalize(join(root, decodeURIComponent(urlPath.split("?")[0])));
  if (!path.startsWith(root)) {
    res.writeHead(403).end();
    return;
  }
  try {
    const file = path.endsWith("/") ? join(path, "index.html") : path;
    const body = await readFile(file);
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404).end("not found");
  }
}

// `/config.js` on each origin: the other origin, which its postMessages must name and check.
function serveConfig(res, values) {
  res.writeHead(200, { "content-type": types[".js"] });
  res.end(
    Object.entries(values)
      .map(([name, value]) => `export const ${name} = ${JSON.stringify(value)};\n`)
      .join(""),
  );
}

await admin("PUT", `/installs/${install}`, {
  extensionId: "notes-example",
  grants: [{ namespace: "notes", access: ["read", "write"] }],
});

const host = createServer(async (req, res) => {
  if (req.method === "POST" && req.url === "/token") {
    try {
      const { token, expiresAt } = await admin("POST", `/installs/${install}/tokens`, {
        ttlSeconds: 600,
      });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ token, expiresAt, baseUrl: storageUrl }));
    } catch (e) {
      res.writeHead(502, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: String(e) }));
    }
    return;
  }
  if (req.url === "/config.js") return serveConfig(res, { appOrigin });
  await serveFile(res, join(here, "host"), req.url);
});

const app = createServer(async (req, res) => {
  if (req.url.startsWith("/node_modules/")) {
    await serveFile(res, join(here, "node_modules"), req.url.slice("/node_modules".length));
    return;
  }
  if (req.url === "/config.js") return serveConfig(res, { hostOrigin });
  await serveFile(res, join(here, appDir), req.url);
});

host.listen(hostPort, "127.0.0.1");
app.listen(appPort, "127.0.0.1");
console.log(`host page: ${hostOrigin}/  (embeds the notes app from ${appOrigin}/)`);
