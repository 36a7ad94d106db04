/**
 * Run identity: a run folder is named by its configuration (train/run.ts `runName`), so `--resume`
 * after changing a flag would look in another folder and silently start afresh. Before that
 * happens, {@link assertNoDifferingRun} looks for an unfinished run of the same model, dataset and
 * seed under another configuration and names the fields that differ.
 *
 * @module
 */
import { join } from "node:path";
import { UserError } from "../runtime/errors.ts";

/** Flattens nested objects to `a.b.c` → value (arrays compared as JSON). */
function flatten(o: unknown, prefix = "", out: Record<string, string> = {}): Record<string, string> {
  if (o && typeof o === "object" && !Array.isArray(o)) {
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
      flatten(v, prefix ? `${prefix}.${k}` : k, out);
    }
  } else if (prefix) out[prefix] = JSON.stringify(o);
  return out;
}

/** The fields (dotted paths) whose values differ between two configurations, with both values. */
function differingFields(
  saved: Record<string, unknown>,
  now: Record<string, unknown>,
): { field: string; saved: string | undefined; now: string | undefined }[] {
  const a = flatten(saved), b = flatten(now);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => a[k] !== b[k]).map((k) => ({ field: k, saved: a[k], now: b[k] }));
}

/**
 * For `--resume` when `dir` holds no checkpoint: throws a {@link UserError} (exit 2) if another
 * folder of `out` named `<prefix>…<suffix>` (same model, dataset and seed) holds an unfinished
 * run (a checkpoint, no done.json), naming the configuration fields that differ from `config`
 * (as recorded in that folder's preset.json). Returns quietly when there is none.
 */
export async function assertNoDifferingRun(
  out: string,
  dir: string,
  prefix: string,
  suffix: string,
  config: Record<string, unknown>,
): Promise<void> {
  let entries: Deno.DirEntry[] = [];
  try {
    entries = await Array.fromAsync(Deno.readDir(out));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  const self = dir.slice(dir.lastIndexOf("/") + 1);
  for (const e of entries.sort((x, y) => x.name < y.name ? -1 : 1)) {
    if (!e.isDirectory || e.name === self || !e.name.startsWith(prefix) || !e.name.endsWith(suffix)) continue;
    const other = join(out, e.name);
    const has = (f: string) => Deno.stat(join(other, f)).then(() => true, () => false);
    if (!(await has("checkpoint.safetensors")) || (await has("done.json"))) continue;
    let saved: Record<string, unknown>;
    try {
      saved = JSON.parse(await Deno.readTextFile(join(other, "preset.json")));
    } catch {
      continue;
    }
    const diff = differingFields(saved, config);
    const shown = diff.slice(0, 6).map((d) => `${d.field} ${d.saved ?? "(unset)"} → ${d.now ?? "(unset)"}`);
    throw new UserError(
      `--resume: no checkpoint for this configuration in ${dir}, but ${other} holds an unfinished run of ` +
        `the same model, dataset and seed with different ${shown.join(", ")}${
          diff.length > 6 ? ", …" : ""
        }; ` +
        `resume it with its own flags, or drop --resume to start this configuration afresh`,
    );
  }
}
