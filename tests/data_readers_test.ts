/**
 * Dataset readers and the packed cache, against fixtures in the exact official formats
 * (tests/fixtures.ts), golden bytes written by CPython's pickle, and the real Fashion-MNIST
 * install (/usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist).
 */
import { strict as assert } from "node:assert";
import { FASHION_MNIST, fashionMnistTest, PYTHON, pythonProbe, pythonTest, runTask } from "./cli.ts";
import { join } from "node:path";
import { BuildInterrupted, type CacheManifest, openCache } from "../data/cache/mod.ts";
import { prepareDataset, type PrepareOptions } from "../data/datasets.ts";
import { safeRelPath } from "../data/readers/common.ts";
import { maybeGunzip } from "../data/readers/idx.ts";
import {
  NumpyRandomState,
  sklearnApproximateMode,
  sklearnStratifiedSplit,
} from "../data/readers/sklearn_split.ts";
import { dictGet, readPickle } from "../data/readers/pickle.ts";
import { UserError } from "../runtime/errors.ts";
import { decodeToStorage } from "../data/images.ts";
import {
  gradientJpeg,
  type ImageTruth,
  WNIDS,
  writeCifar,
  writeDogs,
  writeFashionMnist,
  writeHam,
  writeImageFolder,
  writeImagenette,
  writeIndoor,
  writeMiniPlaces,
} from "./fixtures.ts";

const tmp = () => Deno.makeTempDir({ prefix: "xscore-data-" });

function prep(opts: PrepareOptions) {
  return prepareDataset({ log: null, ...opts });
}

async function readAll(cacheDir: string, split: string) {
  const cache = await openCache(cacheDir);
  const s = await cache.split(split);
  const images = await s.images(0, s.count);
  const out = { s, images: images.slice(), labels: Array.from(s.labels), sizes: Array.from(s.sourceSizes) };
  cache.close();
  return out;
}

/** Mean colour of a stored HWC RGB image. */
function meanRgb(px: Uint8Array): number[] {
  const m = [0, 0, 0];
  for (let i = 0; i < px.length; i += 3) for (let c = 0; c < 3; c++) m[c] += px[i + c];
  return m.map((v) => v / (px.length / 3));
}

function assertColor(px: Uint8Array, rgb: readonly number[], tol: number, what: string) {
  const m = meanRgb(px);
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(m[c] - rgb[c]) <= tol, `${what}: channel ${c} mean ${m[c].toFixed(1)} vs ${rgb[c]}`);
  }
  // Solid colour in, solid colour out: every pixel within tolerance, not just the mean.
  for (let i = 0; i < px.length; i += 3) {
    for (let c = 0; c < 3; c++) {
      if (Math.abs(px[i + c] - rgb[c]) > tol) {
        assert.fail(`${what}: pixel ${i / 3} channel ${c} = ${px[i + c]} vs ${rgb[c]}`);
      }
    }
  }
}

/** Checks a file-image split against truth: order, labels, colours, source sizes. */
function checkSolidSplit(
  got: Awaited<ReturnType<typeof readAll>>,
  truth: ImageTruth[],
  tol: number,
) {
  assert.equal(got.s.count, truth.length);
  assert.deepEqual(got.labels, truth.map((t) => t.label));
  const b = got.s.imageBytes;
  truth.forEach((t, i) => {
    assertColor(got.images.subarray(i * b, (i + 1) * b), t.rgb, tol, t.path);
    assert.deepEqual([got.sizes[2 * i], got.sizes[2 * i + 1]], [t.width, t.height], `${t.path} source size`);
  });
}

function perClass(labels: number[], k: number): number[] {
  const c = new Array(k).fill(0);
  for (const y of labels) c[y]++;
  return c;
}

// ---------------------------------------------------------------------------------------------
// Pickle

const hexBytes = (h: string) => Uint8Array.from(h.match(/../g)!.map((x) => parseInt(x, 16)));

