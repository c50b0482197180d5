// Shared by the tests and the bench: the built Worker in workerd (Miniflare) with D1 and the
// migrations applied, fixture datagrams from the core encoder, and the native binary.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';

export const WORKER_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = join(WORKER_DIR, '..');
const BUILD_DIR = join(WORKER_DIR, 'build');
const SCRIPT = join(BUILD_DIR, 'index.js');

/** Cargo's target directory (honours CARGO_TARGET_DIR and workspace settings). */
export function targetDir() {
  if (process.env.CARGO_TARGET_DIR) return process.env.CARGO_TARGET_DIR;
  const out = execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], {
    cwd: REPO_DIR,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  return JSON.parse(out).target_directory;
}

/** The native `fleetview` binary (FLEETVIEW_BIN, or the debug build in the target dir). */
export function fleetviewBin() {
  const bin = process.env.FLEETVIEW_BIN ?? join(targetDir(), 'debug', 'fleetview');
  if (!existsSync(bin)) {
    throw new Error(`${bin} is missing: run cargo build -p fleetview --features server --bin fleetview`);
  }
  return bin;
}

/**
 * Datagrams built by the core encoder (worker/examples/datagrams.rs): one object per datagram
 * with imei, packet ids, hex, the ack a device expects, and its records.
 */
export function datagrams({ devices = 50, count = 1000, seed = 1, startMs } = {}) {
  const args = ['run', '-q', '-p', 'fleetview-worker', '--example', 'datagrams', '--',
    '--devices', String(devices), '--count', String(count), '--seed', String(seed)];
  if (startMs !== undefined) args.push('--start-ms', String(startMs));
  const r = spawnSync('cargo', args, { cwd: REPO_DIR, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`fixture generator failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((line) => {
    const d = JSON.parse(line);
    d.bytes = Buffer.from(d.hex, 'hex');
    return d;
  });
}

/** SQL statements of every migration, in file order (comments dropped). */
export function migrationStatements() {
  const dir = join(WORKER_DIR, 'migrations');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .flatMap((f) => readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .map((l) => l.replace(/--.*$/, ''))
      .join('\n')
      .split(';')
      .map((s) => s.trim())
      .filter(Boolean));
}

/**
 * Start the built Worker in workerd with an empty in-memory D1 database `DB`, migrations
 * applied. `bindings` sets vars and secrets (RELAY_TOKEN); `http: true` also serves it on
 * 127.0.0.1 (for the relay), with the URL in `url`.
 */
export async function startWorker({ bindings = {}, http = false } = {}) {
  if (!existsSync(SCRIPT)) throw new Error(`${SCRIPT} is missing: run npm run build`);
  const mf = new Miniflare({
    modules: true,
    modulesRoot: BUILD_DIR,
    scriptPath: SCRIPT,
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate: '2026-04-01',
    d1Databases: ['DB'],
    bindings,
    ...(http ? { host: '127.0.0.1', port: 0 } : {}),
  });
  const url = await mf.ready;
  const db = await mf.getD1Database('DB');
  await db.batch(migrationStatements().map((s) => db.prepare(s)));
  return { mf, db, url: url.origin };
}

/** POST a datagram to /udp. */
export async function postUdp(mf, bytes, headers = {}) {
  return mf.dispatchFetch('http://relay.test/udp', {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream', ...headers },
    body: bytes,
  });
}

/** Run `fn` over `items` with at most `limit` in flight; results in order. */
export async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}

/** Percentile of sorted numbers. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
