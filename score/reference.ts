/**
 * The paper's Table 3 as shipped in data/reference/paper-table3.csv: the default ledger of
 * `deno task score` and the fixed normalisation anchors of `--bounds reference` (paper §4.1).
 *
 * @module
 */
import { UserError } from "../runtime/errors.ts";
import { aggregateSeeds, buildMatrix, readLedger } from "./ledger.ts";
import { type Bounds, observedBounds } from "./xscore.ts";

/** The shipped Table 3 (as printed), the default input and the source of `--bounds reference`. */
export const REFERENCE_TABLE: URL = new URL("../data/reference/paper-table3.csv", import.meta.url);
/** How the shipped table is named in messages (paths are relative to the repository root). */
export const REFERENCE_LABEL = "data/reference/paper-table3.csv";

/** Table 3's column extremes for `datasets` (paper §4.1), from the shipped reference table. */
export async function referenceBounds(datasets: readonly string[]): Promise<Bounds> {
  const cells = aggregateSeeds(await readLedger(REFERENCE_TABLE, REFERENCE_LABEL));
  const known = new Set(cells.map((c) => c.dataset));
  const unknown = datasets.filter((d) => !known.has(d));
  if (unknown.length > 0) {
    throw new UserError(
      `--bounds reference: ${REFERENCE_LABEL} has no anchors for ${
        unknown.join(", ")
      }; use --bounds observed`,
    );
  }
  return observedBounds(buildMatrix(cells, datasets, { files: [REFERENCE_LABEL] }).matrix);
}
