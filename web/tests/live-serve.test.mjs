// The live view served by `fleetview serve` in headless Chromium, with the API's guards on:
// a bearer token from --token-file (with characters that must be percent-encoded for
// EventSource), a scripted device over TCP, a command sent from the UI and answered by the
// device (same-origin JSON POST), then what a hostile page gets: a cross-site form post and a
// DNS-rebound host name (Chromium's host resolver maps evil.test to 127.0.0.1).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch } from "./chromium.mjs";
import { ARTIFACTS, Device, REPO, startServer, stopServer } from "./fleetview.mjs";

const IMEI = "356307042441013";
const TOKEN = "web+t/k=n&1";
// A Codec 8 frame with one record (the protocol document's example).
const FRAME =
  "000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF";
// Codec 8E with a fix, a beacon, an EYE sensor, fault codes and the serving cell (IOs 21, 205,
// 206, 241), as in core/docs/json-model.md.
const BEACON_IMEI = "356307042441099";
const BEACON_FRAME =
  "000000000000008D8E010000019ADE135400000F1159E020989BEC0070005A0B002A018100070001001504000200CD609100CE0D49000100F10000601A000000030181001B1127E2C56DB5DFFB48D2B060D0F5A71096E000010002C40BE808662C350021011F0001C20F067CD9F4038A2105094559455F434152474F020793FB5D2980115F0119000B50303130312C50303330300100003024";

// Teltonika's documented Codec 12 response example (a getinfo answer), from the core test vectors.
const RESPONSE = JSON.parse(readFileSync(join(REPO, "core/tests/vectors/t07_codec12_getinfo_response.json"), "utf8"));
const RESPONSE_TEXT = RESPONSE.expect[0].messages[0].text;

let server, log, http, tcp, dir, context, device, beaconDevice, hostile;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), "fleetview-web-live-"));
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, `${TOKEN}\n`);
  chmodSync(tokenFile, 0o600);
  const started = await startServer(["--db", join(dir, "db"), "--token-file", tokenFile]);
  ({ server, http, tcp } = started);
  log = started.log;
  device = await Device.login(tcp, IMEI);
  device.write(Buffer.from(FRAME, "hex"));
  assert.equal((await device.read(4)).toString("hex"), "00000001");

  // A device in beacon mode with a fix and its serving cell (the playground's beacons-8e example).
  beaconDevice = await Device.login(tcp, BEACON_IMEI);
  beaconDevice.write(Buffer.from(BEACON_FRAME, "hex"));
  assert.equal((await beaconDevice.read(4)).toString("hex"), "00000001");

  // A page on another origin that posts a form to the API, as an attacker's page would.
  hostile = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end(`<!doctype html><form id=f method=POST enctype="text/plain"
      action="http://127.0.0.1:${http}/api/devices/${IMEI}/commands?access_token=${encodeURIComponent(TOKEN)}">
      <input name='{"text":"cpureset","x":"' value='"}'></form><script>document.getElementById("f").submit()</script>`);
  });
  await new Promise((ok) => hostile.listen(0, "127.0.0.1", ok));

  // DNS rebinding, simulated: the attacker's name resolves to this machine.
  context = await launch({}, ["--host-resolver-rules=MAP evil.test 127.0.0.1"]);
});

after(async () => {
  await context?.dispose();
  device?.socket.destroy();
  beaconDevice?.socket.destroy();
  hostile?.close();
  await stopServer(server && { server });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("live view on fleetview serve", () => {
  test("token, live device, and a command sent from the UI is answered", async () => {
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${http}/`);
    await page.click("#tab-live");
    // 401 → the token form; the token goes to the API as a header and, percent-encoded, to
    // EventSource's query.
    await page.fill('#live input[type="password"]', TOKEN);
    await page.click('#live button[type="submit"]');
    const row = page.locator(`#devices li[data-imei="${IMEI}"]`);
    await row.waitFor({ timeout: 20_000 });
    await row.click();
    await page.fill(".commands input[type=text]", "getinfo");
    await page.click('.commands button[type="submit"]');

    // The device gets the command, answers it; the UI shows the answer (polled or live).
    const head = await device.read(8);
    const body = await device.read(head.readUInt32BE(4) + 4);
    assert.ok(body.includes(Buffer.from("getinfo")), body.toString("hex"));
    device.write(Buffer.from(RESPONSE.hex, "hex"));
    await page.locator(".commands li.command .response", { hasText: RESPONSE_TEXT }).waitFor({ timeout: 20_000 });
    await page.screenshot({ path: join(ARTIFACTS, "06-live-serve-command.png"), fullPage: true });
    await page.close();
  });

  test("the live map names a device's serving cell", async () => {
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${http}/`);
    await page.click("#tab-live");
    await page.fill('#live input[type="password"]', TOKEN);
    await page.click('#live button[type="submit"]');
    await page.locator(`#devices li[data-imei="${BEACON_IMEI}"]`).waitFor({ timeout: 20_000 });
    await page.click(`.leaflet-marker-icon[alt="${BEACON_IMEI}"]`);
    const popup = page.locator(".leaflet-popup");
    await popup.waitFor();
    assert.match(await popup.textContent(), /Serving cell: MCC 246 · MNC 02 · LAC 3401 · cell 24721 · signal 4\/5/);
    await page.screenshot({ path: join(ARTIFACTS, "07-live-serving-cell.png"), fullPage: true });
    await page.close();
  });

  test("a cross-site form post is refused and queues nothing", async () => {
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${hostile.address().port}/`);
    // The form navigates to the API's answer.
    await page.waitForURL(/\/api\/devices\//, { timeout: 20_000 });
    const answer = JSON.parse(await page.textContent("body"));
    assert.equal(answer.error.kind, "cross_origin");
    assert.match(log(), /refused: CrossOrigin \{ origin: "http:\/\/127\.0\.0\.1:\d+"/);
    // Only the UI's command exists.
    const auth = { headers: { Authorization: `Bearer ${TOKEN}` } };
    assert.equal((await fetch(`http://127.0.0.1:${http}/api/commands/1`, auth)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${http}/api/commands/2`, auth)).status, 404);
    await page.close();
  });

  test("a rebound host name cannot read the API or load the UI", async () => {
    const page = await context.newPage();
    for (const path of ["api/devices", ""]) {
      const r = await page.goto(`http://evil.test:${http}/${path}`);
      assert.equal(r.status(), 403, path);
      const answer = JSON.parse(await page.textContent("body"));
      assert.equal(answer.error.kind, "host_not_allowed");
    }
    await page.close();
  });
});
