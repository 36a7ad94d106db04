/**
 * Builds `vendor/tf.mjs`, the one-file tfjs bundle every module imports (see vendor/entry.js for
 * why a bundle is needed). Runs automatically before every task; a stamp makes it a no-op when
 * the bundle is already current, so a fresh clone needs no manual build step.
 *
 * @module
 */
import * as esbuild from "esbuild";

const vendorDir = new URL("../vendor/", import.meta.url);
const outFile = new URL("tf.mjs", vendorDir);
const stampFile = new URL("tf.stamp", vendorDir);
const denoJson = new URL("../deno.json", import.meta.url);

/** The stamp changes whenever the entry or the pinned dependency versions change. */
async function currentStamp(): Promise<string> {
  const entry = await Deno.readTextFile(new URL("entry.js", vendorDir));
  const config = JSON.parse(await Deno.readTextFile(denoJson)) as { imports: Record<string, string> };
  const pins = Object.values(config.imports).filter((v) => v.includes("tensorflow")).sort().join(",");
  const bytes = new TextEncoder().encode(entry + pins);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(hash.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function readOr(url: URL, fallback: string): Promise<string> {
  try {
    return await Deno.readTextFile(url);
  } catch {
    return fallback;
  }
}

const stamp = await currentStamp();
const built = (await readOr(stampFile, "")).trim() === stamp &&
  (await readOr(outFile, "")).length > 0;
if (!built) {
  const tmp = new URL("tf.mjs.tmp", vendorDir);
  await esbuild.build({
    entryPoints: [new URL("entry.js", vendorDir).pathname],
    bundle: true,
    format: "esm",
    platform: "node",
    // Without "module" first esbuild takes tfjs-core's CJS main and the ESM gradients: two cores.
    mainFields: ["module", "main"],
    target: "es2022",
    external: ["node-fetch"],
    legalComments: "none",
    logLevel: "warning",
    outfile: tmp.pathname,
    // platform_node.js calls require('util'); Deno's ESM has no require.
    banner: {
      js: '/* @ts-self-types="./tf.d.ts" */ import { createRequire as __cr } from "node:module"; ' +
        "const require = __cr(import.meta.url);",
    },
  });
  await esbuild.stop();
  await Deno.rename(tmp, outFile);
  await Deno.writeTextFile(stampFile, stamp + "\n");
  console.error(`vendor: built vendor/tf.mjs (${stamp})`);
}
