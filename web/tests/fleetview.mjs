// What the browser tests that run against a real `fleetview serve` share: the binary, starting
// it on free ports of 127.0.0.1, and a scripted device on a TCP socket (with a Codec 8 frame
// encoder for its records).

import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const WEB = join(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO = join(WEB, "..");
export const DIST = join(WEB, "dist");
export const ARTIFACTS = join(WEB, "test-artifacts");

/** The native binary: FLEETVIEW_BIN, or the debug build (built here when missing). */
export function fleetviewBin() {
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

/**
 * Start `fleetview serve` with `args` (after the listener addresses) serving web/dist; resolves
 * to {server, http, tcp, log()} once it printed its ready line.
 */
export async function startServer(args, env = {}) {
  assert.ok(existsSync(join(DIST, "index.html")), "web/dist is missing: run `npm --prefix web run build` first");
  const server = spawn(
    fleetviewBin(),
    ["serve", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--web", DIST, ...args],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FLEETVIEW_TOKEN: undefined, ...env } },
  );
  let log = "";
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
  return {
    server,
    http: Number(ready.http.split(":").pop()),
    tcp: Number(ready.tcp.split(":").pop()),
    log: () => log,
  };
}

/** Stop a server started by startServer. */
export async function stopServer(s) {
  if (!s) return;
  s.server.kill("SIGTERM");
  if (s.server.exitCode === null) await new Promise((ok) => s.server.on("exit", ok));
}

/** A device on a TCP socket, reading exactly what it asks for. */
export class Device {
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

  /** Open and log in with `imei` (the server accepts: 01). */
  static async login(port, imei) {
    const d = await Device.open(port);
    d.write(Buffer.from(`000F${Buffer.from(imei).toString("hex")}`, "hex"));
    assert.equal((await d.read(1))[0], 1);
    return d;
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

  /** Send records as one Codec 8 frame and wait for the ack of all of them. */
  async send(records) {
    this.write(codec8Frame(records));
    assert.equal((await this.read(4)).readUInt32BE(0), records.length);
  }
}

/** CRC-16/IBM (ARC), as the TCP frame carries it. */
function crc16(bytes) {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/**
 * A Codec 8 TCP frame of records {ts (ms), lat, lon (degrees), speed (km/h), io: {id: [size,
 * value]}} (sizes 1, 2, 4 or 8 bytes).
 */
export function codec8Frame(records) {
  const parts = [Buffer.from([0x08, records.length])];
  for (const r of records) {
    const head = Buffer.alloc(24);
    head.writeBigUInt64BE(BigInt(r.ts), 0);
    head.writeUInt8(0, 8);
    head.writeInt32BE(Math.round(r.lon * 1e7), 9);
    head.writeInt32BE(Math.round(r.lat * 1e7), 13);
    head.writeInt16BE(100, 17);
    head.writeUInt16BE(0, 19);
    head.writeUInt8(9, 21);
    head.writeUInt16BE(r.speed, 22);
    parts.push(head);
    const io = Object.entries(r.io ?? {}).map(([id, [size, value]]) => [Number(id), size, value]);
    parts.push(Buffer.from([0, io.length]));
    for (const size of [1, 2, 4, 8]) {
      const of = io.filter((e) => e[1] === size);
      parts.push(Buffer.from([of.length]));
      for (const [id, , value] of of) {
        const b = Buffer.alloc(1 + size);
        b.writeUInt8(id, 0);
        if (size === 8) b.writeBigUInt64BE(BigInt(value), 1);
        else b.writeUIntBE(value, 1, size);
        parts.push(b);
      }
    }
  }
  parts.push(Buffer.from([records.length]));
  const data = Buffer.concat(parts);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 4);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc16(data), 0);
  return Buffer.concat([head, data, crc]);
}
