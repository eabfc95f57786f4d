// The browser SDK's exchanges with the storage server: the I/O and the iteration protocols, in
// JavaScript, around decisions made in Rust (sdk-web/src/transport.rs): a `call` says what to
// send (`call.request()`) and what every answer and failure means (`call.finish(…)`,
// `call.fail(…)`); a `watch` says where to resume and what each chunk of its stream yields.
//
// `conn` is `{ base, token }`: the base URL and the bearer token, or a function giving it (or a
// promise of it), asked before every exchange and once more after a 401.
//
// A watch's Server-Sent Events are parsed by `eventsource-parser` (npm, MIT), vendored byte for
// byte in ./vendor (scripts/web-package.sh checks it against the pinned package).

import { createParser } from "./vendor/eventsource-parser/parse.js";

// One exchange: resolves to what `call.finish` makes of the answer, rejects with a StorageError.
export async function exchange(conn, call) {
  const q = call.request();
  for (let retried = false; ; retried = true) {
    let token = conn.token;
    if (typeof token === "function") {
      try {
        token = await token();
      } catch (e) {
        throw call.fail("token", e);
      }
      if (typeof token !== "string" || token === "") throw call.fail("token", undefined);
    }
    const headers = [["authorization", `Bearer ${token}`], ...q.headers];
    const timer = q.timeoutMs > 0 ? AbortSignal.timeout(q.timeoutMs) : undefined;
    const signal = q.signal && timer ? AbortSignal.any([q.signal, timer]) : q.signal || timer;
    let request;
    try {
      request = new Request(conn.base + q.path, { method: q.method, headers, body: q.body, signal });
    } catch (e) {
      // The browser refuses to build it: a URL or a header it cannot send.
      throw call.fail("request", String(e));
    }
    let res, body;
    try {
      res = await fetch(request);
      if (!(q.stream && res.ok)) body = await res.text();
    } catch (e) {
      const kind = q.signal?.aborted ? "aborted" : timer?.aborted ? "timeout" : "network";
      throw call.fail(kind, String(e));
    }
    if (res.status === 401 && !retried && typeof conn.token === "function") continue;
    return call.finish(res.status, res.headers.get("etag") ?? undefined, body, res.body);
  }
}

// `listAll`: every item of every page; `call` asks for the first page, and `call.finish` gives
// `{ items, next }` (`next` the call of the next page, if any).
export async function* walk(conn, call, invalid) {
  if (invalid) throw invalid;
  while (call) {
    const page = await exchange(conn, call);
    yield* page.items;
    call = page.next;
  }
}

// `watch`: reconnects after a dropped connection or a server that cut a slow reader off
// (250 ms, doubling with each failure in a row, at most 5 s), resuming after the last event
// yielded; `w.take(type, id, data)` gives what an event yields: `undefined` for nothing, `null`
// for "connect again now" (the token expired: a provider gives a fresh one), and throws an
// error the server sent.
// `return()` (what `break` calls) ends it at once, even while it waits for a change.
export function watch(conn, w, signal, invalid) {
  const stop = new AbortController();
  const until = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  const events = follow(conn, w, until, invalid);
  return {
    next: () => events.next(),
    return(value) {
      stop.abort();
      return events.return(value);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

async function* follow(conn, w, until, invalid) {
  if (invalid) throw invalid;
  let failures = 0;
  while (!until.aborted) {
    const mine = new AbortController();
    const both = AbortSignal.any([until, mine.signal]);
    try {
      let stream;
      try {
        stream = await exchange(conn, w.connect(both));
      } catch (e) {
        if (until.aborted) return;
        if (!w.retryable(e)) throw e;
        await pause(failures++, until);
        continue;
      }
      const reader = stream.getReader();
      const text = new TextDecoder();
      const events = [];
      const parser = createParser({ onEvent: (e) => events.push(e) });
      let renew = false;
      while (!renew) {
        let chunk;
        try {
          chunk = await reader.read();
        } catch {
          break;
        }
        if (chunk.done) break;
        parser.feed(text.decode(chunk.value, { stream: true }));
        for (const e of events.splice(0)) {
          const value = w.take(e.event, e.id, e.data);
          if (value === null) {
            renew = true;
            break;
          }
          if (value === undefined) continue;
          failures = 0;
          yield value;
        }
      }
      if (!renew && !until.aborted) await pause(failures++, until);
    } finally {
      mine.abort();
    }
  }
}

// Waits before reconnecting, or until `until` aborts.
function pause(failures, until) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.min(250 * 2 ** Math.min(failures, 5), 5000));
    until.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