// {b'data': np.array([[1,2,3],[250,5,6]], np.uint8), b'labels': [0, 7], b'batch_label': b'x'} pickled by
// CPython 3 + numpy 2 at protocols 2, 4 and 5 (pickle.dumps(d, protocol=p).hex()).
const GOLDEN: Record<string, string> = {
  p2:
    "80027d710028635f636f646563730a656e636f64650a7101580400000064617461710258060000006c6174696e317103867104527105636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e7374727563740a7106636e756d70790a6e6461727261790a71074b0085710868015801000000627109680386710a52710b87710c52710d284b014b024b0386710e636e756d70790a64747970650a710f5802000000753171108988877111527112284b0358010000007c71134e4e4e4affffffff4affffffff4b00747114628968015807000000010203c3ba05067115680386711652711774711862680158060000006c6162656c737119680386711a52711b5d711c284b004b07656801580b00000062617463685f6c6162656c711d680386711e52711f680158010000007871206803867121527122752e",
  p4:
    "800495bf000000000000007d9428430464617461948c166e756d70792e5f636f72652e6d756c74696172726179948c0c5f7265636f6e7374727563749493948c056e756d7079948c076e6461727261799493944b0085944301629487945294284b014b024b03869468058c0564747970659493948c02753194898887945294284b038c017c944e4e4e4affffffff4affffffff4b00749462894306010203fa05069474946243066c6162656c73945d94284b004b0765430b62617463685f6c6162656c9443017894752e",
  p5:
    "800595aa000000000000007d9428430464617461948c136e756d70792e5f636f72652e6e756d65726963948c0b5f66726f6d62756666657294939428960600000000000000010203fa0506948c056e756d7079948c0564747970659493948c02753194898887945294284b038c017c944e4e4e4affffffff4affffffff4b007494624b024b0386948c0143947494529443066c6162656c73945d94284b004b0765430b62617463685f6c6162656c9443017894752e",
};

Deno.test("pickle: numpy arrays pickled by CPython at protocols 2, 4, 5", () => {
  for (const [name, h] of Object.entries(GOLDEN)) {
    const v = readPickle(hexBytes(h), name);
    const data = dictGet(v, "data", name) as { shape: number[]; dtype: string; data: Uint8Array };
    assert.deepEqual(data.shape, [2, 3], name);
    assert.equal(data.dtype, "u1", name);
    assert.deepEqual(Array.from(data.data), [1, 2, 3, 250, 5, 6], name);
    assert.deepEqual(dictGet(v, "labels", name), [0, 7], name);
  }
});

Deno.test("pickle: a GLOBAL outside the whitelist is refused, nothing is called", () => {
  // pickle.dumps of os.system("ls") via __reduce__, protocol 2.
  const evil = hexBytes("8002636f730a73797374656d0a71005802000000" + "6c73" + "71018571025271032e");
  assert.throws(() => readPickle(evil, "evil.pkl"), /refusing GLOBAL os\.system/);
  // Text protocol 0 is not understood either.
  assert.throws(() => readPickle(new TextEncoder().encode("(dp0\n."), "p0"), /unsupported opcode/);
});

// ---------------------------------------------------------------------------------------------
// CIFAR

