/**
 * The project's one CSV dependency choice: `csv-parse` / `csv-stringify` from npm (JSR's
 * `@std/csv` cannot be reached from the build machines). Everything reads and writes CSV here.
 *
 * @module
 */
import { parse } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";

/** A parsed CSV: the header and the data rows as string arrays, with 1-based source line numbers. */
export interface CsvTable {
  header: string[];
  rows: string[][];
  /** `lines[i]` is the file line number of `rows[i]` (the header is line 1). */
  lines: number[];
}

/** Parses CSV text (RFC 4180, UTF-8, optional BOM). Throws with the line number on malformed input. */
export function parseCsv(text: string): CsvTable {
  const records = parse(text, {
    bom: true,
    skip_empty_lines: true,
    relax_column_count: false,
    info: true,
    trim: true,
  }) as unknown as { record: string[]; info: { lines: number } }[];
  if (records.length === 0) return { header: [], rows: [], lines: [] };
  return {
    header: records[0].record,
    rows: records.slice(1).map((r) => r.record),
    lines: records.slice(1).map((r) => r.info.lines),
  };
}

/** Formats a header and rows as CSV text (RFC 4180 quoting, trailing newline). */
export function formatCsv(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  return stringify([header as string[], ...rows.map((r) => r.map((v) => v ?? ""))]);
}
