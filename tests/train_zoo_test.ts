/**
 * Every registered model trains one short epoch on a tiny real subset without error, through
 * `tasks/train.ts` as a user runs it: Fashion-MNIST, 64 training images at 32 px, batch 16 (4
 * steps), evaluated on 64 test images.
 *
 * Slow (up to minutes per model on llvmpipe), so outside the default suite; run it with
 * `XS_SLOW=1 deno test --allow-read --allow-write --allow-env --allow-ffi --allow-run=deno tests/train_zoo_test.ts`.
 */
import { assert, assertEquals } from "./assert.ts";
import { readLedgerRecords } from "../train/ledger.ts";
import "../models/zoo.ts";
import { MODELS } from "../models/registry.ts";
import { trainCliArgs } from "./cli.ts";

const FASHION_MNIST = "/usr/share/datasets/fashion-mnist";
const slow = Deno.env.get("XS_SLOW") === "1";
const haveData = Boolean(await Deno.stat(FASHION_MNIST).catch(() => undefined));

for (const id of Object.keys(MODELS).sort()) {
  Deno.test({
    name: `${id}: one short training epoch on Fashion-MNIST (64 images) runs and lands in the ledger`,
    ignore: !slow || !haveData,
    async fn() {
      const out = await Deno.makeTempDir({ prefix: `xscore-zoo-${id}-` });
      const args = trainCliArgs(out, [
        ...["--model", id, "--dataset", "fashion-mnist", "--image-size", "32", "--batch-size", "16"],
        ...["--train-limit", "64", "--test-limit", "64", "--epochs", "1"],
      ]);
      const proc = await new Deno.Command("deno", { args, stdout: "piped", stderr: "piped" }).output();
      const stderr = new TextDecoder().decode(proc.stderr);
      assertEquals(proc.code, 0, `${id} failed:\n${stderr.slice(-2000)}`);
      const rows = await readLedgerRecords(`${out}/results.csv`);
      assertEquals(rows.length, 1);
      assertEquals(rows[0].model, id);
      const acc = Number(rows[0].accuracy);
      assert(acc >= 0 && acc <= 100, `accuracy ${acc}`);
      await Deno.remove(out, { recursive: true });
    },
  });
}
