// Load figures for the edge relay through the local runtime (workerd via Miniflare, in-memory
// D1): datagrams/s, records/s and ack latency percentiles, for
//   1. HTTP: POST /udp straight to the Worker's local HTTP server;
//   2. UDP: devices → `fleetview relay` → the Worker → ack back at each device.
// Every ack is checked; the run fails if one is wrong or missing. Bounded: a fixed number of
// datagrams, only to 127.0.0.1. Settings from the environment: BENCH_DATAGRAMS (default 3000),
// BENCH_DEVICES (100), BENCH_CONCURRENCY (32).
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { datagrams, fleetviewBin, percentile, pool, startWorker } from '../test/helpers.mjs';

const N = Number(process.env.BENCH_DATAGRAMS ?? 3000);
const DEVICES = Number(process.env.BENCH_DEVICES ?? 100);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);

function report(name, latencies, seconds, records) {
  const sorted = [...latencies].sort((a, b) => a - b);
  const line = [
    `${name}:`.padEnd(34),
    `${latencies.length} datagrams in ${seconds.toFixed(2)} s`,
    `${(latencies.length / seconds).toFixed(0)} datagrams/s`,
    `${(records / seconds).toFixed(0)} records/s`,
    `p50 ${percentile(sorted, 50).toFixed(1)} ms`,
    `p99 ${percentile(sorted, 99).toFixed(1)} ms`,
    `max ${sorted[sorted.length - 1].toFixed(1)} ms`,
  ];
  console.log(line.join('  '));
}

async function httpPhase(url, fixtures) {
  const latencies = [];
  const started = performance.now();
  await pool(fixtures, CONCURRENCY, async (d) => {
    const t = performance.now();
    const r = await fetch(`${url}/udp`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: d.bytes,
    });
    const ack = Buffer.from(await r.arrayBuffer()).toString('hex');
    if (r.status !== 200 || ack !== d.ack) throw new Error(`datagram of ${d.imei}: ${r.status} ${ack}, expected ${d.ack}`);
    latencies.push(performance.now() - t);
  });
  return { latencies, seconds: (performance.now() - started) / 1000 };
}

async function startRelay(to) {
  const child = spawn(fleetviewBin(), ['relay', '--udp', '127.0.0.1:0', '--to', to], {
    env: { ...process.env, FLEETVIEW_LOG: 'warn,fleetview=info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.setEncoding('utf8');
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start: ${log}`)), 15000);
    child.stderr.on('data', (c) => {
      log += c;
      const m = log.match(/relay listening on \S+:(\d+),/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => reject(new Error(`relay exited ${code}: ${log}`)));
  });
  return { child, port };
}

/** One socket per device, each device sends its datagrams in order, waiting for each ack. */
async function udpPhase(port, fixtures) {
  const byImei = new Map();
  for (const d of fixtures) {
    if (!byImei.has(d.imei)) byImei.set(d.imei, []);
    byImei.get(d.imei).push(d);
  }
  const latencies = [];
  const started = performance.now();
  await pool([...byImei.values()], CONCURRENCY, async (list) => {
    const socket = dgram.createSocket('udp4');
    await new Promise((r) => socket.bind(0, '127.0.0.1', r));
    let waiting = null;
    socket.on('message', (m) => waiting?.(m));
    for (const d of list) {
      const t = performance.now();
      const ack = await new Promise((resolve) => {
        const timer = setTimeout(() => resolve(null), 10000);
        waiting = (m) => {
          clearTimeout(timer);
          resolve(m);
        };
        socket.send(d.bytes, port, '127.0.0.1');
      });
      const got = ack ? ack.toString('hex') : 'nothing';
      if (got !== d.ack) throw new Error(`datagram of ${d.imei}: got ${got}, expected ${d.ack}`);
      latencies.push(performance.now() - t);
    }
    socket.close();
  });
  return { latencies, seconds: (performance.now() - started) / 1000 };
}

const records = (list) => list.reduce((n, d) => n + d.records.length, 0);
// Two disjoint sets (different seeds and times), so the second phase stores new rows too.
const first = datagrams({ devices: DEVICES, count: N, seed: 101 });
const second = datagrams({ devices: DEVICES, count: N, seed: 202, startMs: 1_710_000_000_000 });
// The relay path is measured without a token (the explicit opt-out of wrangler.toml).
const w = await startWorker({ http: true, bindings: { ALLOW_UNAUTHENTICATED: 'true' } });
let relay;
try {
  console.log(`fleetview edge relay bench: ${N} datagrams from ${DEVICES} devices per phase, ${CONCURRENCY} in flight, workerd + in-memory D1 on 127.0.0.1`);
  const h = await httpPhase(w.url, first);
  report('HTTP POST /udp', h.latencies, h.seconds, records(first));
  relay = await startRelay(w.url);
  const u = await udpPhase(relay.port, second);
  report('UDP device → relay → Worker', u.latencies, u.seconds, records(second));
  const row = await w.db.prepare('SELECT COUNT(*) AS n FROM records').first();
  console.log(`rows in D1: ${row.n} (expected ${records(first) + records(second)})`);
  if (row.n !== records(first) + records(second)) process.exitCode = 1;
} finally {
  relay?.child.kill('SIGTERM');
  await w.mf.dispose();
}
