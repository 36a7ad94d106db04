/**
 * Resume after a real SIGKILL, through `deno task train` as a user runs it: a tiny Fashion-MNIST
 * run (48 images at 32 px, batch 8: 6 steps per epoch, 2 epochs) is killed by the OS signal while
 * epoch 2 is under way, resumed with `--resume`, and must end with a weights file byte-identical to
 * an uninterrupted run's, with one ledger row each. The in-process resume test (train_test.ts)
 * covers the loop's state; this one covers what is on disk when a process dies at an arbitrary
 * point (atomic checkpoint, no half-written ledger or done marker).
 */
import { assert, assertEquals } from "./assert.ts";
import { readLedgerRecords } from "../train/ledger.ts";
import { fashionMnistTest, runDenoOk, trainCliArgs } from "./cli.ts";

function trainArgs(out: string, extra: string[] = []): string[] {
  return trainCliArgs(out, [
    ...["--model", "tinynet", "--dataset", "fashion-mnist", "--image-size", "32", "--batch-size", "8"],
    ...["--train-limit", "48", "--test-limit", "16", "--epochs", "2", "--seed", "5", "--log-every", "1"],
    ...extra,
  ]);
}

/** A whole run (exit 0 asserted); returns what it printed. */
function train(out: string, extra: string[] = []): Promise<string> {
  return runDenoOk(trainArgs(out, extra));
}

/** Starts a run and SIGKILLs it once it reports step 2 of epoch 2; returns what it printed. */
async function trainKilledInEpoch2(out: string): Promise<string> {
  const child = new Deno.Command("deno", { args: trainArgs(out), stdout: "piped", stderr: "null" }).spawn();
  let printed = "", killed = false;
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    printed += decoder.decode(chunk, { stream: true });
    if (!killed && /epoch 2\/2 step 2\/6/.test(printed)) {
      child.kill("SIGKILL");
      killed = true;
    }
  }
  const status = await child.status;
  assert(killed, `the run never reached epoch 2 step 2:\n${printed.slice(-2000)}`);
  assertEquals(status.signal, "SIGKILL", `exit ${status.code}`);
  return printed;
}

fashionMnistTest(
  "train CLI: SIGKILL during epoch 2, then --resume, ends with byte-identical weights",
  async () => {
    const full = await Deno.makeTempDir({ prefix: "xscore-full-" });
    const cut = await Deno.makeTempDir({ prefix: "xscore-cut-" });
    try {
      await train(full);
      await trainKilledInEpoch2(cut);
      const [run] = [...Deno.readDirSync(cut)].filter((e) => e.isDirectory).map((e) => `${cut}/${e.name}`);
      assert(run, "the killed run left no run directory");
      const left = [...Deno.readDirSync(run)].map((e) => e.name).sort();
      assert(left.includes("checkpoint.safetensors"), `no checkpoint after the kill: ${left}`);
      assert(!left.includes("done.json") && !left.includes("weights.safetensors"), `finished? ${left}`);
      assert(!left.some((f) => f.endsWith(".tmp")), `a temp file survived as a result: ${left}`);
      assertEquals((await readLedgerRecords(`${cut}/results.csv`)).length, 0, "ledger row of a killed run");

      const resumed = await train(cut, ["--resume"]);
      assert(/resumed from .* after epoch 1\/2/.test(resumed), `did not resume after epoch 1:\n${resumed}`);
      const runName = run.slice(cut.length + 1);
      const [a, b] = [`${full}/${runName}/weights.safetensors`, `${run}/weights.safetensors`];
      assertEquals(
        await Deno.readFile(b),
        await Deno.readFile(a),
        "weights differ from the uninterrupted run",
      );
      const [rowsA, rowsB] = [
        await readLedgerRecords(`${full}/results.csv`),
        await readLedgerRecords(`${cut}/results.csv`),
      ];
      assertEquals(rowsB.length, 1);
      assertEquals(rowsB[0].accuracy, rowsA[0].accuracy);
      assertEquals(rowsB[0].best_accuracy, rowsA[0].best_accuracy);

      // Resuming a finished run changes nothing (and never duplicates its ledger row).
      await train(cut, ["--resume"]);
      assertEquals((await readLedgerRecords(`${cut}/results.csv`)).length, 1);
    } finally {
      await Deno.remove(full, { recursive: true });
      await Deno.remove(cut, { recursive: true });
    }
  },
);
