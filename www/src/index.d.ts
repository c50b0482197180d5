// Types of the `fleetview` npm package: the API of src/api.js and the JSON model of Fleetview
// (core/docs/json-model.md), whose source of truth is core's `json` module. Keep them in step.

/** Decoding options shared by `decode`, `decodeAll`, `decodeJson` and `Decoder`. */
export interface DecodeOptions {
  /** Accept the CRC/length/count inconsistencies real devices and published examples contain; each becomes a warning. Default false. */
  lenient?: boolean;
  /** Device model for IO names and scaling, e.g. "FMB920" (see `models()`); default: the common FMB definitions. */
  model?: string;
  /** Largest TCP data field / UDP datagram accepted, bytes. Default 65536. */
  maxFrameLen?: number;
  /** false: IO elements carry only id, size and raw/hex, without the catalogue's name, value and unit. Default true. */
  names?: boolean;
}

/** Options of `encodeCommand` and `Decoder.command`. */
export interface CommandOptions {
  /** 12 (default) or 14 (addressed to `imei`: a device with another IMEI answers with a nACK). */
  codec?: 12 | 14;
  /** The device's IMEI, required for Codec 14 (`Decoder.command` fills in the logged-in one). */
  imei?: string;
}

/** A problem lenient decoding tolerated. */
export interface Warning {
  /** Stable snake_case kind, the same as the error strict mode raises. */
  kind: string;
  /** Byte offset from the start of the input. */
  offset: number;
  message: string;
}

/** One IO element. */
export interface IoElement {
  id: number;
  /** Bytes on the wire. */
  size: number;
  /** Fixed-size values: the unsigned integer on the wire; a BigInt above 2^53. */
  raw?: number | bigint;
  /** Variable-length (NX) values: lowercase hex. */
  hex?: string;
  /** From the IO catalogue, for the chosen model. */
  name?: string;
  /** Sign and multiplier applied (a BigInt beyond ±2^53); text for ASCII ids, hex for HEX ids. */
  value?: number | bigint | string;
  unit?: string;
  /** Composite values decoded (absent for other values and for a malformed one, which gets a
   * `composite_*` warning): IO 385 beacons, IOs 548/10828/10829/10831/11317 sensors, IOs
   * 256/325 VIN, IO 281 fault codes. */
  decoded?: BeaconList | SensorList | { vin: string } | { codes: string[] };
}

/** IO 385: one part of the beacon list (a long list is split over several records). */
export interface BeaconList {
  /** This part's number, from 1. */
  part: number;
  /** How many parts the list has. */
  parts: number;
  beacons: Beacon[];
}

/** A beacon of IO 385. */
export interface Beacon {
  type: 'ibeacon' | 'eddystone';
  /** iBeacon: `e2c56db5-dffb-48d2-b060-d0f5a71096e0`. */
  uuid?: string;
  major?: number;
  minor?: number;
  /** Eddystone: hex. */
  namespace?: string;
  instance?: string;
  /** dBm. */
  rssi?: number;
  /** mV. */
  battery_mv?: number;
  /** °C. */
  temperature_c?: number;
}

/** A TLV sensor list (IOs 548, 10828, 10829, 10831, 11317). */
export interface SensorList {
  /** The list's first byte (protocol version). */
  header: number;
  beacons: Sensor[];
}

/** What an EYE sensor's flags announce. */
export interface EyeValues {
  /** °C. */
  temperature_c?: number;
  /** %. */
  humidity?: number;
  magnet?: boolean;
  movement?: boolean;
  movement_count?: number;
  /** Degrees. */
  pitch?: number;
  roll?: number;
  low_battery: boolean;
  /** mV. */
  battery_mv?: number;
}

/** A beacon of a sensor list: its parameters by name. */
export interface Sensor {
  /** dBm. */
  rssi?: number;
  /** Beacon id, hex. */
  id?: string;
  /** `7c:d9:f4:03:8a:21`. */
  mac?: string;
  name?: string;
  /** °C. */
  temperature_c?: number;
  /** %. */
  humidity?: number;
  magnet?: boolean;
  movement?: boolean;
  movement_count?: number;
  /** Degrees. */
  pitch?: number;
  roll?: number;
  low_battery?: boolean;
  /** mV. */
  battery_mv?: number;
  magnet_count?: number;
  /** IO 548: the raw BLE advertisement, hex. */
  advertisement?: string;
  /** EYE values: parameter 2 of the EYE lists, or Teltonika's manufacturer data in an advertisement. */
  eye?: EyeValues;
  /** Parameters with ids the decoder does not know. */
  unknown?: { id: number; hex: string }[];
}

