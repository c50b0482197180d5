// The live view's reports on a real `fleetview serve` in headless Chromium: a scripted device
// drives out of its depot, parks with the ignition off and drives back, crossing a band twice;
// the day picker shows its trips, stops and events (the afternoon's arriving live), a trip is
// replayed on the map, and geofences are drawn (a circle, a polygon) and deleted on the map.
// Screenshots go to web/test-artifacts.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch } from "./chromium.mjs";
import { ARTIFACTS, Device, startServer, stopServer } from "./fleetview.mjs";

const IMEI = "356307042441013";
const MIN = 60_000;

/** Minute `m` of the scripted day: north 0.001° a minute for 10 minutes, parked until 70, back. */
function record(base, m) {
  const north = m <= 10 ? m : m <= 70 ? 10 : 80 - m;
  const moving = (m <= 10 || m >= 71) && m !== 80;
  const km = Math.min(m, 10) + Math.max(m - 70, 0);
  return {
    ts: base + m * MIN,
    lat: 54 + north / 1000,
    lon: 25,
    speed: moving ? 40 : 0,
    io: { 239: [1, moving ? 1 : 0], 240: [1, moving ? 1 : 0], 16: [4, 1_000_000 + 150 * km], 89: [1, 60 - Math.floor(km / 5)] },
  };
}

const minutes = [...Array(81).keys()].filter((m) => m <= 11 || m >= 71 || m % 10 === 0);

let started, dir, context, api;

async function json(method, path, body) {
  const r = await fetch(`http://127.0.0.1:${started.http}${path}`, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body && JSON.stringify(body),
  });
  return { status: r.status, body: r.status === 204 ? null : await r.json() };
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), "fleetview-web-reports-"));
  started = await startServer(["--db", join(dir, "db")]);
  api = json;
  context = await launch();
});

