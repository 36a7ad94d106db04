/**
 * A reproduction of scikit-learn's `train_test_split(..., stratify=y, random_state=int)` index
 * stream, so that HAM10000's split can match the paper's (`random_state=42`) member for member
 * without Python. Pieces:
 * - numpy's legacy `RandomState(seed)`: MT19937 seeded with `init_genrand(seed)`;
 * - `RandomState.permutation(n)`: Fisher-Yates from the end with numpy's legacy bounded integers
 *   (`random_interval`: mask to the next power of two minus one, reject above the bound);
 * - `RandomState.choice(a, size, replace=False)` = `a[permutation(len(a))[:size]]`;
 * - sklearn's `StratifiedShuffleSplit._iter_indices` and `_approximate_mode`.
 * The RNG parts are checked against numpy's output in the tests; the split logic is transcribed
 * from scikit-learn's source (the project cannot install scikit-learn to compare end to end).
 *
 * @module
 */

/** numpy's legacy MT19937 `RandomState` (only what sklearn's split draws). */
export class NumpyRandomState {
  #mt = new Uint32Array(624);
  #pos = 624;

  /** `np.random.RandomState(seed)` for an integer seed in [0, 2^32). */
  constructor(seed: number) {
    const mt = this.#mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      // 1812433253 * prev + i, modulo 2^32, without losing bits to float rounding.
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  /** The next raw 32-bit output (genrand_int32). */
  nextUint32(): number {
    const mt = this.#mt;
    if (this.#pos >= 624) {
      for (let k = 0; k < 624; k++) {
        const y = (mt[k] & 0x80000000) | (mt[(k + 1) % 624] & 0x7fffffff);
        mt[k] = mt[(k + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.#pos = 0;
    }
    let y = mt[this.#pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** numpy's legacy `random_interval(max)`: uniform integer in [0, max] by masked rejection. */
  interval(max: number): number {
    if (max === 0) return 0;
    if (max > 0xffffffff) throw new RangeError("interval above 2^32 is not needed here");
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    for (;;) {
      const v = (this.nextUint32() & mask) >>> 0;
      if (v <= max) return v;
    }
  }

  /** `RandomState.shuffle` of a 1-D array, in place. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i >= 1; i--) {
      const j = this.interval(i);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** `RandomState.permutation(n)`. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }

  /** `RandomState.choice(a, size, replace=False)` without weights. */
  choiceNoReplace<T>(a: readonly T[], size: number): T[] {
    if (size > a.length) throw new RangeError("cannot take a larger sample than the population");
    return this.permutation(a.length).slice(0, size).map((i) => a[i]);
  }
}

/** sklearn's `_approximate_mode(class_counts, n_draws, rng)`. */
export function sklearnApproximateMode(counts: number[], nDraws: number, rng: NumpyRandomState): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  const continuous = counts.map((c) => (c / total) * nDraws);
  const floored = continuous.map(Math.floor);
  let need = nDraws - floored.reduce((a, b) => a + b, 0);
  if (need > 0) {
    const remainder = continuous.map((c, i) => c - floored[i]);
    const values = [...new Set(remainder)].sort((a, b) => b - a);
    for (const v of values) {
      const inds = remainder.flatMap((r, i) => (r === v ? [i] : []));
      const add = Math.min(inds.length, need);
      for (const i of rng.choiceNoReplace(inds, add)) floored[i] += 1;
      need -= add;
      if (need === 0) break;
    }
  }
  return floored;
}

/**
 * `train_test_split(range(n), test_size=testSize (float), stratify=labels, random_state=seed)`:
 * returns the train and test positions in sklearn's output order. `labels` are class indices
 * 0..k-1 in sorted class order (as `np.unique` would number them).
 */
export function sklearnStratifiedSplit(
  labels: readonly number[],
  testSize: number,
  seed: number,
): { train: number[]; test: number[] } {
  const n = labels.length;
  const nTest = Math.ceil(testSize * n);
  const nTrain = n - nTest;
  const k = Math.max(...labels) + 1;
  const counts = new Array(k).fill(0);
  for (const y of labels) counts[y]++;
  if (counts.some((c) => c < 2)) {
    throw new RangeError("every class needs at least 2 members for a stratified split");
  }
  // np.argsort(y_indices, kind="mergesort") split by class: members of each class in row order.
  const members: number[][] = Array.from({ length: k }, () => []);
  labels.forEach((y, i) => members[y].push(i));
  const rng = new NumpyRandomState(seed);
  const nI = sklearnApproximateMode(counts, nTrain, rng);
  const tI = sklearnApproximateMode(counts.map((c, i) => c - nI[i]), nTest, rng);
  const train: number[] = [], test: number[] = [];
  for (let c = 0; c < k; c++) {
    const perm = rng.permutation(counts[c]);
    const idx = perm.map((p) => members[c][p]);
    train.push(...idx.slice(0, nI[c]));
    test.push(...idx.slice(nI[c], nI[c] + tI[c]));
  }
  return { train: rng.shuffle(train), test: rng.shuffle(test) };
}
