/**
 * `imagefolder:NAME`: the name becomes the ledger's dataset column, and ledgers compare dataset names
 * up to case, punctuation and the paper's spellings (score/ledger.ts `canonicalDatasetId`). A custom
 * name that a ledger would read as a registered dataset is refused, so a user's folder is never
 * scored as a paper dataset.
 *
 * @module
 */
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { runTask } from "./cli.ts";
import { UserError } from "../runtime/errors.ts";
import { DATASETS, getDataset } from "../data/datasets.ts";
import { canonicalDatasetId } from "../score/ledger.ts";

/** Spellings of registered datasets: ids, the paper's and the reference code's names, other cases. */
const CLASHING: [string, string][] = [
  ["cifar10", "cifar10"],
  ["CIFAR-10", "cifar10"],
  ["Cifar_100", "cifar100"],
  ["imagenette", "imagenette160"],
  ["Imagenette-160", "imagenette160"],
  ["dogs", "stanford-dogs"],
  ["Stanford.Dogs", "stanford-dogs"],
  ["HAM10k", "ham10000"],
  ["Indoor67", "mit-indoor67"],
  ["MIT_Indoor-67", "mit-indoor67"],
  ["MiniPlaces", "miniplaces"],
  ["fashion_mnist", "fashion-mnist"],
  ["imagefolder", "imagefolder"],
  ["Image-Folder", "imagefolder"],
];

/** Names of one's own datasets, near registered ones but read as themselves by a ledger. */
const OWN = ["pets", "my-set", "dogs2", "cifar10-c", "indoor", "Flowers102", "places365", "mnist"];

Deno.test("imagefolder:NAME refuses, in one line, every name a ledger reads as a registered dataset", () => {
  for (const [name, id] of CLASHING) {
    const err = assertThrows(() => getDataset(`imagefolder:${name}`), UserError);
    assert(!err.message.includes("\n"), `${name}: one line: ${err.message}`);
    assert(err.message.includes(`registered dataset ${id}`), `${name}: names ${id}: ${err.message}`);
    assert(err.message.includes("pick another NAME"), `${name}: says what to do: ${err.message}`);
  }
});

Deno.test("imagefolder:NAME keeps names a ledger reads as themselves", () => {
  for (const name of OWN) {
    const info = getDataset(`imagefolder:${name}`);
    assertEquals([info.id, info.base], [name, "imagefolder"]);
    assertEquals(canonicalDatasetId(name), name, `${name}: the ledger keeps the name`);
  }
});

Deno.test("no accepted imagefolder:NAME is scored as a registered dataset (the ledger's own canonicalisation)", () => {
  // Every registered id and every clashing spelling, in the variants a user might type.
  const bases = [...Object.keys(DATASETS), ...CLASHING.map(([n]) => n), ...OWN];
  const variants = (n: string) => [n, n.toUpperCase(), n.replace(/-/g, "_"), n.replace(/-/g, ""), `${n}.`];
  let accepted = 0;
  for (const name of bases.flatMap(variants)) {
    let id: string;
    try {
      id = getDataset(`imagefolder:${name}`).id;
    } catch (err) {
      if (err instanceof UserError) continue;
      throw err;
    }
    accepted++;
    assert(!(canonicalDatasetId(id) in DATASETS), `${name} would be scored as ${canonicalDatasetId(id)}`);
  }
  assert(accepted >= OWN.length, `own names accepted (${accepted})`);
});

Deno.test("prepare --name dogs: one line on stderr, exit 2, nothing written", async () => {
  const r = await runTask("prepare", "--dataset", "imagefolder", "--name", "dogs", "--root", "/nonexistent");
  assertEquals(r.code, 2, r.err);
  assertEquals(r.err.split("\n").length, 1, r.err);
  assert(r.err.includes("stanford-dogs") && r.err.includes("pick another NAME"), r.err);
  assert(!(await Deno.stat(".cache/imagefolder-dogs").catch(() => undefined)), "no cache folder");
});
