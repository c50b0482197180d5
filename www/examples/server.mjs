// A small Teltonika TCP server on `Decoder`: answers the IMEI login, acks the records it has
// "stored", asks devices to resend frames it could not decode, and sends a queued command
// (Codec 12) once a device's records are acked, printing the response.
//
//   node examples/server.mjs [port] [allowed IMEI ...]     # default port 5027, every IMEI allowed
//
// Devices (or `fleetview simulate --server 127.0.0.1:5027`) connect as to any Teltonika server.
// As a module, `startServer({ port, allow, onRecords, onResponse, commands })` returns the
// listening net.Server, for tests and embedding.
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Decoder } from 'fleetview';

/**
 * @param {object} [o]
 * @param {number} [o.port] 0 picks a free port.
 * @param {string} [o.host]
 * @param {(imei: string) => boolean} [o.allow] which devices may log in (default: all).
 * @param {(imei: string, records: import('fleetview').Record[]) => void | Promise<void>} [o.onRecords]
 *   stores the records; the ack is sent once it returns (or its promise resolves).
 * @param {(imei: string, text: string | null) => void} [o.onResponse] a command response.
 * @param {Map<string, string[]>} [o.commands] commands waiting per IMEI, sent after an ack.
 * @param {(line: string) => void} [o.log]
 */
export function startServer(o = {}) {
  const { allow = () => true, onRecords = () => {}, onResponse = () => {}, commands = new Map(), log = console.log } = o;
  const server = net.createServer((socket) => {
    const decoder = new Decoder();
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    let imei = '?';
    // Frames are handled one after another: a device sends the next only after its ack, but a
    // chunk may still hold several, and storing is asynchronous.
    let queue = Promise.resolve();

    socket.on('data', (chunk) => {
      queue = queue.then(() => handle(chunk)).catch((e) => {
        log(`${imei} ${peer}: ${e.kind ?? 'error'} at byte ${e.offset ?? '?'}: ${e.message}; closing`);
        socket.destroy();
      });
    });
    socket.on('close', () => decoder.free());
    socket.on('error', () => {});

    async function handle(chunk) {
      if (socket.destroyed) return;
      // Throws when the stream cannot go on (garbage, data after a reject): caught above.
      for (const p of decoder.push(chunk)) {
        switch (p.kind) {
          case 'imei': {
            imei = p.imei;
            const ok = allow(imei);
            log(`${imei} ${peer}: login ${ok ? 'accepted' : 'rejected'}`);
            socket.write(decoder.accept(ok));
            if (!ok) {
              socket.end();
              return;
            }
            break;
          }
          case 'avl': {
            await onRecords(imei, p.records);
            socket.write(decoder.ack(p.records.length));
            const queued = commands.get(imei);
            if (queued?.length) socket.write(decoder.command(queued.shift()));
            break;
          }
          case 'command':
            for (const m of p.messages) onResponse(imei, m.text);
            break;
          case 'invalid':
            // Not stored: an ack of 0 makes the device send the frame again.
            log(`${imei} ${peer}: ${p.error.message}`);
            socket.write(decoder.ack(0));
            break;
          case 'keepalive':
            break;
        }
      }
    }
  });
  server.listen(o.port ?? 5027, o.host ?? '0.0.0.0');
  return server;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [port = '5027', ...allowed] = process.argv.slice(2);
  const server = startServer({
    port: Number(port),
    allow: allowed.length ? (imei) => allowed.includes(imei) : () => true,
    onRecords: (imei, records) => {
      for (const r of records) console.log(`${imei} ${r.time} ${r.latitude},${r.longitude} ${r.speed} km/h, ${r.io.length} IO`);
    },
    onResponse: (imei, text) => console.log(`${imei} response: ${text}`),
  });
  server.on('listening', () => console.log(`listening on ${JSON.stringify(server.address())}`));
}
