/**
 * Human-readable figures shared by the progress lines of training, dataset preparation and
 * benchmarks, so that each is printed one way.
 *
 * @module
 */

/**
 * A duration in seconds as "1h02m", "3m05s" or "12s": rounded to whole seconds first (so 119.6 s
 * is "2m00s", never "1m60s"), hours shown with minutes only; "?" when unknown (not finite, or negative).
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m`;
  return m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}
