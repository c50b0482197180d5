// The capture view in headless Chromium, against web/dist (built by `npm run build`, as
// tests/e2e.test.mjs): a capture dropped on the input, its sessions and problems listed, frames
// opened in the hex view.
// Screenshot in web/test-artifacts/06-capture.png.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "./chromium.mjs";
import { serve } from "./serve.mjs";

const WEB = join(dirname(fileURLToPath(import.meta.url)), "..");
const DIST = join(WEB, "dist");
const ARTIFACTS = join(WEB, "test-artifacts");

let server, base, context;

before(async () => {
  assert.ok(existsSync(join(DIST, "index.html")), "web/dist is missing: run `npm --prefix web run build` first");
  mkdirSync(ARTIFACTS, { recursive: true });
  ({ server, url: base } = await serve(DIST));
  context = await launch({});
  await context.route("**/*", (route) =>
    new URL(route.request().url()).hostname === "127.0.0.1" ? route.continue() : route.abort(),
  );
});

after(async () => {
  await context?.dispose();
  server?.close();
});

async function open(fragment = "") {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && !/Failed to load resource|ERR_FAILED/.test(m.text()) && errors.push(m.text()));
  await page.goto(base + fragment);
  await page.waitForSelector("#packet");
  return { page, errors };
}

describe("capture view", () => {
  // A capture dropped on the input (drag and drop, as a user does): its sessions are listed
  // with their problems, and a device frame opens in the annotated hex view. The capture is
  // core/tests/captures/problems.pcap (written by core/tests/capture.rs): a short ack and a
  // resent frame, a session without problems, a UDP datagram never acked.
  test("a dropped capture lists its sessions and problems; a frame opens in the hex view", async () => {
    const { page, errors } = await open("#hex=");
    const bytes = [...readFileSync(join(WEB, "..", "core", "tests", "captures", "problems.pcap"))];
    const dataTransfer = await page.evaluateHandle((bytes) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], "problems.pcap", { type: "application/vnd.tcpdump.pcap" }));
      return dt;
    }, bytes);
    await page.dispatchEvent("section.input", "drop", { dataTransfer });
    await page.locator("#capture").waitFor();
    assert.match(await page.textContent("#capture h2"), /problems\.pcap: 3 sessions, 2 with problems/);
    assert.equal(await page.locator("#capture details.session").count(), 3);
    const kinds = await page.$$eval("#capture li.problem", (els) => els.map((e) => e.dataset.kind));
    assert.deepEqual(kinds, ["ack_count_mismatch", "frame_resent", "missing_ack"]);
    assert.match(await page.textContent('#capture li.problem[data-kind="ack_count_mismatch"]'), /the server acked 1 records .* which has 2: the device sends them again/);
    // The first packet of the first session with a problem is open in the hex view already.
    await page.locator('article.packet[data-kind="imei"]').waitFor();
    // Open the resent frame from its problem: the hex view and the records table show it.
    await page.click('#capture li.problem[data-kind="frame_resent"] button.open-packet');
    await page.locator('article.packet[data-kind="avl"][data-codec="8"]').waitFor();
    assert.match(await page.textContent(".input .source"), /problems\.pcap, session #1, packet \[2\]/);
    assert.equal(await page.locator("tr.record").count(), 2);
    assert.ok((await page.locator(".seg[data-seg]").count()) > 20, "every byte of the frame is labelled");
    // The UDP session (open: it has a problem) has its datagram open too, with its UDP ack.
    await page.click('#capture details.session[data-session="2"] tr.device button.open-packet');
    await page.locator("code.ack-hex", { hasText: "0005cafe010501" }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, "06-capture.png"), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  });

});
