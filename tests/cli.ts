/**
 * Running xscore's tasks as a user does: a child `deno` process with the permissions deno.json grants
 * the task, colours off, its exit code and output collected.
 *
 * @module
 */

/** Debian's Fashion-MNIST (`apt install dataset-fashion-mnist`), the real data of the CLI tests. */
export const FASHION_MNIST = "/usr/share/datasets/fashion-mnist";

/** Whether {@link FASHION_MNIST} is installed. */
export const haveFashionMnist: boolean = await Deno.stat(`${FASHION_MNIST}/t10k-labels-idx1-ubyte.gz`)
  .then(() => true, () => false);

/**
 * A test that needs {@link FASHION_MNIST}: ignored without it, unless `XS_REQUIRE_DATA=1` (CI) makes
 * the absence a failure.
 */
export function fashionMnistTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  Deno.test({
    name,
    ignore: !haveFashionMnist && Deno.env.get("XS_REQUIRE_DATA") !== "1",
    async fn(t) {
      if (!haveFashionMnist) {
        throw new Error(
          `XS_REQUIRE_DATA=1 but ${FASHION_MNIST} has no Fashion-MNIST (apt install dataset-fashion-mnist)`,
        );
      }
      await fn(t);
    },
  });
}

/** The repository root (the child's working directory unless a test names another). */
export const REPO_ROOT: string = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** What a child `deno` process left: its exit code, stdout, and stderr trimmed. */
export interface ChildOutput {
  code: number;
  out: string;
  err: string;
}

/** Runs `deno args…` from `cwd` (the repository root by default) with colours off. */
export async function runDeno(args: string[], cwd: string = REPO_ROOT): Promise<ChildOutput> {
  const r = await new Deno.Command("deno", {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  })
    .output();
  const text = new TextDecoder();
  return { code: r.code, out: text.decode(r.stdout), err: text.decode(r.stderr).trim() };
}

/** Runs `deno args…` from the repository root; throws with the output's tail unless it exits 0. */
export async function runDenoOk(args: string[]): Promise<string> {
  const r = await runDeno(args);
  const text = `${r.out}${r.err}`;
  if (r.code !== 0) throw new Error(`deno ${args.join(" ")} exited ${r.code}:\n${text.slice(-2000)}`);
  return text;
}

/**
 * The `deno run` arguments of deno.json task `task` (its own, narrow permissions) followed by `args`.
 * `writeTo`, when given, replaces the task's `--allow-write=` list, for runs into a temporary folder.
 */
export async function taskArgs(task: string, args: string[], writeTo?: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/deno.json`));
  const command: string | undefined = config.tasks[task]?.command;
  const words = command?.split(/\s+/) ?? [];
  if (words[0] !== "deno") throw new Error(`deno.json task "${task}" is not a deno command: ${command}`);
  const perms = words.slice(1).map((
    w,
  ) => (writeTo && w.startsWith("--allow-write=") ? `--allow-write=${writeTo}` : w));
  if (writeTo && !perms.includes(`--allow-write=${writeTo}`)) {
    throw new Error(`deno.json task "${task}" grants no --allow-write= list to replace: ${command}`);
  }
  return [...perms, ...args];
}

/** Runs deno.json task `task` with its own permissions and `args`. */
export async function runTask(task: string, ...args: string[]): Promise<ChildOutput> {
  return runDeno(await taskArgs(task, args));
}

/**
 * `deno` arguments that run `tasks/train.ts` as `deno task train` does (its narrow permissions:
 * write only the cache and `out`), with `flags` and `--out out`.
 */
export function trainCliArgs(out: string, flags: string[]): string[] {
  return [
    "run",
    "--allow-read",
    `--allow-write=.cache,${out}`,
    "--allow-ffi",
    "--allow-env",
    "tasks/train.ts",
    ...flags,
    ...["--out", out],
  ];
}
