/**
 * A minimal TensorBoard event-file writer for scalars, so `tensorboard --logdir DIR` shows a run.
 *
 * Format (TensorFlow's record_writer and event.proto / summary.proto):
 * - a file `events.out.tfevents.<seconds>.<host>` holding TFRecords: uint64 length (LE),
 *   uint32 masked CRC-32C of those 8 bytes, the payload, uint32 masked CRC-32C of the payload;
 *   mask(c) = ((c >>> 15) | (c << 17)) + 0xa282ead8 (mod 2³²);
 * - each payload an `Event` protobuf: wall_time = 1 (double), step = 2 (int64), file_version = 3
 *   (string, "brain.Event:2" in the first record), summary = 5 (`Summary`: repeated value = 1, each
 *   `Value` with tag = 1 (string) and simple_value = 2 (float)).
 *
 * @module
 */

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `bytes`. */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC32C_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC (record_writer.h). */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord: length, its masked CRC, the payload, the payload's masked CRC. */
export function tfRecord(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + payload.length + 4);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt(payload.length), true);
  v.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(payload, 12);
  v.setUint32(12 + payload.length, maskedCrc32c(payload), true);
  return out;
}

class ProtoWriter {
  #parts: number[] = [];
  varint(v: bigint): void {
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      this.#parts.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.#parts.push(Number(x));
  }
  tag(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }
  double(field: number, v: number): void {
    this.tag(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.#parts.push(...b);
  }
  float(field: number, v: number): void {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.#parts.push(...b);
  }
  int64(field: number, v: number): void {
    this.tag(field, 0);
    this.varint(BigInt(Math.trunc(v)));
  }
  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(BigInt(b.length));
    this.#parts.push(...b);
  }
  string(field: number, s: string): void {
    this.bytes(field, new TextEncoder().encode(s));
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.#parts);
  }
}

/** An `Event` protobuf: the file-version header (no scalars) or scalars at a step. */
export function encodeEvent(
  e: { wallTime: number; step: number; fileVersion?: string; scalars?: Record<string, number> },
): Uint8Array {
  const w = new ProtoWriter();
  w.double(1, e.wallTime);
  w.int64(2, e.step);
  if (e.fileVersion !== undefined) w.string(3, e.fileVersion);
  if (e.scalars) {
    const summary = new ProtoWriter();
    for (const [tag, value] of Object.entries(e.scalars)) {
      const v = new ProtoWriter();
      v.string(1, tag);
      v.float(2, value);
      summary.bytes(1, v.finish());
    }
    w.bytes(5, summary.finish());
  }
  return w.finish();
}

/**
 * Appends scalar events to one event file in `dir`, each record written (unbuffered) as it comes,
 * so a running TensorBoard sees progress and a killed run keeps every finished record.
 */
export class TensorBoardWriter {
  readonly path: string;
  #file: Deno.FsFile;

  private constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
  }

  /** Creates `dir` and a new event file in it, starting with the file-version record. */
  static open(dir: string, now = Date.now()): TensorBoardWriter {
    Deno.mkdirSync(dir, { recursive: true });
    const path = `${dir}/events.out.tfevents.${Math.floor(now / 1000)}.xscore.${Deno.pid}`;
    const w = new TensorBoardWriter(path, Deno.openSync(path, { write: true, createNew: true }));
    w.#write(encodeEvent({ wallTime: now / 1000, step: 0, fileVersion: "brain.Event:2" }));
    return w;
  }

  #write(payload: Uint8Array): void {
    const rec = tfRecord(payload);
    let off = 0;
    while (off < rec.length) off += this.#file.writeSync(rec.subarray(off));
  }

  /** Writes the finite values of `scalars` at `step` (non-finite ones are left out). */
  scalars(step: number, scalars: Record<string, number | null | undefined>, now = Date.now()): void {
    const finite = Object.fromEntries(
      Object.entries(scalars).filter((kv): kv is [string, number] =>
        typeof kv[1] === "number" && Number.isFinite(kv[1])
      ),
    );
    if (Object.keys(finite).length) this.#write(encodeEvent({ wallTime: now / 1000, step, scalars: finite }));
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }
}
