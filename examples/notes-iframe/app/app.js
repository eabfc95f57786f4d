// The notes extension: an iframe app on the alga-storage-web package. It gets its storage token
// from the host page (postMessage), keeps notes in the "notes" namespace, edits them with a
// revision guard, so two people editing the same note never overwrite each other silently, and
// follows the namespace's change feed, so a change made anywhere shows up at once.
import init, { StorageClient, isStorageError } from "alga-storage-web";
import { hostOrigin } from "./config.js";

const NS = "notes";
const statusLine = document.getElementById("status");
const list = document.getElementById("notes");
const template = document.getElementById("note");

function status(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

// Token handshake with the host page: ask, and wait for the answer with the same id.
let requests = 0;
const pending = new Map();
window.addEventListener("message", (event) => {
  if (event.origin !== hostOrigin || event.data?.type !== "alga-storage:token") return;
  pending.get(event.data.id)?.(event.data);
  pending.delete(event.data.id);
});
function requestToken() {
  const id = ++requests;
  return new Promise((resolve) => {
    pending.set(id, resolve);
    window.parent.postMessage({ type: "alga-storage:token-request", id }, hostOrigin);
  });
}

await init();
let grant = await requestToken();
const client = new StorageClient({
  baseUrl: grant.baseUrl,
  // Called before every call: reuse the token until a minute before it expires.
  token: async () => {
    if (Date.parse(grant.expiresAt) - Date.now() < 60_000) grant = await requestToken();
    return grant.token;
  },
  timeoutMs: 10_000,
});

function describe(error) {
  return isStorageError(error) ? `${error.code}: ${error.message}` : String(error);
}

function render(record) {
  let node = list.querySelector(`[data-key="${CSS.escape(record.key)}"]`);
  if (!node) {
    node = template.content.firstElementChild.cloneNode(true);
    node.dataset.key = record.key;
    wire(node);
    list.append(node);
  }
  node.note = record;
  node.querySelector(".title").textContent = record.value.title;
  node.querySelector(".text").textContent = record.value.text;
  node.querySelector(".revision").textContent = `revision ${record.revision}`;
  return node;
}

function showConflict(node, error) {
  const conflict = node.querySelector(".conflict");
  const now = error.details?.currentRevision;
  node.querySelector(".conflict-text").textContent =
    `Conflict: someone else changed this note (now revision ${now}). ` +
    "Your text is kept here; load their version to merge, then save again.";
  conflict.hidden = false;
}

function wire(node) {
  const editor = node.querySelector(".editor");
  const view = node.querySelector(".view");
  node.querySelector(".edit").addEventListener("click", () => {
    editor.elements.text.value = node.note.value.text;
    editor.hidden = false;
    view.hidden = true;
  });
  node.querySelector(".cancel").addEventListener("click", () => {
    editor.hidden = true;
    view.hidden = false;
    node.querySelector(".conflict").hidden = true;
  });
  node.querySelector(".reload").addEventListener("click", async () => {
    const fresh = await client.get(NS, node.note.key);
    if (!fresh) {
      node.remove();
      status("That note was deleted elsewhere.");
      return;
    }
    render({ ...fresh, key: node.note.key });
    node.querySelector(".conflict").hidden = true;
    status(`Loaded revision ${fresh.revision}; your text is still in the editor.`);
  });
  editor.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = { ...node.note.value, text: editor.elements.text.value };
    try {
      const saved = await client.put(NS, node.note.key, value, { ifRevision: node.note.revision });
      render({ ...node.note, value, revision: saved.revision });
      editor.hidden = true;
      view.hidden = false;
      node.querySelector(".conflict").hidden = true;
      status(`Saved "${value.title}" (revision ${saved.revision}).`);
    } catch (error) {
      if (isStorageError(error) && error.code === "REVISION_MISMATCH") {
        showConflict(node, error);
        status("Not saved: the note changed since you opened it.", true);
      } else {
        status(`Not saved: ${describe(error)}`, true);
      }
    }
  });
  node.querySelector(".delete").addEventListener("click", async () => {
    try {
      await client.delete(NS, node.note.key, { ifRevision: node.note.revision });
      node.remove();
      status(`Deleted "${node.note.value.title}".`);
    } catch (error) {
      if (isStorageError(error) && error.code === "NOT_FOUND") {
        node.remove();
        status("That note was already deleted elsewhere.");
      } else if (isStorageError(error) && error.code === "REVISION_MISMATCH") {
        status("Not deleted: the note changed since you loaded it. Refresh first.", true);
      } else {
        status(`Not deleted: ${describe(error)}`, true);
      }
    }
  });
}

async function load() {
  status("Loading…");
  const seen = new Set();
  try {
    for await (const item of client.listAll(NS, { includeValues: true, limit: 50 })) {
      render(item);
      seen.add(item.key);
    }
    for (const node of [...list.children]) if (!seen.has(node.dataset.key)) node.remove();
    status(`${seen.size} note${seen.size === 1 ? "" : "s"}.`);
  } catch (error) {
    status(`Could not load notes: ${describe(error)}`, true);
  }
}

document.getElementById("add").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const value = { title: form.elements.title.value.trim(), text: form.elements.text.value };
  const key = `note-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    const saved = await client.put(NS, key, value, { ifRevision: 0 });
    render({ key, value, revision: saved.revision });
    form.reset();
    status(`Added "${value.title}".`);
  } catch (error) {
    status(`Not added: ${describe(error)}`, true);
  }
});
document.getElementById("refresh").addEventListener("click", load);

// Live updates: a note added, edited or deleted in another tab, by a handler or through another
// server instance appears here without a reload. The watch starts where the feed stands before
// the first load (a position past the latest answers a reset carrying the latest one), so the
// list and the changes after it add up; the SDK reconnects by itself and resumes after the
// last change it gave. A note being edited here is left alone: its save then meets the other
// change as a conflict, as before.
async function follow(after) {
  try {
    for await (const change of client.watch(NS, { after, includeValues: true })) {
      if (change.type === "reset") {
        await load();
        continue;
      }
      const node = list.querySelector(`[data-key="${CSS.escape(change.key)}"]`);
      if (node && !node.querySelector(".editor").hidden) continue;
      if (change.op === "delete") {
        node?.remove();
        continue;
      }
      // Without a value the record has changed again since: a later change carries it.
      if (change.value === undefined || (node && node.note.revision >= change.revision)) continue;
      render({ key: change.key, value: change.value, revision: change.revision });
    }
  } catch (error) {
    status(`Live updates stopped: ${describe(error)}`, true);
  }
}

const { nextAfter: since } = await client.changes(NS, { after: Number.MAX_SAFE_INTEGER });
await load();
follow(since);
document.body.dataset.ready = "true";
