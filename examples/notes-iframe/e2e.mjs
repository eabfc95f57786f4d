// Clicks through the notes example in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core: nothing is downloaded) with two tabs: a note added, edited or deleted in one
// appears in the other without a reload (the change feed), and two tabs saving the same note
// show the conflict (409 REVISION_MISMATCH) to the user, and lose nothing.
//
//   HOST_URL=http://127.0.0.1:5180 SCREENSHOT=conflict.png node e2e.mjs
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const hostUrl = process.env.HOST_URL ?? "http://127.0.0.1:5180";
const screenshot = process.env.SCREENSHOT ?? "notes-conflict.png";
const title = `Groceries ${Date.now()}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});

async function openTab() {
  const page = await browser.newPage({ viewport: { width: 900, height: 800 } });
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(`${hostUrl}/`);
  const app = page.frameLocator("#extension");
  await app.locator("body[data-ready=true]").waitFor({ timeout: 20_000 });
  return { page, app };
}

const step = (text) => console.log(`- ${text}`);

try {
  const a = await openTab();
  step("tab A: the app loaded inside the host page");
  await a.app.locator("#add input[name=title]").fill(title);
  await a.app.locator("#add textarea[name=text]").fill("milk");
  await a.app.locator("#add button[type=submit]").click();
  const noteA = a.app.locator(".note", { hasText: title });
  await noteA.waitFor();
  assert.match(await noteA.locator(".revision").textContent(), /revision 1/);
  step("tab A: added a note (revision 1)");

  const b = await openTab();
  const noteB = b.app.locator(".note", { hasText: title });
  await noteB.waitFor();
  step("tab B: sees the note");

  // Live: a note added and edited in tab A appears in tab B without a reload.
  const liveTitle = `Live ${Date.now()}`;
  await a.app.locator("#add input[name=title]").fill(liveTitle);
  await a.app.locator("#add textarea[name=text]").fill("first");
  await a.app.locator("#add button[type=submit]").click();
  const liveB = b.app.locator(".note", { hasText: liveTitle });
  await liveB.waitFor({ timeout: 5_000 });
  step("tab B: a note added in tab A appeared without a reload");
  const liveA = a.app.locator(".note", { hasText: liveTitle });
  await liveA.locator(".edit").click();
  await liveA.locator(".editor textarea").fill("second");
  await liveA.locator(".save").click();
  await liveB.locator(".text", { hasText: "second" }).waitFor({ timeout: 5_000 });
  assert.match(await liveB.locator(".revision").textContent(), /revision 2/);
  step("tab B: tab A's edit appeared without a reload");

  // Both tabs open the editor on revision 1 (a note being edited is left alone by live updates).
  await noteA.locator(".edit").click();
  await noteB.locator(".edit").click();
  await noteA.locator(".editor textarea").fill("milk, bread");
  await noteA.locator(".save").click();
  await noteA.locator(".revision", { hasText: "revision 2" }).waitFor();
  step("tab A: saved (revision 2)");

  await noteB.locator(".editor textarea").fill("milk, eggs");
  await noteB.locator(".save").click();
  const conflict = noteB.locator(".conflict");
  await conflict.waitFor({ state: "visible" });
  assert.match(await conflict.textContent(), /someone else changed this note \(now revision 2\)/);
  assert.match(await b.app.locator("#status").textContent(), /changed since you opened it/);
  assert.equal(await noteB.locator(".editor textarea").inputValue(), "milk, eggs", "nothing typed is lost");
  await b.page.screenshot({ path: screenshot, fullPage: true });
  step(`tab B: the conflict is shown to the user (screenshot: ${screenshot})`);

  // Tab B loads the other version, keeps its text, merges and saves on the new revision.
  await noteB.locator(".reload").click();
  // (The view under the editor is hidden while editing: wait for its text, not its visibility.)
  await noteB.locator(".revision", { hasText: "revision 2" }).waitFor({ state: "attached" });
  await noteB.locator(".conflict").waitFor({ state: "hidden" });
  assert.equal(await noteB.locator(".editor textarea").inputValue(), "milk, eggs");
  await noteB.locator(".editor textarea").fill("milk, bread, eggs");
  await noteB.locator(".save").click();
  await noteB.locator(".revision", { hasText: "revision 3" }).waitFor();
  assert.equal(await noteB.locator(".text").textContent(), "milk, bread, eggs");
  step("tab B: merged and saved (revision 3)");

  // Tab A sees the merge without a reload (it had cancelled nothing: its editor closed on
  // save); then deletes the note, and it disappears from tab B.
  await noteA.locator(".revision", { hasText: "revision 3" }).waitFor({ timeout: 5_000 });
  assert.equal(await noteA.locator(".text").textContent(), "milk, bread, eggs");
  step("tab A: tab B's merge appeared without a reload");
  await noteA.locator(".delete").click();
  await noteA.waitFor({ state: "detached" });
  await noteB.waitFor({ state: "detached", timeout: 5_000 });
  step("tab A: deleted it; it disappeared from tab B");
  console.log("notes example: ok");
} finally {
  await browser.close();
}
