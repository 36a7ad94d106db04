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

/**
 * Runs a task's main function: a {@link UserError} prints `error: <message>` and exits with its
 * code; any other error prints its stack and exits 1.
 */
export async function runMain(main: () => Promise<void> | void): Promise<void> {
  try {
    await main();
  } catch (err) {
    if (err instanceof UserError) {
      console.error(`error: ${err.message}`);
      Deno.exit(err.exitCode);
    }
    console.error(err);
    Deno.exit(1);
  }
}
