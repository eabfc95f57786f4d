// Runs the seed's own TypeScript client (patchStorage.ts, unchanged) against a live server:
// create, update, and a real conflict. Needs BASE and JWT in the environment.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import ts from 'typescript';

const { BASE, JWT } = process.env;
assert.ok(BASE && JWT, 'BASE and JWT must be set');
const source = readFileSync(new URL('./patchStorage.ts', import.meta.url), 'utf8');
const js = ts.transpileModule(source, {
  compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
}).outputText;
const { patchStorage } = await import(`data:text/javascript;base64,${Buffer.from(js).toString('base64')}`);

// The client uses page-relative URLs, as in the browser page it was written for: resolve them
// against the server, as the page's origin would.
const nodeFetch = globalThis.fetch;
globalThis.fetch = (url, init) => nodeFetch(new URL(url, BASE), init);

const ns = 'seedts';
const created = await patchStorage(ns, [{ op: 'set', key: 'foo', value: 'bar' }], JWT, 'seed-ts');
assert.match(created.etag, /^"\d+"$/);
assert.deepEqual(created.body, { foo: 'bar' });

const updated = await patchStorage(ns, [{ op: 'set', key: 'foo', value: 'baz' }], JWT, 'seed-ts');
assert.notEqual(updated.etag, created.etag);
assert.deepEqual(updated.body, { foo: 'baz' });

// A conflict: another writer commits between the client's GET and its PATCH.
let raced = false;
globalThis.fetch = async (url, init) => {
  const res = await nodeFetch(new URL(url, BASE), init);
  if (!raced && !init?.method) {
    raced = true;
    const other = await nodeFetch(new URL(url, BASE), {
      method: 'PATCH',
      headers: {
        Authorization: `Bearer ${JWT}`,
        'Content-Type': 'application/json',
        'If-Match': res.headers.get('ETag'),
        'X-Thesara-App-Id': 'other-tab',
      },
      body: JSON.stringify([{ op: 'set', key: 'foo', value: 'theirs' }]),
    });
    assert.equal(other.status, 200);
  }
  return res;
};
await assert.rejects(
  patchStorage(ns, [{ op: 'set', key: 'foo', value: 'mine' }], JWT, 'seed-ts'),
  /^Error: Conflict; current ETag="\d+"$/,
);
globalThis.fetch = (url, init) => nodeFetch(new URL(url, BASE), init);
const final = await (await fetch(`/api/storage?ns=${ns}`, { headers: { Authorization: `Bearer ${JWT}` } })).json();
assert.deepEqual(final, { foo: 'theirs' }, 'the losing PATCH wrote nothing');
console.log('seed 003 patchStorage (TypeScript): create, update and conflict as the seed describes');
