/**
 * metrics.jsonl and TensorBoard event files. The event files are read back by a second decoder
 * written here from the format (TFRecord framing, masked CRC-32C computed bit by bit, protobuf wire
 * format), independent of train/tensorboard.ts's table CRC and encoder; CRC-32C itself is checked
 * against the published check value and RFC 3720's test vectors. That decoder checks everything
 * TensorBoard's loader reads from our files (record framing, both masked CRCs, the Event's wall_time,
 * step, file_version and summary values with their tags and simple_value), so there is no test through
 * the `tensorboard` Python package: it needs protobuf >= 5, which Debian 12 (CI) lacks, and CI fails
 * on any test it would have to ignore.
 */
import { assert, assertEquals } from "./assert.ts";
import { crc32c } from "../train/tensorboard.ts";
import { MetricsLog } from "../train/metrics.ts";
import { parseMetricsJsonl } from "../score/report/data.ts";

// ---- an independent reader -------------------------------------------------------------------

/** Bitwise CRC-32C (no table): Castagnoli polynomial, reflected, init and final XOR 0xFFFFFFFF. */
function crc32cBitwise(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

const mask = (c: number) => ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;

interface Field {
  field: number;
  wire: number;
  value: bigint | Uint8Array;
}

/** Splits a protobuf message into its fields (wire types 0, 1, 2, 5). */
function protoFields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = () => {
    let v = 0n, shift = 0n;
    for (;;) {
      const byte = b[i++];
      v |= BigInt(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return v;
      shift += 7n;
    }
  };
  while (i < b.length) {
    const key = Number(varint());
    const field = key >> 3, wire = key & 7;
    if (wire === 0) out.push({ field, wire, value: varint() });
    else if (wire === 1) out.push({ field, wire, value: b.slice(i, i += 8) });
    else if (wire === 5) out.push({ field, wire, value: b.slice(i, i += 4) });
    else if (wire === 2) {
      const n = Number(varint());
      out.push({ field, wire, value: b.slice(i, i += n) });
    } else throw new Error(`wire type ${wire}`);
  }
  return out;
}

interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  values: Record<string, number>;
}

/** Reads every record of an event file, checking both masked CRCs of each. */
function readEvents(file: Uint8Array): DecodedEvent[] {
  const events: DecodedEvent[] = [];
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let at = 0;
  while (at < file.length) {
    const len = Number(view.getBigUint64(at, true));
    assertEquals(view.getUint32(at + 8, true), mask(crc32cBitwise(file.subarray(at, at + 8))), "length CRC");
    const payload = file.subarray(at + 12, at + 12 + len);
    assertEquals(view.getUint32(at + 12 + len, true), mask(crc32cBitwise(payload)), "payload CRC");
    at += 12 + len + 4;
    const e: DecodedEvent = { wallTime: NaN, step: 0, values: {} };
    for (const f of protoFields(payload)) {
      const bytes = f.value as Uint8Array;
      if (f.field === 1 && f.wire === 1) {
        e.wallTime = new DataView(bytes.buffer, bytes.byteOffset).getFloat64(0, true);
      } else if (f.field === 2 && f.wire === 0) e.step = Number(f.value);
      else if (f.field === 3 && f.wire === 2) e.fileVersion = new TextDecoder().decode(bytes);
      else if (f.field === 5 && f.wire === 2) {
        for (const v of protoFields(bytes).filter((x) => x.field === 1)) {
          const parts = protoFields(v.value as Uint8Array);
          const tag = new TextDecoder().decode(parts.find((p) => p.field === 1)!.value as Uint8Array);
          const raw = parts.find((p) => p.field === 2 && p.wire === 5)!.value as Uint8Array;
          e.values[tag] = new DataView(raw.buffer, raw.byteOffset).getFloat32(0, true);
        }
      }
    }
    events.push(e);
  }
  return events;
}

// ---- tests -----------------------------------------------------------------------------------

Deno.test("CRC-32C: the published check value and RFC 3720 vectors; table = bitwise", () => {
  const ascii = new TextEncoder().encode("123456789");
  assertEquals(crc32c(ascii), 0xe3069283);
  assertEquals(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assertEquals(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assertEquals(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 131 + 7) & 0xff);
  assertEquals(crc32c(bytes), crc32cBitwise(bytes));
});

const step = (epoch: number, s: number, loss: number) => ({
  epoch,
  step: s,
  stepsPerEpoch: 4,
  globalStep: (epoch - 1) * 4 + s,
  lr: 1e-3 / s,
  loss,
  trainAccuracy: 10 * s,
  imagesPerSecond: 20.5,
});

Deno.test("metrics: jsonl lines as they happen, TensorBoard events readable, resume drops the cut epoch", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/metrics.jsonl`, tb = `${dir}/tb`;
    const log = await MetricsLog.open(path, { tensorboard: tb });
    log.step(step(1, 2, 2.25));
    // Written through to the file before the next call (a reader sees it while the run goes on).
    assertEquals((await Deno.readTextFile(path)).split("\n").filter(Boolean).length, 1);
    log.step(step(1, 4, 1.75));
    log.epoch({
      epoch: 1,
      globalStep: 4,
      lrFirst: 1e-3,
      lrLast: 5e-4,
      trainLoss: 1.8,
      trainAccuracy: 33.3,
      testAccuracy: 41.25,
      testLoss: 1.6,
      testTop5: 90,
      trainSeconds: 3,
      evalSeconds: 1.5,
      imagesPerSecond: 21,
    });
    log.step(step(2, 2, 1.5)); // epoch 2 is interrupted here
    log.close();

    const events = readEvents(
      await Deno.readFile([...Deno.readDirSync(tb)].map((e) => `${tb}/${e.name}`)[0]),
    );
    assertEquals(events[0].fileVersion, "brain.Event:2");
    assertEquals(events.length, 1 + 4);
    assertEquals(events.map((e) => e.step), [0, 2, 4, 4, 6]);
    assertEquals(events[1].values["train/loss"], 2.25);
    assertEquals(events[1].values["train/lr"], Math.fround(5e-4));
    assertEquals(events[3].values["test/accuracy"], 41.25);
    assertEquals(events[3].values["test/top5"], 90);
    assertEquals(events[3].values["test/loss"], Math.fround(1.6));
    assert(events.every((e) => Math.abs(e.wallTime - Date.now() / 1000) < 3600), "wall times are now");

    const resumed = await MetricsLog.open(path, { keepEpochs: 1 });
    resumed.step(step(2, 2, 1.4));
    resumed.close();
    const parsed = parseMetricsJsonl(await Deno.readTextFile(path), path);
    assertEquals(parsed.steps.map((s) => [s.epoch, s.step, s.loss]), [[1, 2, 2.25], [1, 4, 1.75], [
      2,
      2,
      1.4,
    ]]);
    assertEquals(parsed.steps.map((s) => s.x), [0.5, 1, 1.5]);
    assertEquals(parsed.epochs.map((e) => [e.epoch, e.testAccuracy, e.testLoss, e.testTop5]), [[
      1,
      41.25,
      1.6,
      90,
    ]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