/** The serving cell of a record (IOs 241, 206, 205/636, 21). */
export interface Network {
  /** Mobile country code, from the operator code (IO 241). */
  mcc: number | null;
  /** Mobile network code. */
  mnc: number | null;
  /** 2 or 3: 5-digit operator codes have a 2-digit MNC, 6-digit ones a 3-digit MNC. */
  mnc_digits: number | null;
  /** Location area code (IO 206). */
  lac: number | null;
  /** IO 636 (UMTS/LTE), else IO 205 (GSM). */
  cell_id: number | null;
  /** 0–5 (IO 21). */
  signal: number | null;
}

/** One AVL record. */
export interface Record {
  /** Milliseconds since 1970 UTC. */
  timestamp_ms: number;
  /** ISO 8601 UTC. */
  time: string;
  /** 0 low, 1 high, 2 panic, 3 security. */
  priority: number;
  /** Degrees, west negative. */
  longitude: number;
  /** Degrees, south negative. */
  latitude: number;
  /** Metres. */
  altitude: number;
  /** Degrees from north. */
  angle: number;
  satellites: number;
  /** km/h. */
  speed: number;
  /** Whether the position is a fix worth plotting (satellites and a non-zero position). */
  valid: boolean;
  /** IO id that triggered the record, 0 for none. */
  event_id: number;
  /** Codec 16 generation type, else null. */
  generation_type: number | null;
  io: IoElement[];
  /** Present when the record has cell tower IO elements (241, 206, 205, 636). */
  network?: Network;
}

/** One command message (Codec 12, 13, 14, 15). */
export interface Message {
  /** 5 command, 6 response, 17 nACK, 11 Codec 15 message … */
  type: number;
  /** The payload as text, when it is text. */
  text: string | null;
  payload_hex: string;
  /** Codec 13/15 timestamp, seconds. */
  timestamp_s: number | null;
  /** Codec 14/15 IMEI. */
  imei: string | null;
}

export interface Crc {
  /** The 4-byte trailer as received. */
  received: number;
  /** CRC-16/IBM over the data field. */
  computed: number;
  ok: boolean;
}

export interface UdpHeader {
  length: number;
  packet_id: number;
  packet_type: number;
  avl_packet_id: number;
}

interface PacketBase {
  transport: "tcp" | "udp" | "bare";
  /** Hex of exactly what a server answers to accept everything, or null (keep-alives, commands, bare arrays). */
  ack: string | null;
  warnings: Warning[];
  /** Offset of the packet in the input (stream offset for `Decoder`). */
  offset: number;
  /** Bytes the packet took. */
  length: number;
}

export interface AvlPacket extends PacketBase {
  kind: "avl";
  codec: "7" | "8" | "8E" | "16";
  codec_id: number;
  /** UDP datagrams. */
  imei?: string;
  /** TCP frames. */
  crc?: Crc;
  /** UDP datagrams. */
  udp?: UdpHeader;
  records: Record[];
}

export interface ImeiPacket extends PacketBase {
  kind: "imei";
  imei: string;
}

export interface CommandPacket extends PacketBase {
  kind: "command";
  codec: "12" | "13" | "14" | "15";
  codec_id: number;
  crc?: Crc;
  messages: Message[];
}

export interface KeepAlivePacket extends PacketBase {
  kind: "keepalive";
}

/** A packet in the JSON model of Fleetview. */
export type Packet = AvlPacket | ImeiPacket | CommandPacket | KeepAlivePacket;

/** The fields of a decoding error, as in the JSON model's `{"error": {...}}`. */
export interface ErrorInfo {
  /** Stable snake_case kind: "crc_mismatch", "bad_preamble", "unexpected_end" … */
  kind: string;
  /** Byte offset from the start of the input (stream offset for `Decoder`). */
  offset: number;
  /** The protocol field being read, or "". */
  field: string;
  message: string;
}

/** A complete TCP frame the Decoder could not decode (bad CRC, malformed records) and skipped; the stream goes on. Not acking it makes the device send it again. */
export interface InvalidFrame {
  kind: "invalid";
  transport: "tcp";
  /** Stream offset of the frame. */
  offset: number;
  ack: null;
  warnings: Warning[];
  error: ErrorInfo;
}

/** What `Decoder.push` hands out. */
export type StreamPacket = Packet | InvalidFrame;

/** The `Error` every function throws on bad input. */
export interface FleetviewError extends Error {
  /** Stable snake_case kind: a decoding kind, or "invalid_input", "invalid_option", "out_of_range", "invalid_imei". */
  kind: string;
  /** Byte offset, for errors about input bytes. */
  offset?: number;
  field?: string;
  /** decode, decodeAll and Decoder.push: the packets decoded before the error. */
  packets?: StreamPacket[];
}

