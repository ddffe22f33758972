/** A small seeded PRNG (xorshift64*) for reproducible randomized tests. */
export class Prng {
  private s: bigint;
  constructor(seed: number | bigint) { this.s = BigInt.asUintN(64, BigInt(seed) || 0x9e3779b97f4a7c15n); }
  /** Next 64 random bits as an unsigned BigInt. */
  next64(): bigint {
    let x = this.s;
    x ^= x >> 12n; x ^= BigInt.asUintN(64, x << 25n); x ^= x >> 27n;
    this.s = x;
    return BigInt.asUintN(64, x * 0x2545f4914f6cdd1dn);
  }
  /** Uniform integer in [0, n). */
  int(n: number): number { return Number(this.next64() % BigInt(n)); }
  /** A 64-bit value biased towards corner cases (0, ±1, extremes, small, 32-bit edges). */
  interesting64(): bigint {
    const corners = [0n, 1n, -1n, 2n, -2n, 0x7fffffffffffffffn, -0x8000000000000000n, 0x7fffffffn, -0x80000000n,
      0xffffffffn, 0x80000000n, 0x100000000n, 0xffffn, 0x8000n];
    const k = this.int(4);
    if (k === 0) return corners[this.int(corners.length)]!;
    if (k === 1) return BigInt(this.int(2000) - 1000);
    if (k === 2) return BigInt.asIntN(64, this.next64() >> BigInt(this.int(64)));
    return BigInt.asIntN(64, this.next64());
  }
}
