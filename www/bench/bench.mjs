// Records per second: this package (core in wasm) against `complete-teltonika-parser`, the most
// used pure-JS Teltonika decoder on npm, on the same TCP frames in one run, for two sets of
// frames: the official examples (tiny frames of 1 or 2 records with 1 to 5 IO elements, plus
// complete-teltonika-parser's own 2-record sample), where the cost per call dominates; and what
// a fleet sends, frames of `fleetview simulate` (bench/simulated.json: Codec 8 and 8E, up to 10
// records of 9 IO elements each, as FMB trackers batch them).
//
//   npm run bench                 # after `npm run build`
//   node bench/bench.mjs --seconds 2
//
// Both sides build every object eagerly: fleetview's JSON model (records with named and scaled
// IO values, BigInt above 2^53) and complete-teltonika-parser's own objects. Each run also walks
// the result and sums IO values, so neither side can skip work. fleetview gets the bytes as a
// socket delivers them; complete-teltonika-parser accepts only hex text, so it gets the hex of
// the same frames (fleetview from hex is printed too). Rounds alternate between the two and the
// best round of each counts, which keeps a busy machine from favouring either side. Times are
// the process's CPU time.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const fleetview = require('fleetview');
const { ProtocolParser } = require('complete-teltonika-parser');

const args = process.argv.slice(2);
const seconds = Number(args[args.indexOf('--seconds') + 1]) || 1;
const rounds = 5;

// Official examples (Teltonika's documentation: the three Codec 8 examples and the Codec 8
// Extended one; complete-teltonika-parser rejects the Codec 16 one) and complete-teltonika-parser's own sample, a real FMB640 Codec 8E frame with
// two records of 41 IO elements each.
const vectors = JSON.parse(readFileSync(new URL('../test/vectors.json', import.meta.url), 'utf8'));
const simulated = JSON.parse(readFileSync(new URL('./simulated.json', import.meta.url), 'utf8'));
const workloads = {
  'official examples': [
    ...['T1', 'T2', 'T3', 'T4'].map((name) => vectors.find((v) => v.name === name).hex),
    vectors.find((v) => v.name === 'ctp-sample').hex,
  ],
  'simulated fleet': [...simulated.codec8, ...simulated.codec8e],
};
let hex, bytes;

function sumFleetview(p) {
  let n = 0;
  for (const r of p.records) for (const e of r.io) n += typeof e.value === 'number' ? 1 : 2;
  return n;
}

function sumCtp(p) {
  let n = 0;
  for (const r of p.Content.AVL_Datas) for (const v of Object.values(r.IOelement.Elements)) n += typeof v === 'number' ? 1 : 2;
  return n;
}

const lean = { names: false };
const sides = {
  fleetview: () => {
    let records = 0, check = 0;
    for (const b of bytes) {
      const p = fleetview.decode(b);
      records += p.records.length;
      check += sumFleetview(p);
    }
    return [records, check];
  },
  'fleetview (hex in)': () => {
    let records = 0, check = 0;
    for (const h of hex) {
      const p = fleetview.decode(h);
      records += p.records.length;
      check += sumFleetview(p);
    }
    return [records, check];
  },
  // IO elements with id, size and raw value only, like complete-teltonika-parser's.
  'fleetview (names: false)': () => {
    let records = 0, check = 0;
    for (const b of bytes) {
      const p = fleetview.decode(b, lean);
      records += p.records.length;
      check += sumFleetview(p);
    }
    return [records, check];
  },
  'complete-teltonika-parser': () => {
    let records = 0, check = 0;
    for (const h of hex) {
      const p = new ProtocolParser(h);
      records += p.Content.AVL_Datas.length;
      check += sumCtp(p);
    }
    return [records, check];
  },
};

function cpu() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function round(fn) {
  const start = cpu();
  let records = 0, calls = 0;
  do {
    for (let k = 0; k < 50; k++) records += fn()[0];
    calls += 50;
  } while (cpu() - start < seconds);
  return records / (cpu() - start);
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
console.log(`best of ${rounds} rounds of ${seconds}s CPU each (node ${process.version})`);
for (const [workload, frames] of Object.entries(workloads)) {
  hex = frames;
  bytes = hex.map((h) => Buffer.from(h, 'hex'));
  // Same record counts on both sides, or the comparison means nothing.
  const counts = Object.fromEntries(Object.entries(sides).map(([name, fn]) => [name, fn()[0]]));
  if (new Set(Object.values(counts)).size !== 1) throw new Error(`record counts differ: ${JSON.stringify(counts)}`);
  for (const fn of Object.values(sides)) for (let k = 0; k < 200; k++) fn(); // warm up the JITs

  const best = {};
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of Object.entries(sides)) best[name] = Math.max(best[name] ?? 0, round(fn));
  }
  console.log(`\n${workload}: ${hex.length} frames, ${counts.fleetview} records per pass`);
  for (const [name, v] of Object.entries(best)) console.log(`${name.padEnd(28)} ${fmt(v).padStart(12)} records/s`);
  const ratio = best.fleetview / best['complete-teltonika-parser'];
  const ratioHex = best['fleetview (hex in)'] / best['complete-teltonika-parser'];
  const ratioLean = best['fleetview (names: false)'] / best['complete-teltonika-parser'];
  console.log(`ratio fleetview / complete-teltonika-parser: ${ratio.toFixed(1)}× (from hex: ${ratioHex.toFixed(1)}×; names: false: ${ratioLean.toFixed(1)}×; goal ≥ 10×)`);
}
