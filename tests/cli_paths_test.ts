/**
 * CLI paths no other test runs: `deno task prepare --list` and `deno task doctor`, each with the
 * permissions its deno.json task grants. Truths: the paper's seven datasets plus Fashion-MNIST and
 * ImageFolder (docs/protocol.md §2), Debian's Fashion-MNIST path, this process's own Deno version, the
 * tfjs version pinned in deno.json, and the doctor's own float64 check of its GPU matmul.
 *
 * @module
 */
import { assert, assertEquals } from "./assert.ts";
import { runTask } from "./cli.ts";

/** Runs a deno.json task with its own permissions; stdout and stderr together. */
async function task(name: string, extra: string[]): Promise<{ code: number; out: string }> {
  const r = await runTask(name, ...extra);
  return { code: r.code, out: `${r.out}${r.err}` };
}

Deno.test("prepare --list: the paper's seven datasets, Fashion-MNIST at Debian's path, ImageFolder; writes nothing", async () => {
  const before = await Deno.stat(".cache").then(() => true, () => false);
  const { code, out } = await task("prepare", ["--list"]);
  assertEquals(code, 0, out);
  const ids = out.split("\n").filter((l) => /^\S/.test(l)).map((l) => l.split(/\s+/)[0]);
  assertEquals(ids.sort(), [
    "cifar10",
    "cifar100",
    "fashion-mnist",
    "ham10000",
    "imagefolder",
    "imagenette160",
    "miniplaces",
    "mit-indoor67",
    "stanford-dogs",
  ]);
  // Every dataset is followed by its default root; Fashion-MNIST's is Debian's install.
  assertEquals(out.match(/^\s+default root: \S+/gm)?.length, ids.length);
  assert(out.includes("default root: /usr/share/datasets/fashion-mnist"), out);
  assertEquals(await Deno.stat(".cache").then(() => true, () => false), before, "--list created .cache");
});

Deno.test("doctor: versions of this runtime, the WebGPU backend, a GPU matmul that agrees with float64", async () => {
  const { code, out } = await task("doctor", []);
  assertEquals(code, 0, out);
  const field = (k: string) => new RegExp(`^${k}\\s+(.*)$`, "m").exec(out)?.[1] ?? "";
  assert(field("deno").startsWith(`${Deno.version.deno} `), out);
  const config = JSON.parse(await Deno.readTextFile("deno.json"));
  const pinned = /@(\d+\.\d+\.\d+)$/.exec(config.imports["@tensorflow/tfjs-core"])![1];
  assertEquals(field("tfjs-core"), pinned);
  assertEquals(field("backend"), "webgpu");
  assert(/maxStorageBufferBindingSize \d+ MiB/.test(field("limits")), out);
  const m = /^matmul 512\s+([\d.]+) GFLOP\/s .* max rel\. error vs CPU (\S+) OK$/m.exec(out);
  assert(m, `no checked matmul line in:\n${out}`);
  assert(Number(m[1]) > 0 && Number(m[2]) < 1e-3, m[0]);
});
