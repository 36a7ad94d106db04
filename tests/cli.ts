/**
 * Running xscore's tasks as a user does: a child `deno` process with the permissions deno.json grants
 * the task, colours off, its exit code and output collected. Also the shared skip rules of tests that
 * need something outside the repository: Debian's Fashion-MNIST ({@link fashionMnistTest}) and a
 * Python reference ({@link pythonProbe}, {@link pythonTest}).
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
    ignore: !haveFashionMnist && !requireData,
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

/** Whether a missing {@link FASHION_MNIST} fails the tests that need it (`XS_REQUIRE_DATA=1`, CI). */
export const requireData: boolean = Deno.env.get("XS_REQUIRE_DATA") === "1";

/** The Python that runs the reference scripts: `XS_PYTHON`, or /usr/bin/python3. */
export const PYTHON: string = Deno.env.get("XS_PYTHON") ?? "/usr/bin/python3";

/** Whether a missing Python reference fails the tests that need it (`XS_REQUIRE_TORCH=1`, CI). */
export const requireTorch: boolean = Deno.env.get("XS_REQUIRE_TORCH") === "1";

/**
 * Why `PYTHON args…` cannot serve as a reference here, or undefined when it can (it exits 0): no
 * `--allow-run` permission for {@link PYTHON}, it does not start, or it exits non-zero (then the
 * reason is `${PYTHON} ${cannot}`, followed by the probe's stdout when it printed one).
 */
export async function pythonProbe(args: string[], cannot: string): Promise<string | undefined> {
  if ((await Deno.permissions.query({ name: "run", command: PYTHON })).state !== "granted") {
    return `no --allow-run permission for ${PYTHON}`;
  }
  try {
    const out = await new Deno.Command(PYTHON, { args, stdout: "piped", stderr: "null" }).output();
    if (out.code === 0) return undefined;
    const said = new TextDecoder().decode(out.stdout).trim();
    return `${PYTHON} ${cannot}${said ? `: ${said}` : ""}`;
  } catch (err) {
    return `${PYTHON} does not run: ${(err as Error).message}`;
  }
}

/**
 * A test that needs a Python reference whose {@link pythonProbe} said `missing`: ignored while it is
 * missing, unless `XS_REQUIRE_TORCH=1` (CI), which makes it a failure naming `needs` and the reason.
 */
export function pythonTest(
  test: { name: string; missing: string | undefined; needs: string; sanitizeResources?: boolean },
  fn: (t: Deno.TestContext) => void | Promise<void>,
): void {
  Deno.test({
    name: test.name,
    ignore: test.missing !== undefined && !requireTorch,
    sanitizeResources: test.sanitizeResources ?? true,
    async fn(t) {
      if (test.missing !== undefined) {
        throw new Error(`${test.needs} required (XS_REQUIRE_TORCH=1): ${test.missing}`);
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
export function taskArgsSync(task: string, args: string[], writeTo?: string): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${REPO_ROOT}/deno.json`));
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

/** {@link taskArgsSync}, for callers that await. */
export function taskArgs(task: string, args: string[], writeTo?: string): Promise<string[]> {
  return Promise.resolve().then(() => taskArgsSync(task, args, writeTo));
}

/** Runs deno.json task `task` with its own permissions and `args`. */
export async function runTask(task: string, ...args: string[]): Promise<ChildOutput> {
  return runDeno(await taskArgs(task, args));
}

/**
 * `deno` arguments that run `tasks/train.ts` exactly as `deno task train` does — deno.json's "train"
 * command, its narrow permissions included — except that it writes the cache and `out` instead of the
 * cache and `runs/`; then `flags` and `--out out`. Relative paths in those permissions (the cache,
 * sharp's native library) resolve against the child's working directory: the repository root.
 */
export function trainCliArgs(out: string, flags: string[]): string[] {
  return taskArgsSync("train", [...flags, "--out", out], `.cache,${out}`);
}
