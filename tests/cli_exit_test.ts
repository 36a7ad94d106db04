/**
 * Exit code 3 through the train CLI, as a user meets it: a learning rate of 1e9 makes the weights
 * and BatchNorm statistics non-finite within the first epoch. The run must stop with exit 3 and one
 * line naming the first bad tensor, and leave no ledger row, no weights and no checkpoint of the
 * diverged state (RELIABILITY.md). Needs Fashion-MNIST (XS_REQUIRE_DATA=1 makes it required).
 */
import { assert, assertEquals } from "./assert.ts";
import { trainCliArgs } from "./fixtures.ts";

const FASHION_MNIST = "/usr/share/datasets/fashion-mnist";
const haveData = await Deno.stat(`${FASHION_MNIST}/t10k-labels-idx1-ubyte.gz`).then(() => true, () => false);

Deno.test({
  name: "train CLI: divergence (lr 1e9) is exit 3, one line naming the tensor, nothing of the run kept",
  ignore: !haveData && Deno.env.get("XS_REQUIRE_DATA") !== "1",
  async fn() {
    assert(haveData, `XS_REQUIRE_DATA=1 but ${FASHION_MNIST} has no Fashion-MNIST`);
    const out = await Deno.makeTempDir({ prefix: "xscore-diverge-" });
    try {
      const args = trainCliArgs(out, [
        ...["--model", "mobilenet", "--dataset", "fashion-mnist", "--image-size", "16", "--batch-size", "16"],
        ...["--train-limit", "64", "--test-limit", "32", "--epochs", "1", "--lr-max", "1e9"],
      ]);
      const p = await new Deno.Command("deno", { args, stdout: "piped", stderr: "piped" }).output();
      const err = new TextDecoder().decode(p.stderr).trim();
      assertEquals(p.code, 3, err);
      const lines = err.split("\n");
      assertEquals(lines.length, 1, err);
      assert(/^error: training diverged: \S+ holds \d+ NaN\/Inf values/.test(lines[0]), lines[0]);
      const names: string[] = [];
      for await (const e of Deno.readDir(out)) names.push(e.name);
      assert(!names.includes("results.csv"), `a ledger was written: ${names}`);
      for (const run of names) {
        for (const f of ["weights.safetensors", "checkpoint.safetensors", "done.json"]) {
          const kept = await Deno.stat(`${out}/${run}/${f}`).then(() => true, () => false);
          assert(!kept, `${run}/${f} was written`);
        }
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
