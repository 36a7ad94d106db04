/**
 * User-facing errors: one clear line, a distinct exit code, no stack trace.
 *
 * @module
 */

/** An error caused by the user's input or environment; tasks print its message alone and exit 2. */
export class UserError extends Error {
  /** Process exit code for this error (2 = bad input or environment). */
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = "UserError";
    this.exitCode = exitCode;
  }
}

/** A bad command line (unknown flag, bad value): one line, then the task's usage, exit 2. */
export class UsageError extends UserError {
  /** The task's usage text. */
  readonly usage: string;
  constructor(message: string, usage: string) {
    super(message, 2);
    this.name = "UsageError";
    this.usage = usage;
  }
}

/** `--help` was given: runMain prints the usage to stdout and exits 0. */
export class HelpRequested extends Error {
  /** The task's usage text. */
  readonly usage: string;
  constructor(usage: string) {
    super("help requested");
    this.name = "HelpRequested";
    this.usage = usage;
  }
}

/**
 * File-system errors that come from the user's paths or environment, never from a bug: their
 * messages already name the path (`Is a directory (os error 21): open '/x'`), so one line is enough.
 */
const ENVIRONMENT_ERRORS = [
  "NotFound",
  "PermissionDenied",
  "NotCapable",
  "AlreadyExists",
  "IsADirectory",
  "NotADirectory",
  "FilesystemLoop",
  "InvalidData",
  "UnexpectedEof",
  "WriteZero",
  "StorageFull",
  "ReadOnlyFileSystem",
  "FileTooLarge",
] as const;

/** One line for a `node:util` parseArgs error (its messages span lines and suggest `--`). */
export function describeParseError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const msg = String(e?.message ?? err);
  const flag = msg.match(/'(-{1,2}[^' ]+)/)?.[1];
  switch (e?.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown flag ${flag ?? msg.split("\n")[0]}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return /argument missing/.test(msg)
        ? `${flag ?? "a flag"} needs a value`
        : `${flag ?? "a flag"} takes no value`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument ${msg.match(/'([^']*)'/)?.[1] ?? ""}`.trim();
  }
  return msg.split("\n")[0].replace(/\.$/, "");
}

/** The one-line message and exit code for `err` when it is a user/environment error, else undefined. */
function userFacing(err: unknown): { message: string; exitCode: number } | undefined {
  if (err instanceof UserError) return { message: err.message, exitCode: err.exitCode };
  const errors = Deno.errors as unknown as Record<string, ErrorConstructor | undefined>;
  for (const name of ENVIRONMENT_ERRORS) {
    const cls = errors[name];
    if (cls && err instanceof cls) {
      const line = String((err as Error).message).split("\n")[0];
      const hint = name === "NotCapable"
        ? "; the task's permissions are in deno.json (see README), choose a path they allow"
        : "";
      return { message: `${line}${hint}`, exitCode: 2 };
    }
  }
  return undefined;
}

/**
 * Runs a task's main function: `--help` ({@link HelpRequested}) prints the usage and exits 0; a
 * {@link UserError} or a file-system error of the user's environment prints `error: <message>` (a
 * {@link UsageError} adds the usage) and exits with its code (2, or 3 for divergence); any other
 * error is a bug: its stack is printed and the exit code is 1.
 */
export async function runMain(main: () => Promise<void> | void): Promise<void> {
  try {
    await main();
  } catch (err) {
    if (err instanceof HelpRequested) {
      console.log(err.usage);
      Deno.exit(0);
    }
    const user = userFacing(err);
    if (user) {
      console.error(`error: ${user.message}`);
      if (err instanceof UsageError) console.error(err.usage);
      Deno.exit(user.exitCode);
    }
    console.error(err);
    Deno.exit(1);
  }
}
