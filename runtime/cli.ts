/**
 * The command-line convention every task follows (CONTRIBUTING.md): `--help` prints the usage and
 * exits 0; an unknown flag, a missing value or a bad value prints one line plus the usage and exits
 * 2; a path a task may not write is refused before any work starts, naming what would work; input
 * files are read with a size bound, so `/dev/zero` or a decompression bomb cannot hang a task.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { describeParseError, HelpRequested, UsageError, UserError } from "./errors.ts";
import { writeFilesAtomic } from "./fs.ts";

export { HelpRequested, UsageError } from "./errors.ts";

/** Option table in `node:util` `parseArgs` form. */
export type CliOptions = NonNullable<ParseArgsConfig["options"]>;

/** Declared flags of a task, with its usage text. */
export interface CliSpec<O extends CliOptions> {
  /** Flags (`help` is added when missing). */
  options: O;
  /** The usage text printed by `--help` and after a usage error. */
  usage: string;
  /** Accept positional arguments (default: refuse them). */
  allowPositionals?: boolean;
}

/** parseArgs declarations of flags that take a value (`--name VALUE`), for {@link CliSpec.options}. */
export function valueFlags<K extends string>(...names: K[]): Record<K, { type: "string" }> {
  return Object.fromEntries(names.map((n) => [n, { type: "string" }])) as Record<K, { type: "string" }>;
}

/**
 * Parses `args` against `spec`. `--help` (or `-h`) throws {@link HelpRequested} (runMain prints the
 * usage, exit 0); an unknown flag, a flag missing its value, a value given to a boolean flag or a
 * stray positional throws {@link UsageError} (one line plus the usage, exit 2).
 */
export function parseCli<O extends CliOptions>(args: string[], spec: CliSpec<O>) {
  const options = { ...spec.options } as CliOptions;
  if (!options.help) options.help = { type: "boolean", short: "h" };
  // --help anywhere wins over other mistakes on the line (a user asking for help gets it).
  if (args.some((a) => a === "--help" || a === "-h")) throw new HelpRequested(spec.usage);
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options,
      strict: true,
      allowPositionals: spec.allowPositionals ?? false,
    });
  } catch (err) {
    throw new UsageError(describeParseError(err), spec.usage);
  }
  return parsed as unknown as {
    values: ReturnType<typeof parseArgs<{ options: O; strict: true }>>["values"];
    positionals: string[];
  };
}

/**
 * An integer flag: undefined stays undefined; anything but an integer in `min..max` is a
 * {@link UsageError} naming the flag and the accepted range.
 */
export function intFlag(
  value: string | undefined,
  name: string,
  usage: string,
  range: { min?: number; max?: number } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const min = range.min ?? 0, max = range.max ?? Number.MAX_SAFE_INTEGER;
  const n = /^[+-]?\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const want = range.max === undefined ? `an integer >= ${min}` : `an integer in ${min}..${max}`;
    throw new UsageError(`--${name} ${JSON.stringify(value)}: expected ${want}`, usage);
  }
  return n;
}

/** A finite number flag greater than `above` (default: any finite number). */
export function numberFlag(
  value: string | undefined,
  name: string,
  usage: string,
  above = -Infinity,
): number | undefined {
  if (value === undefined) return undefined;
  const n = value.trim() === "" ? NaN : Number(value);
  if (!Number.isFinite(n) || !(n > above)) {
    const want = above === -Infinity ? "a number" : `a number > ${above}`;
    throw new UsageError(`--${name} ${JSON.stringify(value)}: expected ${want}`, usage);
  }
  return n;
}

