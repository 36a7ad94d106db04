/**
 * The flags every scoring command shares (`deno task score`, `deno task report`): which ledgers,
 * which datasets, λ and the normalisation bounds — declared and checked in one place so that both
 * commands accept and refuse the same values with the same words.
 *
 * @module
 */
import { choiceFlag, numberFlag } from "../runtime/cli.ts";
import { UsageError } from "../runtime/errors.ts";
import { canonicalDatasetId } from "./ledger.ts";
import { DEFAULT_LAMBDA, SUITES } from "./xscore.ts";

/** `node:util` parseArgs declarations of the shared flags. */
export const SCORING_FLAGS = {
  results: { type: "string", multiple: true },
  suite: { type: "string" },
  datasets: { type: "string" },
  lambda: { type: "string" },
  bounds: { type: "string" },
} as const;

/** The shared flags as parsed by `node:util` parseArgs. */
export interface ScoringFlagValues {
  results?: string[];
  suite?: string;
  datasets?: string;
  lambda?: string;
  bounds?: string;
}

/** What the shared flags ask for. */
export interface ScoringChoice {
  /** Ledger files: `--results a.csv b.csv` (the files after the first arrive as positionals). */
  files: string[];
  /** The datasets to score: a suite's or `--datasets`'; undefined when neither flag was given. */
  datasets?: string[];
  /** The suite's name, `custom` for `--datasets`, undefined when neither flag was given. */
  suite?: string;
  /** Variance weight λ of paper Eq. 3, in [0, 1]. */
  lambda: number;
  /** Min-max bounds: observed over the scored models, or the paper's reference table. */
  bounds: "observed" | "reference";
}

/** Checks the shared flags; a bad value throws a {@link UsageError} naming the flag. */
export function scoringChoice(v: ScoringFlagValues, positionals: string[], usage: string): ScoringChoice {
  if (positionals.length > 0 && !v.results) {
    throw new UsageError(`unexpected argument "${positionals[0]}"; pass ledgers with --results FILE`, usage);
  }
  if (v.suite !== undefined && v.datasets !== undefined) {
    throw new UsageError("give either --suite or --datasets, not both", usage);
  }
  let datasets: string[] | undefined, suite: string | undefined;
  if (v.datasets !== undefined) {
    const ids = v.datasets.split(",").map((d) => d.trim()).filter((d) => d).map(canonicalDatasetId);
    if (ids.length < 2) {
      throw new UsageError(
        `--datasets: need at least 2 datasets (V is a sample variance), got "${v.datasets}"`,
        usage,
      );
    }
    const dup = ids.find((d, i) => ids.indexOf(d) !== i);
    if (dup) throw new UsageError(`--datasets: ${dup} is listed twice`, usage);
    [datasets, suite] = [ids, "custom"];
  } else if (v.suite !== undefined) {
    if (!Object.hasOwn(SUITES, v.suite)) {
      const names = Object.keys(SUITES).join(" or ");
      throw new UsageError(`unknown suite "${v.suite}"; use ${names}, or --datasets a,b,...`, usage);
    }
    [datasets, suite] = [[...SUITES[v.suite]], v.suite];
  }
  const lambda = numberFlag(v.lambda, "lambda", usage) ?? DEFAULT_LAMBDA;
  if (lambda < 0 || lambda > 1) {
    throw new UsageError(
      `--lambda ${JSON.stringify(v.lambda)}: expected a number in [0, 1] (paper Eq. 3)`,
      usage,
    );
  }
  const bounds = choiceFlag(v.bounds, "bounds", ["observed", "reference"] as const, usage) ?? "observed";
  return { files: [...(v.results ?? []), ...positionals], datasets, suite, lambda, bounds };
}
