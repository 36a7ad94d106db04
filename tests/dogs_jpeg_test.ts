/**
 * Stanford Dogs under the reference preset (docs/protocol.md §2.2): the authors re-encoded their 256x256
 * cache as JPEG quality 75 (PIL's default save) before training; the reference preset's cache does
 * the same, in its own directory, while the paper preset keeps the lossless resize. Truth: PIL
 * itself (run now), and the lossless cache re-encoded independently of the reader.
 */
import { assert, assertEquals } from "./assert.ts";
import { reencodeJpeg } from "../data/images.ts";
import { defaultCacheDir, prepareDataset, referenceJpegQuality } from "../data/datasets.ts";
import { openCache } from "../data/cache/mod.ts";
import { writeDogs } from "./fixtures.ts";
import { PYTHON, pythonProbe, pythonTest } from "./cli.ts";

/** Why PIL cannot run here (undefined when it can). `XS_REQUIRE_TORCH=1` makes it a failure. */
const noPil = await pythonProbe(
  ["-c", "import PIL, numpy"],
  "cannot import PIL and numpy (install python3-pil)",
);

/** A 256x256 RGB test card: gradients plus seeded noise (JPEG blocks of every kind). */
function testCard(): Uint8Array {
  const px = new Uint8Array(256 * 256 * 3);
  let s = 7;
  for (let i = 0; i < 256 * 256; i++) {
    const x = i % 256, y = Math.floor(i / 256);
    for (let c = 0; c < 3; c++) {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      px[3 * i + c] = Math.max(0, Math.min(255, Math.round(x * (c + 1) / 3 + y / 2 + ((s >> 16) % 40) - 20)));
    }
  }
  return px;
}

pythonTest({
  name: "JPEG quality 75 round trip equals PIL's save(..., 'JPEG') + open, pixel for pixel",
  missing: noPil,
  needs: "PIL",
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    const px = testCard();
    await Deno.writeFile(`${dir}/in.raw`, px);
    const script = "import io, sys, numpy as np\nfrom PIL import Image\n" +
      "a = np.fromfile(sys.argv[1], dtype=np.uint8).reshape(256, 256, 3)\n" +
      "b = io.BytesIO(); Image.fromarray(a).save(b, 'JPEG', quality=75); b.seek(0)\n" +
      "np.asarray(Image.open(b).convert('RGB')).tofile(sys.argv[2])\n";
    const out = await new Deno.Command(PYTHON, { args: ["-c", script, `${dir}/in.raw`, `${dir}/pil.raw`] })
      .output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    const pil = await Deno.readFile(`${dir}/pil.raw`);
    const ours = await reencodeJpeg(px, 256, 256, 3, 75);
    let diff = 0;
    for (let i = 0; i < px.length; i++) diff = Math.max(diff, Math.abs(pil[i] - ours[i]));
    assertEquals(diff, 0);
    // A real round trip: the JPEG is lossy on this card.
    assert(ours.some((v, i) => v !== px[i]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Stanford Dogs: the reference preset's cache holds the JPEG-75 round trip of the paper cache's images", async () => {
  assertEquals(defaultCacheDir("stanford-dogs"), ".cache/stanford-dogs");
  assertEquals(defaultCacheDir("stanford-dogs", "paper"), ".cache/stanford-dogs");
  assertEquals(defaultCacheDir("stanford-dogs", "reference"), ".cache/stanford-dogs-jpeg75");
  assertEquals(referenceJpegQuality("cifar10", "reference"), undefined);
  const root = await Deno.makeTempDir({ prefix: "xs-dogs-" });
  const tag = Date.now();
  const paper = `.cache/xs-dogs-paper-${tag}`, reference = `.cache/xs-dogs-ref-${tag}`;
  try {
    await writeDogs(root, 2);
    await prepareDataset({ dataset: "stanford-dogs", root, cacheDir: paper, log: null });
    await prepareDataset({ dataset: "stanford-dogs", root, cacheDir: reference, log: null, jpegQuality: 75 });
    const [a, b] = [await openCache(paper), await openCache(reference)];
    assertEquals(b.manifest.storage.jpegQuality, 75);
    assertEquals(a.manifest.storage.jpegQuality, undefined);
    assert(a.manifest.fingerprint !== b.manifest.fingerprint);
    for (const name of ["train", "test"]) {
      const [sa, sb] = [await a.split(name), await b.split(name)];
      assertEquals(sb.labels, sa.labels);
      for (let i = 0; i < sa.count; i++) {
        const lossless = (await sa.images(i, i + 1)).slice();
        assertEquals(
          await sb.images(i, i + 1),
          await reencodeJpeg(lossless, 256, 256, 3, 75),
          `${name} ${i}`,
        );
      }
    }
    a.close();
    b.close();
  } finally {
    await Deno.remove(root, { recursive: true });
    for (const d of [paper, reference]) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});