/** A flag restricted to `choices`. */
export function choiceFlag<T extends string>(
  value: string | undefined,
  name: string,
  choices: readonly T[],
  usage: string,
): T | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} ${JSON.stringify(value)}: expected one of ${choices.join(", ")}`, usage);
  }
  return value as T;
}

/**
 * Refuses, before any work, an output path that this process may not write or that runs through a
 * file: `flag` and `task` name what the user typed, `allowed` the directories the task's deno.json
 * entry grants. A directory that does not exist yet is fine (it is created on the first write).
 */
export async function assertWritableDir(
  path: string,
  flag: string,
  task: string,
  allowed: readonly string[],
): Promise<void> {
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) {
    throw new UserError(`${flag} ${JSON.stringify(path)}: control characters in a path; choose another name`);
  }
  const state = (await Deno.permissions.query({ name: "write", path })).state;
  if (state !== "granted") {
    throw new UserError(
      `${flag} ${path}: deno task ${task} may write only under ${
        allowed.map((a) => `${a}/`).join(" and ")
      } ` +
        `(deno.json); pass ${flag} ${allowed[0]}/<name>, or run the task's script with deno run ` +
        `--allow-write=${path} ... to write elsewhere`,
    );
  }
  // Walk up to the first existing component: it must be a directory (not a file or a dangling link).
  let p = path.replace(/\/+$/, "") || "/";
  for (;;) {
    let info: Deno.FileInfo | undefined;
    try {
      info = await Deno.stat(p);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) info = undefined;
      else if (err instanceof Deno.errors.NotADirectory) {
        throw new UserError(`${flag} ${path}: a part of the path is a file, not a directory`);
      } else if (err instanceof Deno.errors.FilesystemLoop) {
        throw new UserError(`${flag} ${path}: symbolic link loop in the path`);
      } else throw err;
    }
    if (info) {
      if (!info.isDirectory) {
        throw new UserError(
          `${flag} ${path}: ${p === path ? "is" : `${p} is`} a file, not a directory; choose a directory`,
        );
      }
      return;
    }
    const up = p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : ".";
    if (up === p || up === "") return;
    p = up;
  }
}

/**
 * Writes one command's output files (`name` relative to folder `out`) all or none
 * ({@link writeFilesAtomic}): an `out` that is a file, or a target that is a directory, is a
 * one-line {@link UserError} and leaves every earlier output untouched. Returns the paths written.
 */
export async function writeOutputs(
  out: string,
  files: readonly [name: string, data: string | Uint8Array][],
): Promise<string[]> {
  const targets = files.map(([name, data]) => [`${out}/${name}`, data] as [string, string | Uint8Array]);
  try {
    await Deno.mkdir(out, { recursive: true });
    await writeFilesAtomic(targets);
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists || err instanceof Deno.errors.NotADirectory) {
      throw new UserError(`--out ${out}: exists and is not a directory`);
    }
    if (err instanceof Deno.errors.IsADirectory) {
      throw new UserError(
        `${err.message.split(" exists")[0]}: is a directory; remove it or use another --out`,
      );
    }
    throw err;
  }
  return targets.map(([path]) => path);
}

/**
 * Reads a whole input file, refusing (one-line {@link UserError}) anything that is not a regular
 * file (a device such as `/dev/zero`, a FIFO, a directory) or larger than `maxBytes`.
 */
export async function readFileBounded(path: string | URL, maxBytes: number): Promise<Uint8Array> {
  const info = await Deno.stat(path);
  if (info.isDirectory) throw new UserError(`${path}: is a directory, not a file`);
  if (!info.isFile) {
    throw new UserError(`${path}: not a regular file (a device or pipe); pass the file itself`);
  }
  if (info.size > maxBytes) {
    throw new UserError(
      `${path}: ${info.size} bytes, more than the ${maxBytes} this input can be; is it the right file?`,
    );
  }
  const file = await Deno.open(path, { read: true });
  try {
    // Never more than the size seen by stat, even if the file grows while being read.
    const out = new Uint8Array(info.size);
    let off = 0;
    while (off < out.length) {
      const n = await file.read(out.subarray(off));
      if (n === null) break;
      off += n;
    }
    return off === out.length ? out : out.subarray(0, off);
  } finally {
    file.close();
  }
}

/** {@link readFileBounded} decoded as UTF-8 (a BOM is kept for the CSV parser to drop). */
export async function readTextFileBounded(path: string | URL, maxBytes: number): Promise<string> {
  return new TextDecoder().decode(await readFileBounded(path, maxBytes));
}

/** Bound of small text inputs (lists, CSV metadata, split files, ledgers): 64 MiB. */
export const MAX_TEXT_INPUT_BYTES = 64 * 2 ** 20;

/**
 * Gunzips `data` with the output bounded by `maxBytes`. A truncated stream, a corrupt stream, trailing
 * junk or an output over the bound is a one-line {@link UserError} naming `name`.
 */
export async function gunzipBounded(data: Uint8Array, maxBytes: number, name: string): Promise<Uint8Array> {
  const stream = new Blob([data as BlobPart]).stream().pipeThrough(new DecompressionStream("gzip"));
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new UserError(
          `${name}: decompresses to more than ${maxBytes} bytes; not the expected file (or a gzip bomb)`,
        );
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(
      `${name}: not a valid gzip file (${
        String((err as Error)?.message ?? err).split("\n")[0]
      }); download it again`,
    );
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) out.set(c, off), off += c.length;
  return out;
}
