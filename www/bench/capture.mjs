// Captures the data frames `fleetview simulate` sends, for bench/simulated.json: accepts the
// login, acks every frame, and on close writes the frames as hex (a JSON array) to the file
// given as argument. Prints the port to point the simulator at:
//
//   node bench/capture.mjs /tmp/c8.json &     # prints the port
//   fleetview simulate --server 127.0.0.1:PORT --codec 8 --batch 10 --rate 1000 --records 60 \
//     --start-time 1760000000000 --seed 7
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const { Decoder } = createRequire(import.meta.url)('fleetview');
const out = process.argv[2];
if (!out) throw new Error('usage: node bench/capture.mjs OUT.json');
const server = net.createServer((socket) => {
  const decoder = new Decoder();
  const frames = [];
  let stream = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    stream = Buffer.concat([stream, chunk]);
    for (const p of decoder.push(chunk)) {
      if (p.kind === 'imei') socket.write(decoder.accept(true));
      else if (p.kind === 'avl') {
        frames.push(stream.subarray(p.offset, p.offset + p.length).toString('hex'));
        socket.write(decoder.ack(p.records.length));
      }
    }
  });
  socket.on('close', () => {
    writeFileSync(out, JSON.stringify(frames) + '\n');
    console.error(`${frames.length} frames → ${out}`);
    server.close();
  });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
