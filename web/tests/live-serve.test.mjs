// The live view served by `fleetview serve` in headless Chromium, with the API's guards on:
// a bearer token from --token-file (with characters that must be percent-encoded for
// EventSource), a scripted device over TCP, a command sent from the UI and answered by the
// device (same-origin JSON POST), then what a hostile page gets: a cross-site form post and a
// DNS-rebound host name (Chromium's host resolver maps evil.test to 127.0.0.1).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "./chromium.mjs";

const WEB = join(dirname(fileURLToPath(import.meta.url)), "..");
const REPO = join(WEB, "..");
const DIST = join(WEB, "dist");
const ARTIFACTS = join(WEB, "test-artifacts");
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

/** The native binary: FLEETVIEW_BIN, or the debug build (built here when missing). */
function fleetviewBin() {
  if (process.env.FLEETVIEW_BIN) return process.env.FLEETVIEW_BIN;
  const meta = execFileSync("cargo", ["metadata", "--format-version", "1", "--no-deps"], {
    cwd: REPO,
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  const bin = join(process.env.CARGO_TARGET_DIR ?? JSON.parse(meta).target_directory, "debug", "fleetview");
  if (!existsSync(bin)) {
    const r = spawnSync("cargo", ["build", "-p", "fleetview", "--features", "server", "--bin", "fleetview"], {
      cwd: REPO,
      stdio: "inherit",
    });
    assert.equal(r.status, 0, "cargo build of the fleetview binary failed");
  }
  return bin;
}

// Teltonika's documented Codec 12 response example (a getinfo answer), from the core test vectors.
const RESPONSE = JSON.parse(readFileSync(join(REPO, "core/tests/vectors/t07_codec12_getinfo_response.json"), "utf8"));
const RESPONSE_TEXT = RESPONSE.expect[0].messages[0].text;

/** A device on a TCP socket, reading exactly what it asks for. */
class Device {
  constructor(socket) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.waiting = null;
    socket.on("data", (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiting?.();
    });
  }

  static open(port) {
    return new Promise((ok, fail) => {
      const s = connect(port, "127.0.0.1", () => ok(new Device(s)));
      s.on("error", fail);
    });
  }

  async read(n, ms = 20_000) {
    const deadline = Date.now() + ms;
    while (this.buf.length < n) {
      assert.ok(Date.now() < deadline, `device waited ${ms} ms for ${n} bytes`);
      await new Promise((ok) => {
        this.waiting = ok;
        setTimeout(ok, 200);
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  write(bytes) {
    this.socket.write(bytes);
  }
}

let server, log, http, tcp, dir, context, device, beaconDevice, hostile;

before(async () => {
  assert.ok(existsSync(join(DIST, "index.html")), "web/dist is missing: run `npm --prefix web run build` first");
  mkdirSync(ARTIFACTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), "fleetview-web-live-"));
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, `${TOKEN}\n`);
  chmodSync(tokenFile, 0o600);
  server = spawn(
    fleetviewBin(),
    ["serve", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", join(dir, "db"),
      "--web", DIST, "--token-file", tokenFile],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FLEETVIEW_TOKEN: undefined } },
  );
  log = "";
  server.stderr.on("data", (d) => (log += d));
  const ready = await new Promise((ok, fail) => {
    let out = "";
    server.stdout.on("data", (d) => {
      out += d;
      const line = out.split("\n").find((l) => l.startsWith("fleetview serve ready "));
      if (line) ok(JSON.parse(line.slice("fleetview serve ready ".length)));
    });
    server.on("exit", (code) => fail(new Error(`fleetview serve exited with ${code}: ${log}`)));
  });
  http = Number(ready.http.split(":").pop());
  tcp = Number(ready.tcp.split(":").pop());

  device = await Device.open(tcp);
  device.write(Buffer.from(`000F${Buffer.from(IMEI).toString("hex")}`, "hex"));
  assert.equal((await device.read(1))[0], 1);
  device.write(Buffer.from(FRAME, "hex"));
  assert.equal((await device.read(4)).toString("hex"), "00000001");

  // A device in beacon mode with a fix and its serving cell (the playground's beacons-8e example).
  beaconDevice = await Device.open(tcp);
  beaconDevice.write(Buffer.from(`000F${Buffer.from(BEACON_IMEI).toString("hex")}`, "hex"));
  assert.equal((await beaconDevice.read(1))[0], 1);
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
  server?.kill("SIGTERM");
  if (server && server.exitCode === null) await new Promise((ok) => server.on("exit", ok));
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
    assert.match(log, /refused: CrossOrigin \{ origin: "http:\/\/127\.0\.0\.1:\d+"/);
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
