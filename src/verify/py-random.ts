/**
 * CPython's `random.Random(seed_string).randint(a, b)`, bit for bit. The client draws a
 * device's phased-update percentage this way (client-protocol §6.3):
 *   random.Random("{channel}.{max_target}.{machine_id}").randint(0, 100)
 * so predicting who gets a phased update needs the same Mersenne Twister and the same string
 * seeding (seed version 2: the UTF-8 bytes followed by their SHA-512, read as one big-endian
 * integer, handed to init_by_array as 32-bit words, least significant word first).
 */
import { createHash } from "node:crypto";

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER = 0x80000000;
const LOWER = 0x7fffffff;

/** MT19937 exactly as in CPython's Modules/_randommodule.c. */
export class MersenneTwister {
  private readonly mt = new Uint32Array(N);
  private mti = N + 1;

  private initGenrand(s: number): void {
    const mt = this.mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1];
      mt[i] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + i) >>> 0;
    }
    this.mti = N;
  }

  /** init_by_array(init_key): what random.seed(int) calls with the int's 32-bit words. */
  initByArray(key: readonly number[]): void {
    const mt = this.mt;
    this.initGenrand(19650218);
    let i = 1;
    let j = 0;
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const prev = mt[i - 1];
      mt[i] = ((mt[i] ^ Math.imul(prev ^ (prev >>> 30), 1664525)) + key[j] + j) >>> 0;
      i++;
      j++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1];
      mt[i] = ((mt[i] ^ Math.imul(prev ^ (prev >>> 30), 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
    }
    mt[0] = 0x80000000;
  }

  genrandUint32(): number {
    const mt = this.mt;
    if (this.mti >= N) {
      const twist = (a: number, b: number, c: number) => {
        const y = (mt[a] & UPPER) | (mt[b] & LOWER);
        return (mt[c] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0)) >>> 0;
      };
      let kk = 0;
      for (; kk < N - M; kk++) mt[kk] = twist(kk, kk + 1, kk + M);
      for (; kk < N - 1; kk++) mt[kk] = twist(kk, kk + 1, kk + M - N);
      mt[N - 1] = twist(N - 1, 0, M - 1);
      this.mti = 0;
    }
    let y = mt[this.mti++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** random.getrandbits(k) for 1 <= k <= 32. */
  getrandbits(k: number): number {
    if (!(k >= 1 && k <= 32)) throw new RangeError(`getrandbits supports 1..32 bits here, not ${k}`);
    return this.genrandUint32() >>> (32 - k);
  }

  /** random.randint(a, b): randrange(a, b + 1) through _randbelow (rejection sampling). */
  randint(a: number, b: number): number {
    const n = b - a + 1;
    if (!(n >= 1 && n <= 2 ** 32)) throw new RangeError(`randint range too large or empty: ${a}..${b}`);
    const k = Math.floor(Math.log2(n)) + 1; // n.bit_length()
    let r = this.getrandbits(Math.min(k, 32));
    while (r >= n) r = this.getrandbits(Math.min(k, 32));
    return a + r;
  }
}

/** The 32-bit words of a big-endian unsigned integer, least significant first (at least one). */
function wordsOf(bigEndian: Buffer): number[] {
  let start = 0;
  while (start < bigEndian.length && bigEndian[start] === 0) start++;
  const bytes = bigEndian.subarray(start);
  const words: number[] = [];
  for (let end = bytes.length; end > 0; end -= 4) {
    let w = 0;
    for (let p = Math.max(0, end - 4); p < end; p++) w = w * 256 + bytes[p];
    words.push(w >>> 0);
  }
  return words.length > 0 ? words : [0];
}

/** `random.Random(seed)` for a str seed (CPython 3.2+, version 2 seeding). */
export function pyRandomFromString(seed: string): MersenneTwister {
  const bytes = Buffer.from(seed, "utf8");
  const big = Buffer.concat([bytes, createHash("sha512").update(bytes).digest()]);
  const mt = new MersenneTwister();
  mt.initByArray(wordsOf(big));
  return mt;
}

/**
 * The device's phase (0..100) as system-image 3.3 computes it (helpers.phased_percentage):
 * `channel` is what _calculate_winner passes: the channel's alias, else the device's
 * channel_target, which is normally unset: the seed then starts with the literal "None".
 */
export function devicePhase(channel: string | null | undefined, maxTarget: number, machineId: string): number {
  return pyRandomFromString(`${channel ?? "None"}.${maxTarget}.${machineId.trim()}`).randint(0, 100);
}
