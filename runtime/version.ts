/**
 * The version stamp of results: the git commit of the working tree the task runs from.
 *
 * @module
 */

/** The first 12 hex digits of the checked-out commit (read from .git, no git binary), or "unknown". */
export async function gitVersion(): Promise<string> {
  try {
    const head = (await Deno.readTextFile(".git/HEAD")).trim();
    if (!head.startsWith("ref: ")) return head.slice(0, 12);
    const ref = head.slice(5);
    const loose = await Deno.readTextFile(`.git/${ref}`).catch(() => undefined);
    if (loose) return loose.trim().slice(0, 12);
    const packed = await Deno.readTextFile(".git/packed-refs");
    return packed.split("\n").find((l) => l.endsWith(` ${ref}`))?.slice(0, 12) ?? "unknown";
  } catch {
    return "unknown";
  }
}
