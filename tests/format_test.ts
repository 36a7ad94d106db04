import { assert, assertEquals } from "./assert.ts";
import { formatDuration } from "../runtime/format.ts";

Deno.test("formatDuration: hand-computed values, rounding carried into minutes and hours (no 1m60s)", () => {
  const cases: [number, string][] = [
    [0, "0s"],
    [0.4, "0s"],
    [12, "12s"],
    [59.4, "59s"],
    [59.6, "1m00s"],
    [65, "1m05s"],
    [119.6, "2m00s"],
    [185, "3m05s"],
    [3599.4, "59m59s"],
    [3599.6, "1h00m"],
    [3720, "1h02m"],
    [7325, "2h02m"],
    [90061, "25h01m"],
    [NaN, "?"],
    [Infinity, "?"],
    [-1, "?"],
  ];
  for (const [s, want] of cases) assertEquals(formatDuration(s), want, `formatDuration(${s})`);
});

Deno.test("formatDuration: below an hour, the printed minutes and seconds add up to the rounded duration", () => {
  for (let tenths = 0; tenths < 36000; tenths += 3) {
    const s = tenths / 10;
    const text = formatDuration(s);
    const m = /^(?:(\d+)m(\d\d)s|(\d+)s)$/.exec(text);
    const whole = Math.round(s);
    if (whole >= 3600) {
      assertEquals(text, "1h00m", `${s}`);
      continue;
    }
    assert(m, `${s} -> ${text}`);
    const total = m[3] !== undefined ? Number(m[3]) : Number(m[1]) * 60 + Number(m[2]);
    assertEquals(total, whole, `${s} -> ${text}`);
    assert(m[2] === undefined || Number(m[2]) < 60, `${s} -> ${text}: seconds below 60`);
  }
});