after(async () => {
  await context?.dispose();
  await stopServer(started);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("reports in the live view", () => {
  test("a day's trips, stops and events; a trip replayed; geofences drawn and deleted", async () => {
    // Geofences before the records (records timed before a geofence get no events for it).
    assert.equal((await api("POST", "/api/geofences", { name: "Depot", geometry: { type: "Point", coordinates: [25, 54.01], radius_m: 50 } })).status, 201);
    const band = { type: "Polygon", coordinates: [[[24.99, 54.0025], [25.01, 54.0025], [25.01, 54.0055], [24.99, 54.0055], [24.99, 54.0025]]] };
    assert.equal((await api("POST", "/api/geofences", { name: "Bridge", geometry: band })).status, 201);

    // Tomorrow 08:00 UTC; the morning now, the afternoon once the page is open.
    const base = (Math.floor(Date.now() / 86_400_000) + 1) * 86_400_000 + 8 * 60 * MIN;
    const device = await Device.login(started.tcp, IMEI);
    const morning = minutes.filter((m) => m <= 70).map((m) => record(base, m));
    for (let i = 0; i < morning.length; i += 8) await device.send(morning.slice(i, i + 8));

    const page = await context.newPage();
    page.on("pageerror", (e) => assert.fail(`page error: ${e}`));
    await page.goto(`http://127.0.0.1:${started.http}/`);
    await page.click("#tab-live");
    await page.locator(`#devices li[data-imei="${IMEI}"]`).click();
    const day = new Date(base).toISOString().slice(0, 10);
    assert.equal(await page.inputValue("#report-day"), day);
    await page.locator("#report-trips li.trip").first().waitFor({ timeout: 20_000 });
    await page.locator("#report-events li.event").nth(2).waitFor({ timeout: 20_000 });

    // The afternoon: the events arrive live (the `geofence` event makes the panel read again).
    const afternoon = minutes.filter((m) => m > 70).map((m) => record(base, m));
    await device.send(afternoon);
    await page.locator("#report-events li.event").nth(5).waitFor({ timeout: 20_000 });
    const trips = await page.locator("#report-trips li.trip").allTextContents();
    assert.equal(trips.length, 2, trips.join("\n"));
    assert.match(trips[0], /^08:00–08:11 · 1\.5 km · 11 min · max 40 km\/h · avg 8\.2 km\/h · fuel 2 %/);
    assert.match(trips[1], /^09:11–09:20 · 1\.4 km · 9 min/);
    const stops = await page.locator("#report-stops li.stop").allTextContents();
    assert.deepEqual(stops, ["08:11–09:11 · 1 h 0 min · 54.01000, 25.00000"]);
    const events = await page.locator("#report-events li.event").allTextContents();
    assert.deepEqual(events, [
      "08:03 entered Bridge",
      "08:06 left Bridge",
      "08:10 entered Depot",
      "09:11 left Depot",
      "09:15 entered Bridge",
      "09:18 left Bridge",
    ]);
    assert.equal(await page.locator("#report-timeline .span.trip").count(), 2);
    assert.equal(await page.locator("#report-timeline .tick").count(), 6);
    const map = page.locator("#report-map");
    await page.waitForFunction(() => document.querySelector("#report-map")?.dataset.stops === "1");
    assert.equal(await map.getAttribute("data-geofences"), "2");
    assert.equal(await page.locator("#report-map .stop-marker").count(), 1);
    await page.screenshot({ path: join(ARTIFACTS, "10-reports-day.png"), fullPage: true });

    // Replay the first trip.
    await page.locator("#report-trips li.trip button.replay").first().click();
    await page.waitForFunction(() => document.querySelector("#report-map")?.dataset.replay === "done", null, { timeout: 20_000 });
    assert.equal(await page.locator("#report-map .replay-marker").count(), 1);
    await map.screenshot({ path: join(ARTIFACTS, "11-reports-replay.png") });

    // Draw a circle: its centre, then a point of its edge.
    const box = await map.boundingBox();
    const at = (fx, fy) => [box.x + box.width * fx, box.y + box.height * fy];
    await page.fill("#geofence-name", "Yard");
    await page.click("#draw-circle");
    assert.equal(await map.getAttribute("data-drawing"), "circle");
    await page.mouse.click(...at(0.2, 0.2));
    await page.mouse.move(...at(0.25, 0.2));
    await page.mouse.click(...at(0.3, 0.2));
    await page.locator("#geofences li.geofence", { hasText: "Yard" }).waitFor({ timeout: 20_000 });
    // A polygon: four corners, then Finish.
    await page.click("#draw-polygon");
    for (const [fx, fy] of [[0.6, 0.6], [0.8, 0.6], [0.8, 0.8], [0.6, 0.8]]) await page.mouse.click(...at(fx, fy));
    assert.equal(await map.getAttribute("data-corners"), "4");
    await page.click("#draw-finish");
    await page.locator("#geofences li.geofence", { hasText: "polygon, 4 corners" }).nth(0).waitFor({ timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector("#report-map")?.dataset.geofences === "4");
    await page.screenshot({ path: join(ARTIFACTS, "12-reports-geofences-drawn.png"), fullPage: true });

    const listed = (await api("GET", "/api/geofences")).body;
    assert.deepEqual(listed.map((g) => [g.name, g.geometry.type]), [["Depot", "Point"], ["Bridge", "Polygon"], ["Yard", "Point"], ["Geofence 4", "Polygon"]]);
    const yard = listed[2].geometry;
    assert.ok(yard.radius_m > 10, JSON.stringify(yard));
    const ring = listed[3].geometry.coordinates[0];
    assert.equal(ring.length, 5);
    assert.deepEqual(ring[4], ring[0]);

    // Delete the yard on the map's list.
    await page.locator("#geofences li.geofence", { hasText: "Yard" }).locator("button.delete-geofence").click();
    await page.waitForFunction(() => document.querySelector("#report-map")?.dataset.geofences === "3");
    assert.deepEqual((await api("GET", "/api/geofences")).body.map((g) => g.name), ["Depot", "Bridge", "Geofence 4"]);
    await page.close();
    device.socket.destroy();
  });
});
