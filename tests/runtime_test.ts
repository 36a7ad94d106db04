import { assert, assertEquals, assertThrows } from "./assert.ts";
import { tf } from "../runtime/tf.ts";
import {
  assertBindable,
  assertGpuHealthy,
  GpuError,
  initRuntime,
  NO_ADAPTER_MESSAGE,
  webgpuBackend,
} from "../runtime/webgpu.ts";
import { UserError } from "../runtime/errors.ts";
import { Rng } from "../runtime/rng.ts";
import { withFileLock, writeFileAtomic } from "../runtime/fs.ts";
import { formatCsv, parseCsv } from "../runtime/csv.ts";

Deno.test("initRuntime: WebGPU backend with the adapter's limits", async () => {
  const facts = await initRuntime();
  assertEquals(tf.getBackend(), "webgpu");
  assert(facts.limits.maxStorageBufferBindingSize >= 128 * 2 ** 20, "binding limit at least 128 MiB");
  assert(facts.description.length > 0);
  const y = await tf.add(tf.tensor([1, 2]), tf.tensor([3, 4])).data();
  assertEquals(Array.from(y), [4, 6]);
});

Deno.test("assertBindable refuses a tensor over maxStorageBufferBindingSize and names the fix", async () => {
  const facts = await initRuntime();
  assertBindable(facts.limits.maxStorageBufferBindingSize, "activation");
  const err = assertThrows(
    () => assertBindable(facts.limits.maxStorageBufferBindingSize + 4, "activation [32,112,112,96]"),
    UserError,
  );
  assert(err.message.includes("maxStorageBufferBindingSize"), err.message);
  assert(err.message.includes("--batch-size"), err.message);
});

Deno.test("a WebGPU validation error becomes a GpuError instead of silent garbage", async () => {
  await initRuntime();
  assertGpuHealthy();
  const device = webgpuBackend().device;
  // Binding a buffer without STORAGE usage as storage is a validation error.
  const buf = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM });
  const module = device.createShaderModule({
    code:
      "@group(0) @binding(0) var<storage, read_write> a: array<f32>; @compute @workgroup_size(1) fn main() { a[0] = 1.0; }",
  });
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: buf } }],
  });
  await device.queue.onSubmittedWorkDone();
  await new Promise((r) => setTimeout(r, 50));
  const err = assertThrows(() => assertGpuHealthy(), GpuError);
  assert(err.message.startsWith("WebGPU validation error"), err.message);
});

Deno.test("no adapter: one clear line and exit code 2", async () => {
  const out = await new Deno.Command("deno", {
    args: ["run", "--allow-read=.", "tasks/doctor.ts"],
    env: { DENO_WEBGPU_BACKEND: "" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 2);
  const err = new TextDecoder().decode(out.stderr).split("\n").filter((l) => l.startsWith("error:"));
  assertEquals(err, [`error: ${NO_ADAPTER_MESSAGE}`]);
});

Deno.test("Rng: same seed same stream, state round-trips, uniform and permutation are sane", () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const sa = Array.from({ length: 5 }, () => a.nextUint32());
  assertEquals(sa, Array.from({ length: 5 }, () => b.nextUint32()));
  assert(sa.join() !== Array.from({ length: 5 }, () => c.nextUint32()).join());
  const saved = a.state();
  const next = a.uniform();
  assertEquals(Rng.fromState(saved).uniform(), next);
  let sum = 0;
  const r = new Rng(7);
  for (let i = 0; i < 20000; i++) sum += r.uniform();
  assert(Math.abs(sum / 20000 - 0.5) < 0.01, `mean ${sum / 20000}`);
  const p = Array.from(new Rng(1).permutation(100)).sort((x, y) => x - y);
  assertEquals(p, Array.from({ length: 100 }, (_, i) => i));
  const ints = new Set(Array.from({ length: 1000 }, () => r.int(0, 3)));
  assertEquals([...ints].sort(), [0, 1, 2, 3]);
});

Deno.test("writeFileAtomic replaces whole files; withFileLock serialises writers", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/sub/out.txt`;
  await writeFileAtomic(path, "one");
  await writeFileAtomic(path, "two");
  assertEquals(await Deno.readTextFile(path), "two");
  assertEquals([...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name), ["out.txt"]);
  const log = `${dir}/log.txt`;
  await Deno.writeTextFile(log, "");
  await Promise.all(Array.from({ length: 8 }, (_, i) =>
    withFileLock(log, async () => {
      const before = await Deno.readTextFile(log);
      await new Promise((r) => setTimeout(r, 5));
      await writeFileAtomic(log, before + `${i}\n`);
    })));
  assertEquals((await Deno.readTextFile(log)).trim().split("\n").length, 8);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("CSV: round trip with quoting; ragged rows are rejected with the line", () => {
  const text = formatCsv(["model", "note"], [["a", "x,y"], ["b", 'say "hi"']]);
  const t = parseCsv(text);
  assertEquals(t.header, ["model", "note"]);
  assertEquals(t.rows, [["a", "x,y"], ["b", 'say "hi"']]);
  assertEquals(t.lines, [2, 3]);
  const err = assertThrows(() => parseCsv("a,b\n1,2\n1,2,3\n"));
  assert(String((err as Error).message).includes("line 3"), (err as Error).message);
});