for (const variant of [10, 100] as const) {
  for (const kind of ["bin", "py"] as const) {
    Deno.test(`cifar${variant} ${kind}: classes, labels, split sizes, exact pixels`, async () => {
      const root = await tmp();
      const truth = await writeCifar(root, variant, kind);
      const cacheDir = join(root, "cache");
      const r = await prep({ dataset: `cifar${variant}`, root, cacheDir });
      const m = r.manifest;
      assert.equal(m.numClasses, variant);
      assert.deepEqual(m.classNames, truth.classNames);
      assert.deepEqual(m.storage, { height: 32, width: 32, channels: 3, fit: "stretch" });
      for (const split of ["train", "test"] as const) {
        const t = truth[split];
        const got = await readAll(cacheDir, split);
        assert.equal(got.s.count, t.labels.length);
        assert.deepEqual(got.labels, t.labels);
        assert.deepEqual(m.splits[split].perClass, perClass(t.labels, variant));
        // Record = 1024 R, 1024 G, 1024 B (row-major 32x32); stored HWC.
        t.records.forEach((rec, i) => {
          const img = got.images.subarray(i * 3072, (i + 1) * 3072);
          for (let y = 0; y < 32; y += 7) {
            for (let x = 0; x < 32; x += 5) {
              for (let c = 0; c < 3; c++) assert.equal(img[(y * 32 + x) * 3 + c], rec[c * 1024 + y * 32 + x]);
            }
          }
          assert.equal(img[3071], rec[3071]);
        });
      }
      await Deno.remove(root, { recursive: true });
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Fashion-MNIST

Deno.test("fashion-mnist fixture: gzipped IDX, 1 channel, exact pixels", async () => {
  const root = await tmp();
  const truth = await writeFashionMnist(join(root, "fm"));
  const cacheDir = join(root, "cache");
  const r = await prep({ dataset: "fashion-mnist", root: join(root, "fm"), cacheDir });
  assert.deepEqual(r.manifest.storage, { height: 28, width: 28, channels: 1, fit: "stretch" });
  for (const split of ["train", "test"]) {
    const got = await readAll(cacheDir, split);
    assert.deepEqual(got.labels, Array.from(truth[split].labels));
    assert.deepEqual(got.images, truth[split].images);
  }
  await Deno.remove(root, { recursive: true });
});

// Ignored without Debian's Fashion-MNIST; XS_REQUIRE_DATA=1 (CI) makes that a failure (tests/cli.ts).
fashionMnistTest(
  "fashion-mnist real data: 60,000 / 10,000, 6,000 / 1,000 per class, first label from the IDX file",
  async () => {
    const root = await tmp();
    const cacheDir = join(root, "cache");
    const r = await prep({ dataset: "fashion-mnist", cacheDir });
    const m = r.manifest;
    assert.equal(m.splits.train.count, 60_000);
    assert.equal(m.splits.test.count, 10_000);
    assert.deepEqual(m.splits.train.perClass, new Array(10).fill(6_000));
    assert.deepEqual(m.splits.test.perClass, new Array(10).fill(1_000));
    // Independent read: labels start at byte 8 of the IDX label file, images at byte 16.
    const labels = await maybeGunzip(await Deno.readFile(join(FASHION_MNIST, "train-labels-idx1-ubyte.gz")));
    const images = await maybeGunzip(await Deno.readFile(join(FASHION_MNIST, "train-images-idx3-ubyte.gz")));
    const cache = await openCache(cacheDir);
    const train = await cache.split("train");
    assert.equal(train.labels[0], labels[8]);
    assert.equal(train.labels[59_999], labels[8 + 59_999]);
    assert.deepEqual(await train.images(0, 1), images.subarray(16, 16 + 784));
    cache.close();
    await Deno.remove(root, { recursive: true });
  },
);

// ---------------------------------------------------------------------------------------------
// Image-file datasets

Deno.test("imagenette160: sorted wnid classes, val as test, stretched 192x384, JPEG colours", async () => {
  const dir = await tmp();
  const f = await writeImagenette(dir);
  const cacheDir = join(dir, "cache");
  // The parent folder is accepted as root too.
  const r = await prep({ dataset: "imagenette160", root: dir, cacheDir });
  assert.deepEqual(r.manifest.classNames, WNIDS.slice(0, 3));
  assert.equal(r.manifest.splits.train.count, 6);
  assert.equal(r.manifest.splits.test.count, 3);
  assert.deepEqual(r.manifest.storage, { height: 192, width: 384, channels: 3, fit: "stretch" });
  checkSolidSplit(await readAll(cacheDir, "train"), f.train, 6);
  checkSolidSplit(await readAll(cacheDir, "test"), f.val, 6);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("stanford-dogs: seeded 80/20 split persisted and reused; official split from MAT v5 lists", async () => {
  const root = await tmp();
  const f = await writeDogs(root);
  const cacheA = join(root, "cacheA"), cacheB = join(root, "cacheB");
  const a = await prep({ dataset: "stanford-dogs", root, cacheDir: cacheA, seed: 3 });
  assert.deepEqual(a.manifest.classNames, f.breeds);
  assert.equal(a.manifest.splits.train.count, 12); // floor(0.8 * 15)
  assert.equal(a.manifest.splits.test.count, 3);
  assert.equal(a.manifest.numClasses, 3);
  const splitA = JSON.parse(await Deno.readTextFile(join(cacheA, "split.json")));
  assert.equal(splitA.seed, 3);
  assert.equal(splitA.splits.train.length + splitA.splits.test.length, 15);
  // Same seed elsewhere: the same split; stored split reused on a rebuild.
  await prep({ dataset: "stanford-dogs", root, cacheDir: cacheB, seed: 3 });
  assert.deepEqual(JSON.parse(await Deno.readTextFile(join(cacheB, "split.json"))).splits, splitA.splits);
  const again = await prep({ dataset: "stanford-dogs", root, cacheDir: cacheA, seed: 3, force: true });
  assert.match(again.manifest.notes.join(" "), /reused from split\.json/);
  // Labels and colours follow the split file's order.
  const byPath = new Map(f.items.map((t) => [t.path, t]));
  checkSolidSplit(await readAll(cacheA, "test"), splitA.splits.test.map((p: string) => byPath.get(p)!), 6);
  // Official lists (MATLAB v5, compressed elements).
  const cacheO = join(root, "cacheO");
  const o = await prep({ dataset: "stanford-dogs", root, cacheDir: cacheO, split: "official" });
  assert.equal(o.manifest.splits.train.count, f.trainList.length);
  assert.equal(o.manifest.splits.test.count, f.testList.length);
  checkSolidSplit(await readAll(cacheO, "train"), f.trainList, 6);
  await assert.rejects(prep({ dataset: "stanford-dogs", root, cacheDir: cacheO, split: "bogus" }), UserError);
  await Deno.remove(root, { recursive: true });
});

Deno.test("numpy RandomState and sklearn's stratified split reproduce numpy's own output", () => {
  // Goldens from numpy 2.4: RandomState(42).permutation(10), RandomState(7).choice([...], 3, replace=False).
  assert.deepEqual(new NumpyRandomState(42).permutation(10), [8, 1, 5, 0, 7, 2, 9, 4, 3, 6]);
  assert.deepEqual(new NumpyRandomState(7).choiceNoReplace([3, 5, 8, 13, 21], 3), [3, 13, 8]);
  // HAM-like labels (class sizes / 10, order = RandomState(1).permutation), split as the paper does;
  // goldens first computed by a transcription of sklearn's StratifiedShuffleSplit, since checked
  // against scikit-learn 1.2.1 itself (the next test runs train_test_split on these labels).
  const y: number[] = [];
  [33, 51, 110, 12, 111, 670, 14].forEach((k, c) => y.push(...new Array(k).fill(c)));
  new NumpyRandomState(1).shuffle(y);
  const first = sklearnStratifiedSplit(y, 0.15, 42);
  const second = sklearnStratifiedSplit(first.train.map((i) => y[i]), 0.17647058823529413, 42);
  const digest = (v: number[]) => v.reduce((s, x, i) => s + i * x, 0);
  assert.deepEqual(first.test.slice(0, 10), [280, 796, 47, 562, 142, 325, 762, 711, 465, 924]);
  assert.deepEqual([first.test.length, digest(first.test)], [151, 5312091]);
  assert.deepEqual(second.test.slice(0, 10), [623, 243, 270, 846, 29, 637, 774, 619, 826, 497]);
  assert.deepEqual([second.test.length, digest(second.test)], [150, 4955701]);
  assert.deepEqual([second.train.length, digest(second.train)], [700, 102466193]);
  // The full HAM10000 class counts give the per-class test sizes of docs/protocol.md §2.4 (49/77/165/17/167/1006/2x).
  const r = new NumpyRandomState(42);
  const counts = [327, 514, 1099, 115, 1113, 6705, 142];
  const nI = sklearnApproximateMode(counts, 10_015 - 1_503, r);
  assert.deepEqual(sklearnApproximateMode(counts.map((c, i) => c - nI[i]), 1_503, r), [
    49,
    77,
    165,
    17,
    167,
    1006,
    22,
  ]);
});

const SKLEARN_SCRIPT = new URL("./sklearn_split_reference.py", import.meta.url).pathname;
/** Why scikit-learn cannot run here (undefined when it can). `XS_REQUIRE_TORCH=1` makes it a failure. */
const noSklearn = await pythonProbe(
  [SKLEARN_SCRIPT, "--check"],
  "cannot import sklearn (install python3-sklearn)",
);

pythonTest({
  name: "sklearn train_test_split itself (run now) gives the HAM10000 split members our reader computes",
  missing: noSklearn,
  needs: "scikit-learn",
}, async () => {
  // HAM10000's class sizes (docs/protocol.md §2.4): in class order, shuffled, and a small set with a tiny class.
  const counts = [327, 514, 1099, 115, 1113, 6705, 142];
  const sorted: number[] = [];
  counts.forEach((k, c) => sorted.push(...new Array(k).fill(c)));
  const shuffled = sorted.slice();
  new NumpyRandomState(1).shuffle(shuffled);
  const small: number[] = [];
  [33, 51, 110, 12, 111, 670, 14].forEach((k, c) => small.push(...new Array(k).fill(c)));
  new NumpyRandomState(1).shuffle(small);
  const cases = [
    { labels: sorted, seed: 42 },
    { labels: shuffled, seed: 42 },
    { labels: small, seed: 42 },
    { labels: small, seed: 0 },
  ];
  const dir = await tmp();
  await Deno.writeTextFile(join(dir, "cases.json"), JSON.stringify(cases));
  const out = await new Deno.Command(PYTHON, {
    args: [SKLEARN_SCRIPT, join(dir, "cases.json")],
    stdout: "piped",
  })
    .output();
  assert.equal(out.code, 0, "sklearn_split_reference.py failed");
  const want = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    first: number[][];
    second: number[][];
  }[];
  cases.forEach((c, i) => {
    const first = sklearnStratifiedSplit(c.labels, 0.15, c.seed);
    const second = sklearnStratifiedSplit(first.train.map((k) => c.labels[k]), 0.17647058823529413, c.seed);
    const what = `case ${i} (n ${c.labels.length}, seed ${c.seed})`;
    assert.deepEqual([first.train, first.test], want[i].first, `${what}: first split`);
    assert.deepEqual([second.train, second.test], want[i].second, `${what}: second split`);
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("ham10000: sorted dx classes, sklearn's 70/15/15 split (random_state 42), persisted", async () => {
  const root = await tmp();
  const f = await writeHam(root);
  const cacheDir = join(root, "cache");
  const r = await prep({ dataset: "ham10000", root, cacheDir });
  const m = r.manifest;
  assert.deepEqual(m.classNames, ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]);
  // N = 46: test = ceil(0.15 * 46) = 7; val = ceil(0.17647 * 39) = 7; train = 32.
  assert.deepEqual([m.splits.train.count, m.splits.val.count, m.splits.test.count], [32, 7, 7]);
  assert.deepEqual(m.splitOrder, ["train", "val", "test"]);
  const total = m.classNames.map((_, c) =>
    m.splits.train.perClass[c] + m.splits.val.perClass[c] + m.splits.test.perClass[c]
  );
  assert.deepEqual(total, perClass(f.items.map((t) => t.label), 7));
  // Stratified: nv (20 of 46) gets floor or ceil of its share of the test split (7 * 20 / 46 = 3.04).
  assert.ok([3, 4].includes(m.splits.test.perClass[m.classNames.indexOf("nv")]));
  const split = JSON.parse(await Deno.readTextFile(join(cacheDir, "split.json")));
  assert.equal(split.seed, 42);
  const labels = f.items.map((t) => t.label);
  assert.deepEqual(
    split.splits.test,
    sklearnStratifiedSplit(labels, 0.15, 42).test.map((i) => f.items[i].id),
  );
  const byId = new Map(f.items.map((t) => [t.id, t]));
  checkSolidSplit(await readAll(cacheDir, "val"), split.splits.val.map((id: string) => byId.get(id)!), 6);
  // The Rng-based alternative keeps the sizes.
  const alt = await prep({
    dataset: "ham10000",
    root,
    cacheDir: join(root, "alt"),
    split: "stratified",
    seed: 5,
  });
  assert.deepEqual([
    alt.manifest.splits.train.count,
    alt.manifest.splits.val.count,
    alt.manifest.splits.test.count,
  ], [32, 7, 7]);
  // An image_id that tries to leave the root is rejected with the CSV line.
  const csv = join(root, "HAM10000_metadata.csv");
  await Deno.writeTextFile(
    csv,
    (await Deno.readTextFile(csv)) + "HAM_x,../../etc/passwd,nv,histo,1.0,male,back\n",
  );
  await assert.rejects(
    prep({ dataset: "ham10000", root, cacheDir }),
    /HAM10000_metadata\.csv:48: image_id "\.\.\/\.\.\/etc\/passwd"/,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("mit-indoor67: official lists, centred square, GIF and grey .jpg to RGB, missing file skipped", async () => {
  const root = await tmp();
  const f = await writeIndoor(root);
  const cacheDir = join(root, "cache");
  const r = await prep({ dataset: "mit-indoor67", root, cacheDir });
  const m = r.manifest;
  assert.deepEqual(m.classNames, ["airport_inside", "bakery", "casino"]);
  assert.deepEqual(m.storage, { height: 256, width: 256, channels: 3, fit: "center-square" });
  assert.equal(m.splits.train.count, f.train.length);
  assert.equal(m.splits.train.sourceCount, f.train.length + 1);
  assert.equal(m.splits.train.skipped, 1);
  assert.equal(m.skipped[0].item, f.missing);
  assert.equal(m.splits.test.count, f.test.length);
  // The red side bands are cut away: the whole stored square is the item colour.
  checkSolidSplit(await readAll(cacheDir, "train"), f.train, 8);
  checkSolidSplit(await readAll(cacheDir, "test"), f.test, 8);
  // A list line that escapes the root is an error naming the file and line.
  await Deno.writeTextFile(join(root, "TestImages.txt"), "casino/../../../etc/passwd\n");
  await assert.rejects(
    prep({ dataset: "mit-indoor67", root, cacheDir }),
    /TestImages\.txt:1: path .* escapes the dataset root/,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("miniplaces: class ids from categories.txt (sub-categories), val as test", async () => {
  const root = await tmp();
  const f = await writeMiniPlaces(root);
  const cacheDir = join(root, "cache");
  const r = await prep({ dataset: "miniplaces", root, cacheDir });
  assert.deepEqual(r.manifest.classNames, f.classNames);
  assert.deepEqual(r.manifest.storage, { height: 128, width: 128, channels: 3, fit: "stretch" });
  checkSolidSplit(await readAll(cacheDir, "train"), f.train, 6);
  checkSolidSplit(await readAll(cacheDir, "test"), f.val, 6);
  // A train line whose folder contradicts categories.txt is caught.
  const train = join(root, "data", "train.txt");
  await Deno.writeTextFile(train, "train/a/abbey/00000001.jpg 2\n");
  await assert.rejects(prep({ dataset: "miniplaces", root, cacheDir }), /folder a\/abbey is class 0/);
  await Deno.remove(root, { recursive: true });
});

/**
 * Checks a stored image of a `gradientPixels` source (w × h, of which the window starting at
 * (x0, y0) of size cw × ch was resampled to dw × dh): red follows the stored column, green the
 * row, blue is constant, at the values a centred linear resample of the ramps gives. The outermost
 * stored pixels are skipped (the resampling filter is clamped there); JPEG costs a few levels.
 */
function checkGradient(
  px: Uint8Array,
  d: { w: number; h: number },
  src: { w: number; h: number; x0: number; y0: number; cw: number; ch: number },
  blue: number,
  what: string,
) {
  const tol = 8;
  const ramp = (j: number, n: number, start: number, crop: number, full: number) =>
    20 + (200 * (start + ((j + 0.5) * crop) / n - 0.5)) / (full - 1);
  for (let y = 1; y < d.h - 1; y++) {
    for (let x = 1; x < d.w - 1; x++) {
      const i = (y * d.w + x) * 3;
      const want = [ramp(x, d.w, src.x0, src.cw, src.w), ramp(y, d.h, src.y0, src.ch, src.h), blue];
      for (let c = 0; c < 3; c++) {
        if (Math.abs(px[i + c] - want[c]) > tol) {
          assert.fail(
            `${what}: pixel (x ${x}, y ${y}) channel ${c} = ${px[i + c]}, want ${want[c].toFixed(1)}`,
          );
        }
      }
    }
  }
}

Deno.test("JPEG decode: orientation, no transposition, RGB order (gradient fixtures, stretch and centre square)", async () => {
  // Wide and tall sources: a transposed decode cannot pass both.
  for (const [w, h, blue] of [[40, 24, 60], [24, 40, 180]]) {
    const jpeg = await gradientJpeg(w, h, blue);
    const full = { w, h, x0: 0, y0: 0, cw: w, ch: h };
    const stretched = await decodeToStorage(jpeg, { width: 16, height: 12, channels: 3, fit: "stretch" });
    assert.deepEqual([stretched.sourceWidth, stretched.sourceHeight], [w, h]);
    checkGradient(stretched.pixels, { w: 16, h: 12 }, full, blue, `${w}x${h} stretch`);
    const s = Math.min(w, h);
    const square = await decodeToStorage(jpeg, { width: 16, height: 16, channels: 3, fit: "center-square" });
    const crop = { w, h, x0: Math.floor((w - s) / 2), y0: Math.floor((h - s) / 2), cw: s, ch: s };
    checkGradient(square.pixels, { w: 16, h: 16 }, crop, blue, `${w}x${h} centre square`);
  }
  // Through a dataset: the cache holds the same structure.
  const root = await tmp();
  const files: [string, number, number, number][] = [
    ["train/a/0.jpg", 40, 24, 60],
    ["train/b/0.jpg", 24, 40, 180],
    ["test/a/0.jpg", 32, 20, 100],
    ["test/b/0.jpg", 20, 32, 140],
  ];
  for (const [path, w, h, blue] of files) {
    await Deno.mkdir(join(root, path, ".."), { recursive: true });
    await Deno.writeFile(join(root, path), await gradientJpeg(w, h, blue));
  }
  const cacheDir = join(root, "cache");
  await prep({ dataset: "imagefolder", root, cacheDir, size: 16, fit: "stretch" });
  for (const split of ["train", "test"] as const) {
    const got = await readAll(cacheDir, split);
    const mine = files.filter(([p]) => p.startsWith(split));
    assert.deepEqual(got.labels, [0, 1]);
    mine.forEach(([path, w, h, blue], i) =>
      checkGradient(
        got.images.subarray(i * 768, (i + 1) * 768),
        { w: 16, h: 16 },
        { w, h, x0: 0, y0: 0, cw: w, ch: h },
        blue,
        path,
      )
    );
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("imagefolder: exact PNG round trip, corrupt images skipped and counted", async () => {
  const root = await tmp();
  const f = await writeImageFolder(root);
  const cacheDir = join(root, "cache");
  const r = await prep({ dataset: "imagefolder", root, cacheDir, size: 16, fit: "stretch" });
  const m = r.manifest;
  assert.deepEqual(m.classNames, f.classes);
  assert.equal(m.splits.train.skipped, 2);
  assert.equal(m.splits.train.count, f.train.length);
  assert.deepEqual(m.skipped.map((s) => s.item).sort(), f.corrupt);
  for (const s of m.skipped) assert.ok(s.reason.length > 0);
  for (const split of ["train", "test"] as const) {
    const got = await readAll(cacheDir, split);
    assert.deepEqual(got.labels, f[split].map((t) => t.label));
    f[split].forEach((t, i) =>
      assert.deepEqual(got.images.subarray(i * 768, (i + 1) * 768), t.pixels, t.path)
    );
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("safeRelPath rejects absolute and escaping paths", () => {
  for (const bad of ["/etc/passwd", "../x.jpg", "a/../../x.jpg", "C:\\x.jpg", "\\\\server\\x", "a\0b", ""]) {
    assert.throws(() => safeRelPath(bad, "list.txt:3"), UserError, bad);
  }
  assert.equal(safeRelPath("./a//b/c.jpg", "x"), "a/b/c.jpg");
});

// ---------------------------------------------------------------------------------------------
// Cache behaviour

Deno.test("cache: second prepare does nothing; a changed source rebuilds", async () => {
  const root = await tmp();
  const f = await writeImageFolder(root);
  const cacheDir = join(root, "cache");
  const opts = { dataset: "imagefolder", root, cacheDir, size: 16, fit: "stretch" as const };
  assert.equal((await prep(opts)).status, "built");
  const before = (await Deno.stat(join(cacheDir, "train.u8"))).mtime!.getTime();
  const second = await prep(opts);
  assert.equal(second.status, "up-to-date");
  assert.equal(second.processed, 0);
  assert.equal((await Deno.stat(join(cacheDir, "train.u8"))).mtime!.getTime(), before);
  // Replace one training image: the fingerprint changes and the new pixels are stored.
  const { encode, randomBytes } = await import("./fixtures.ts");
  const fresh = randomBytes(4242, 768);
  await Deno.writeFile(join(root, f.train[0].path), await encode(fresh, 16, 16, "png"));
  const third = await prep(opts);
  assert.equal(third.status, "built");
  assert.deepEqual((await readAll(cacheDir, "train")).images.subarray(0, 768), fresh);
  // Changing a reader option (stored size) rebuilds too.
  assert.equal((await prep({ ...opts, size: 8 })).status, "built");
  // A live build holding the directory's lock makes a second one refuse (flock; a dead one frees it).
  const held = await Deno.open(join(cacheDir, ".prepare.lock"), { read: true, write: true });
  assert.ok(await held.tryLock(true));
  await assert.rejects(prep({ ...opts, force: true }), /another prepare .* is writing/);
  held.close();
  assert.equal((await prep({ ...opts, force: true })).status, "built");
  await Deno.remove(root, { recursive: true });
});

Deno.test("cache: an interrupted build resumes and equals a fresh build", async () => {
  const root = await tmp();
  await writeCifar(root, 10, "bin");
  const fresh = join(root, "fresh"), resumed = join(root, "resumed");
  await prep({ dataset: "cifar10", root, cacheDir: fresh });
  await assert.rejects(
    prep({ dataset: "cifar10", root, cacheDir: resumed, chunk: 4, interruptAfter: 12 }),
    BuildInterrupted,
  );
  assert.ok(
    !(await Deno.stat(join(resumed, "manifest.json")).catch(() => undefined)),
    "no manifest before completion",
  );
  // Simulate a kill between a chunk write and its journal entry: bytes past the acknowledged end.
  const partial = join(resumed, "train.u8.partial");
  assert.equal((await Deno.stat(partial)).size, 12 * 3072);
  await Deno.writeFile(partial, new Uint8Array(3072 * 2).fill(7), { append: true });
  const r = await prep({ dataset: "cifar10", root, cacheDir: resumed, chunk: 4 });
  assert.equal(r.status, "resumed");
  assert.equal(r.processed, 30 + 5 - 12);
  for (const f of ["train.u8", "train.labels", "train.sizes", "test.u8", "test.labels"]) {
    assert.deepEqual(await Deno.readFile(join(resumed, f)), await Deno.readFile(join(fresh, f)), f);
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("openCache: in-memory and by-offset reads agree; gather and labels by index list", async () => {
  const root = await tmp();
  await writeCifar(root, 10, "bin");
  const cacheDir = join(root, "cache");
  await prep({ dataset: "cifar10", root, cacheDir });
  const mem = await openCache(cacheDir);
  const disk = await openCache(cacheDir, { maxInMemoryBytes: 0 });
  const a = await mem.split("train"), b = await disk.split("train");
  assert.equal(a.inMemory, true);
  assert.equal(b.inMemory, false);
  const idx = [29, 3, 4, 5, 0, 3, 17];
  const [ga, gb] = await Promise.all([a.gather(idx), b.gather(idx)]);
  assert.deepEqual(ga, gb);
  const all = await a.images(0, a.count);
  idx.forEach((i, j) =>
    assert.deepEqual(ga.subarray(j * 3072, (j + 1) * 3072), all.subarray(i * 3072, (i + 1) * 3072))
  );
  assert.deepEqual(await b.images(2, 5), all.subarray(2 * 3072, 5 * 3072));
  assert.deepEqual(Array.from(a.gatherLabels(idx)), idx.map((i) => a.labels[i]));
  await assert.rejects(a.gather([30]), RangeError);
  mem.close();
  disk.close();
  await assert.rejects(openCache(join(root, "nope")), /no prepared cache/);
  const m = JSON.parse(await Deno.readTextFile(join(cacheDir, "manifest.json"))) as CacheManifest;
  await Deno.writeFile(join(cacheDir, "test.u8"), new Uint8Array(10));
  await assert.rejects(openCache(cacheDir), /missing or have the wrong size/);
  assert.equal(m.dataset, "cifar10");
  await Deno.remove(root, { recursive: true });
});

Deno.test("prepare task: a missing root prints one line and exits 2", async () => {
  const root = await tmp();
  const run = (...args: string[]) => runTask("prepare", ...args);
  const r = await run("--dataset", "ham10000", "--root", root);
  assert.equal(r.code, 2);
  assert.equal(
    r.err,
    `error: expected HAM10000_metadata.csv in ${root}; extract the HAM10000 (Kaggle layout) archive there`,
  );
  const unknown = await run("--dataset", "nope", "--root", root);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /^error: unknown dataset "nope"/);
  await Deno.remove(root, { recursive: true });
});
