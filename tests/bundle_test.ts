/**
 * The offline-GPU-machine path (docs in BENCHMARKS.md, "Running on a lent GPU"): `deno bundle`
 * of the train, bench:step and doctor tasks gives single files that start without node_modules,
 * and the bundled train task runs a tiny Fashion-MNIST epoch from an empty folder — recorded step
 * included — writing its ledger row and weights.
 *
 * Needs Debian's dataset-fashion-mnist; skipped with the reason when it is missing, unless
 * `XS_REQUIRE_DATA=1` (CI), which makes that a failure.
 */
import { assert, assertEquals } from "./assert.ts";
import { FASHION_MNIST, fashionMnistTest, haveFashionMnist, requireData, runDeno } from "./cli.ts";

if (!haveFashionMnist && !requireData) {
  console.warn(
    `bundle_test: skipped: no Fashion-MNIST in ${FASHION_MNIST} (apt install dataset-fashion-mnist)`,
  );
}
const root = new URL("..", import.meta.url).pathname;

/** `deno args…` from `cwd`; stdout and stderr together. */
async function deno(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  const r = await runDeno(args, cwd);
  return { code: r.code, out: `${r.out}${r.err}` };
}

fashionMnistTest(
  "bundled tasks start without node_modules; bundled train runs a tiny epoch from an empty folder",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "xs-bundle-" });
    try {
      for (const task of ["train", "bench_step", "doctor"]) {
        const b = await deno([
          "bundle",
          "--platform",
          "deno",
          "--minify",
          `tasks/${task}.ts`,
          "-o",
          `${dir}/${task}.js`,
        ], root);
        assertEquals(b.code, 0, `bundle ${task}: ${b.out}`);
      }
      const work = `${dir}/work`;
      await Deno.mkdir(work);
      // --help parses the bundle and runs its module graph: no node_modules, no deno.json here.
      for (const task of ["bench_step", "doctor"]) {
        const h = await deno(["run", "--allow-read", "--allow-env", `${dir}/${task}.js`, "--help"], work);
        assertEquals(h.code, 0, `${task}.js --help: ${h.out}`);
      }
      const r = await deno([
        "run",
        "--allow-read",
        `--allow-write=${work}`,
        "--allow-env",
        `${dir}/train.js`,
        ...["--model", "mobilenet", "--dataset", "fashion-mnist", "--data", FASHION_MNIST],
        ...["--image-size", "16", "--batch-size", "16", "--train-limit", "64", "--test-limit", "64"],
        ...["--epochs", "1", "--out", "runs", "--log-every", "2"],
      ], work);
      assertEquals(r.code, 0, `bundled train failed:\n${r.out}`);
      assert(/training step: recorded/.test(r.out), `no recorded step in the log:\n${r.out}`);
      assert(/training steps: 1 eager, 1 recorded, 2 replayed/.test(r.out), r.out);
      const ledger = await Deno.readTextFile(`${work}/runs/results.csv`);
      const rows = ledger.trim().split("\n");
      assertEquals(rows.length, 2, ledger);
      assert(rows[1].startsWith("mobilenet,fashion-mnist,"), rows[1]);
      const names: string[] = [];
      for await (const e of Deno.readDir(`${work}/runs`)) if (e.isDirectory) names.push(e.name);
      assertEquals(names.length, 1);
      const weights = await Deno.stat(`${work}/runs/${names[0]}/weights.safetensors`);
      assert(weights.size > 2_236_682 * 4, `weights file of ${weights.size} bytes`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
