/**
 * Dataset names as the paper, the reference code and users spell them, mapped to registry ids. One
 * table for the two layers that compare names: score/ (ledger rows, `--datasets`) and data/ (which
 * refuses an `imagefolder:NAME` that a ledger would read as a paper dataset).
 *
 * @module
 */

/** `name` for comparison: lower case, letters and digits only ("Imagenette-160" → "imagenette160"). */
export function squashId(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, "");
}

/** Spellings used in the paper and the reference code, squashed ({@link squashId}). */
const DATASET_ALIASES: Record<string, string> = {
  cifar10: "cifar10",
  imagenette160: "imagenette160",
  imagenette: "imagenette160",
  cifar100: "cifar100",
  ham10000: "ham10000",
  ham10k: "ham10000",
  stanforddogs: "stanford-dogs",
  dogs: "stanford-dogs",
  miniplaces: "miniplaces",
  mitindoor67: "mit-indoor67",
  indoor67: "mit-indoor67",
  fashionmnist: "fashion-mnist",
};

/** The canonical id of a dataset name as the paper spells it ("Imagenette-160", "HAM10k"); other ids unchanged. */
export function canonicalDatasetId(name: string): string {
  return DATASET_ALIASES[squashId(name)] ?? name.trim();
}
