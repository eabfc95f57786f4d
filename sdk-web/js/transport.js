// One HTTP exchange for the browser SDK (see sdk-web/src/transport.rs, which decides everything
// else: the token, the retry after a 401, and what every answer and failure means).
//
// `fetch` with the caller's signal and the timeout combined. Resolves to the answer
// `{ status, etag, body }` (for a successful stream `{ status, etag, stream }`, the body unread),
// or, when no answer came, to `{ failure, message }`: `failure` is "request" (the browser
// refused to build it: a URL or header it cannot send), "aborted" (the caller's signal),
// "timeout" or "network", `message` what the browser said (e.g. "TypeError: Failed to
// fetch"). It never rejects.
export async function fetchOnce(url, method, headers, body, signal, timeoutMs, stream) {
  const timer = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
  const both = signal && timer ? AbortSignal.any([signal, timer]) : signal || timer;
  let request;
  try {
    request = new Request(url, { method, headers, body, signal: both });
  } catch (e) {
    return { failure: "request", message: String(e) };
  }
  try {
    const res = await fetch(request);
    const etag = res.headers.get("etag") ?? undefined;
    if (stream && res.ok) return { status: res.status, etag, stream: res.body };
    return { status: res.status, etag, body: await res.text() };
  } catch (e) {
    const failure = signal?.aborted ? "aborted" : timer?.aborted ? "timeout" : "network";
    return { failure, message: String(e) };
  }
}
