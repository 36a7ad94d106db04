/**
 * CLI paths as a user meets them, on tiny Fashion-MNIST runs: exit code 3 through the train CLI (a
 * learning rate of 1e9 makes the weights and BatchNorm statistics non-finite within the first epoch:
 * exit 3, one line naming the first bad tensor, no ledger row, no weights, no checkpoint of the
 * diverged state — RELIABILITY.md); a `--kernels stock` run and a `--preset reference` run end with a
 * ledger row of their configuration; `bench:step --json` writes the rows its docs promise. Needs
 * Fashion-MNIST (XS_REQUIRE_DATA=1 makes it required).
 */
import { assert, assertEquals } from "./assert.ts";
import { fashionMnistTest, trainCliArgs } from "./cli.ts";

fashionMnistTest(
  "train CLI: divergence (lr 1e9) is exit 3, one line naming the tensor, nothing of the run kept",
  async () => {
    const out = await Deno.makeTempDir({ prefix: "xscore-diverge-" });
    try {
      const args = trainCliArgs(out, [
        ...["--model", "mobilenet", "--dataset", "fashion-mnist", "--image-size", "16", "--batch-size", "16"],
        ...["--train-limit", "64", "--test-limit", "32", "--epochs", "1", "--lr-max", "1e9"],
      ]);
      const p = await new Deno.Command("deno", { args, stdout: "piped", stderr: "piped" }).output();
      const err = new TextDecoder().decode(p.stderr).trim();
      assertEquals(p.code, 3, err);
      // stderr may also carry the one-off cache preparation's progress (a fresh clone); the failure
      // itself is one line and no stack trace.
      const errors = err.split("\n").filter((l) => l.startsWith("error:"));
      assertEquals(errors.length, 1, err);
      assert(/^error: training diverged: \S+ holds \d+ NaN\/Inf values/.test(errors[0]), errors[0]);
      assert(!/^\s+at /m.test(err), `stack trace:\n${err}`);
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
);

async function trainTiny(
  flags: string[],
): Promise<{ code: number; log: string; out: string; rows: string[] }> {
  const out = await Deno.makeTempDir({ prefix: "xscore-cli-" });
  const args = trainCliArgs(out, [
    ...["--model", "mobilenet", "--dataset", "fashion-mnist", "--image-size", "16", "--batch-size", "16"],
    ...["--train-limit", "48", "--test-limit", "32", "--epochs", "1", ...flags],
  ]);
  const p = await new Deno.Command("deno", { args, stdout: "piped", stderr: "piped" }).output();
  const log = new TextDecoder().decode(p.stdout) + new TextDecoder().decode(p.stderr);
  const ledger = await Deno.readTextFile(`${out}/results.csv`).catch(() => "");
  return { code: p.code, log, out, rows: ledger.trim().split("\n").slice(1) };
}

fashionMnistTest(
  "train CLI: --kernels stock runs eagerly end to end; --preset reference records its preset",
  async () => {
    const stock = await trainTiny(["--kernels", "stock"]);
    try {
      assertEquals(stock.code, 0, stock.log);
      assert(/training step: eager \(stock kernels\)/.test(stock.log), stock.log);
      assert(/training steps: 3 eager/.test(stock.log), stock.log);
      assertEquals(stock.rows.length, 1, stock.rows.join("\n"));
      assert(stock.rows[0].startsWith("mobilenet,fashion-mnist,"), stock.rows[0]);
    } finally {
      await Deno.remove(stock.out, { recursive: true });
    }
    const ref = await trainTiny(["--preset", "reference"]);
    try {
      assertEquals(ref.code, 0, ref.log);
      assert(/preset reference: mobilenet on fashion-mnist/.test(ref.log), ref.log);
      assertEquals(ref.rows.length, 1);
      assert(ref.rows[0].split(",")[6].startsWith("reference;"), ref.rows[0]);
    } finally {
      await Deno.remove(ref.out, { recursive: true });
    }
  },
);

Deno.test("bench:step --json: a recorded and an eager row of the trainer's step, with the promised fields", async () => {
  const dir = await Deno.makeTempDir({ prefix: "xscore-bench-" });
  try {
    const json = `${dir}/rows.json`;
    const p = await new Deno.Command("deno", {
      args: [
        ...["run", `--allow-read=.,${dir}`, `--allow-write=${dir}`, "tasks/bench_step.ts"],
        ...["--model", "mobilenet", "--image-size", "8", "--batch-size", "1", "--steps", "1", "--json", json],
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(p.code, 0, new TextDecoder().decode(p.stderr));
    const rows = JSON.parse(await Deno.readTextFile(json)) as Record<string, number | string>[];
    assertEquals(rows.map((r) => r.step), ["eager", "recorded"]);
    for (const r of rows) {
      for (const k of ["model", "image_size", "batch_size", "kernels", "step", "ms_median", "host_ms"]) {
        assert(k in r, `${k} missing in ${JSON.stringify(r)}`);
      }
      for (const k of ["dispatches", "submits", "passes"]) assert((r[k] as number) > 0, `${k}: ${r[k]}`);
    }
    const [eager, recorded] = rows;
    assertEquals(recorded.dispatches, eager.dispatches, "the same program either way");
    assertEquals([recorded.submits, recorded.passes, recorded.bind_groups, recorded.buffers_created], [
      1,
      1,
      0,
      0,
    ]);
    assert(
      (eager.passes as number) > 1 && (eager.bind_groups as number) === eager.dispatches,
      JSON.stringify(eager),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
