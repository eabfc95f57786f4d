// What a TypeScript user of alga-storage-web writes, checked with `tsc --strict` against the
// package's generated declarations (`npm run typecheck`; the test suite runs it). Each
// `@ts-expect-error` line must stay an error: the types refuse those mistakes.
import init, {
  StorageClient,
  isStorageError,
  type ErrorCode,
  type ListItem,
  type JsonValue,
  type NamespaceSnapshot,
  type AtomicResponse,
  type PutResponse,
  type StorageRecord,
  type ChangesResponse,
  type Change,
} from "alga-storage-web";

export async function example(signal: AbortSignal): Promise<void> {
  await init();
  const client = new StorageClient({
    baseUrl: "https://storage.example.com",
    token: async () => "token",
    timeoutMs: 5_000,
    appId: "notes",
  });
  const put: PutResponse = await client.put("notes", "n1", { title: "a", tags: ["x"] }, {
    metadata: { kind: "memo" },
    ttlSeconds: 3_600,
    ifRevision: 0,
    signal,
  });
  const revision: number = put.revision;
  const expires: string | null = put.ttlExpiresAt;

  const record: StorageRecord<JsonValue> | null = await client.get("notes", "n1", { ifRevision: revision });
  if (record) {
    const created: string = record.createdAt;
    console.log(created, record.metadata["kind"], expires);
  }
  await client.delete("notes", "n1", { ifRevision: 2 });

  const page = await client.list("notes", { keyPrefix: "n", limit: 50, includeValues: true });
  const next: string | null = page.nextCursor;
  for await (const item of client.listAll("notes", { cursor: next ?? undefined, metadata: { kind: "memo" } })) {
    const typed: ListItem<JsonValue> = item;
    console.log(typed.key, typed.value);
  }
  const bulk = await client.bulkPut("notes", [{ key: "a", value: 1 }, { key: "b", value: null, ttlSeconds: 60 }]);
  console.log(bulk.items[0].revision);

  const many = await client.getMany("notes", ["a", "b"]);
  console.log(many[0]?.revision, many[1] === null);
  const visits: number = await client.increment("stats", "visits", 1);
  const done: AtomicResponse = await client
    .atomic("notes")
    .check("a", 2)
    .put("c", { text: "x" }, { ttlSeconds: 60 })
    .delete("b")
    .increment("count", 1)
    .commit({ timeoutMs: 5000 });
  const putRevision: number | null = done.results[0].revision;
  console.log(visits, putRevision, done.results[3].value);

  const feed: ChangesResponse = await client.changes("notes", { after: 0, limit: 10, keyPrefix: "n" });
  const first: Change | undefined = feed.changes[0];
  console.log(feed.nextAfter, feed.reset === true, first?.seq, first?.op === "delete", first?.revision);
  const stop = new AbortController();
  for await (const event of client.watch("notes", { after: feed.nextAfter, includeValues: true, signal: stop.signal })) {
    if (event.type === "reset") console.log(event.nextAfter);
    else console.log(event.seq, event.key, event.op, event.revision, event.expired, event.value);
    stop.abort();
  }
  // @ts-expect-error: a watch has no page size
  client.watch("notes", { limit: 5 });

  const snap: NamespaceSnapshot = await client.snapshot("notes");
  const patched = await client.patch("notes", [{ op: "set", key: "a", value: 2 }, { op: "del", key: "b" }], snap.etag);
  console.log(patched.created, patched.data["a"]);

  try {
    await client.put("notes", "n1", 1);
  } catch (e) {
    if (isStorageError(e)) {
      const code: ErrorCode = e.code;
      const status: number = e.status;
      if (code === "REVISION_MISMATCH") console.log(status, e.details?.["currentRevision"], e.message);
    }
  }

  // @ts-expect-error: an unknown option
  await client.put("notes", "n1", 1, { ttl: 5 });
  // @ts-expect-error: values are JSON
  await client.put("notes", "n1", () => 1);
  // @ts-expect-error: a patch op is set or del
  await client.patch("notes", [{ op: "add", key: "a" }], snap.etag);
  // @ts-expect-error: an atomic put takes metadata and ttlSeconds only
  client.atomic("notes").put("c", 1, { ifRevision: 1 });
  // @ts-expect-error: not an error code
  const wrong: ErrorCode = "NOPE";
  console.log(wrong);
}