/** What the IO catalogue knows about an IO id on a model. */
export interface IoInfo {
  id: number;
  name: string;
  /** Value size in bytes; null for variable length. */
  bytes: number | null;
  type: "unsigned" | "signed" | "hex" | "ascii";
  unit: string | null;
  /** Parameter group, e.g. "Permanent I/O elements". */
  group: string;
  /** Applied to the raw value to get `value`. */
  multiplier: number;
  /** The models this definition is documented for. */
  models: string[];
  /** True when a model was given and this is its own definition (false: the FMB-family fallback). */
  exact: boolean;
}

/** Bytes, or hex text as people paste it (spaces, `0x` prefixes and commas are fine). */
export type Input = Uint8Array | ArrayBuffer | ArrayBufferView | string;

/**
 * Decode one packet, auto-detected: an IMEI login, a TCP frame, a UDP datagram, a bare AVL data
 * array or a keep-alive. Input holding more than one packet throws `trailing_bytes` at the offset
 * of the second: use `decodeAll` for captures of a stream.
 */
export function decode(input: Input, options?: DecodeOptions): Packet;

/** Decode every packet of complete input (TCP frames captured from a stream, keep-alives and a login between them). Throws at the first error, with the packets before it in `error.packets`. */
export function decodeAll(input: Input, options?: DecodeOptions): Packet[];

/** Like `decode`, as JSON text rendered by core (serde): for storing or forwarding. 8-byte values above 2^53 stay exact in the text. */
export function decodeJson(input: Input, options?: DecodeOptions): string;

/**
 * A streaming decoder for one device's TCP connection, server side. It never answers by itself:
 * the application decides which IMEIs to accept and acks only what it has stored.
 *
 * ```js
 * const decoder = new Decoder();
 * socket.on('data', (chunk) => {
 *   for (const p of decoder.push(chunk)) {
 *     if (p.kind === 'imei') socket.write(decoder.accept(allowed(p.imei)));
 *     else if (p.kind === 'avl') { store(p.records); socket.write(decoder.ack(p.records.length)); }
 *   }
 * });
 * ```
 */
export class Decoder {
  constructor(options?: DecodeOptions);
  /**
   * Feed bytes read from the socket, in pieces of any size; returns the packets they complete:
   * the login (answer with `accept`), records (store, then `ack`), command responses,
   * keep-alives, and `invalid` frames that were skipped. Throws when the stream cannot go on
   * (garbage it cannot resynchronise from, data after a rejected login): close the connection.
   */
  push(chunk: Uint8Array | ArrayBuffer | ArrayBufferView): StreamPacket[];
  /** Packets decoded by `accept(true)` from frames that came together with the login. */
  take(): StreamPacket[];
  /** Answer the login: the byte to write, `01` (accept, the default) or `00` (reject: write it, then close). */
  accept(accept?: boolean): Uint8Array;
  /** The 4 bytes acknowledging a data frame: the number of records stored. Fewer than sent (0 included) makes the device send them again. */
  ack(n: number): Uint8Array;
  /** A command frame for this device (Codec 14 addresses the logged-in IMEI by default). Send it once its records are acked. */
  command(command: string | Uint8Array, options?: CommandOptions): Uint8Array;
  /** The IMEI the device logged in with, or null. */
  readonly imei: string | null;
  /** True once the login was rejected or an error ended the stream. */
  readonly closed: boolean;
  /** Bytes received and not decoded yet (an incomplete frame). */
  readonly buffered: number;
  /** Stream offset of the next byte to decode. */
  readonly offset: number;
  /** Release the wasm memory now rather than when the object is garbage-collected. */
  free(): void;
}

/** A TCP frame carrying one command: Codec 12 by default, Codec 14 with `{ codec: 14, imei }`. */
export function encodeCommand(command: string | Uint8Array, options?: CommandOptions): Uint8Array;

/** The IMEI login frame a device sends first (for simulators and tests). */
export function loginFrame(imei: string): Uint8Array;

/** The 4-byte TCP ack: `n` records accepted. */
export function tcpAck(n: number): Uint8Array;

/** The 7-byte UDP ack, echoing the datagram's `udp.packet_id` and `udp.avl_packet_id`, with `n` records accepted. */
export function udpAck(packetId: number, avlPacketId: number, n: number): Uint8Array;

/** What the IO catalogue knows about IO `id` on `model` (the FMB-family definition when omitted or unknown), or null. */
export function ioInfo(id: number, model?: string): IoInfo | null;

/** The device models the IO catalogue knows, sorted. */
export function models(): string[];
