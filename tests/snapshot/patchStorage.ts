// Verbatim from seed 003 ("Example Client (TypeScript)"); do not edit: the test proves
// that this existing client works against the server unchanged.
export async function patchStorage(ns: string, ops: any[], jwt: string, appId = 'app') {
  const base = `/api/storage?ns=${encodeURIComponent(ns)}`;
  const g = await fetch(base, { headers: { Authorization: `Bearer ${jwt}` } });
  const etag = g.headers.get('ETag') ?? '"0"';
  const r = await fetch(base, {
    method: 'PATCH',
    headers: {
      Authorization: `Bearer ${jwt}`,
      'Content-Type': 'application/json',
      'If-Match': etag,
      'X-Thesara-App-Id': appId,
    },
    body: JSON.stringify(ops),
  });
  if (r.status === 412) {
    const current = r.headers.get('ETag');
    throw new Error(`Conflict; current ETag=${current}`);
  }
  if (!r.ok) throw new Error(`PATCH failed: ${r.status}`);
  return { etag: r.headers.get('ETag'), body: await r.json() };
}
