/**
 * Minimal assertions for the test suite (JSR's @std/assert cannot be reached from the build
 * machines): thin wrappers over node:assert with Deno-std-like names.
 *
 * @module
 */
import nodeAssert from "node:assert/strict";

/** Asserts that `cond` is truthy. */
export function assert(cond: unknown, message?: string): asserts cond {
  nodeAssert.ok(cond, message);
}

/** Asserts deep equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

/** Asserts |actual - expected| <= tol. */
export function assertAlmostEquals(actual: number, expected: number, tol = 1e-7, message?: string): void {
  if (!(Math.abs(actual - expected) <= tol)) {
    throw new nodeAssert.AssertionError({
      message: message ?? `expected ${expected} ± ${tol}, got ${actual}`,
      actual,
      expected,
    });
  }
}

/** Asserts that `fn` throws (optionally an instance of `cls`) and returns the error. */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  cls?: new (...args: never[]) => E,
): E {
  try {
    fn();
  } catch (err) {
    if (cls && !(err instanceof cls)) throw new Error(`expected ${cls.name}, got ${err}`);
    return err as E;
  }
  throw new Error("expected the function to throw");
}

/** Asserts that the promise rejects (optionally with `cls`) and returns the error. */
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  cls?: new (...args: never[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (err) {
    if (cls && !(err instanceof cls)) throw new Error(`expected ${cls.name}, got ${err}`);
    return err as E;
  }
  throw new Error("expected the promise to reject");
}
