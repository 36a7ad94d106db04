/**
 * A small seeded random number generator whose whole state is one serialisable value, so that
 * model initialisation, data order, augmentation and CutMix are reproducible and resumable.
 *
 * @module
 */

/**
 * SplitMix64-seeded xoshiro128** generator (32-bit output). Fast, good statistics, and its state
 * (four uint32) round-trips through {@link Rng.state} / {@link Rng.fromState} for checkpoints.
 */
export class Rng {
  #s: Uint32Array;

  /** A generator seeded from an integer (any JS number; the same seed gives the same stream). */
  constructor(seed: number) {
    this.#s = new Uint32Array(4);
    let x = BigInt.asUintN(64, BigInt(Math.trunc(seed)));
    for (let i = 0; i < 4; i++) {
      x = BigInt.asUintN(64, x + 0x9e3779b97f4a7c15n);
      let z = x;
      z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
      z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
      z = z ^ (z >> 31n);
      this.#s[i] = Number(z & 0xffffffffn);
    }
    if (this.#s.every((v) => v === 0)) this.#s[0] = 1;
  }

  /** Restores a generator from {@link Rng.state}. */
  static fromState(state: readonly number[]): Rng {
    const r = new Rng(0);
    r.#s.set(state);
    return r;
  }

  /** The generator's full state (4 uint32), for checkpoints. */
  state(): number[] {
    return Array.from(this.#s);
  }

  /** A derived, independent generator (e.g. one per purpose), advancing this one once. */
  fork(): Rng {
    return new Rng(this.nextUint32() * 4294967296 + this.nextUint32());
  }

  /** Next uniform uint32. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  uniform(): number {
    return ((this.nextUint32() >>> 5) * 67108864 + (this.nextUint32() >>> 6)) / 9007199254740992;
  }

  /** Uniform float in [lo, hi). */
  uniformIn(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Uniform integer in [lo, hi] (inclusive, as Python's random.randint). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo + 1));
  }

  /** Standard normal sample (Box-Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.uniform() * (i + 1));
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
