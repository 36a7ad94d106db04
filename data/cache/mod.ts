/**
 * The packed dataset cache: its format (format.ts), building it (build.ts) and reading it (read.ts).
 *
 * @module
 */
export * from "./format.ts";
export * from "./build.ts";
export * from "./read.ts";
