/**
 * `--rate`: a token bucket that caps how many worker requests start each second, on top of
 * `--concurrency`. Each request makes the worker fetch from a source server, and those belong to
 * municipalities and small agencies: a polite client spaces its requests.
 *
 * @module
 */

import type { Pacer } from "./ingest.ts";

/**
 * Tokens accrue at `ratePerSecond` up to `burst`; each request start takes one. With the default
 * burst of 1 (as rclone's `--tpslimit`), starts are at least `1 / ratePerSecond` seconds apart,
 * and any interval of `t` seconds holds at most `1 + t × ratePerSecond` of them.
 */
export class TokenBucket implements Pacer {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  /**
   * @param ratePerSecond tokens added per second, > 0.
   * @param burst most tokens held at once, ≥ 1; the bucket starts full.
   * @param now a monotonic clock in milliseconds, replaceable in tests.
   */
  constructor(ratePerSecond: number, burst = 1, now: () => number = () => performance.now()) {
    if (!(ratePerSecond > 0) || !(burst >= 1)) {
      throw new RangeError(`invalid token bucket: rate ${ratePerSecond}, burst ${burst}`);
    }
    this.#perMs = ratePerSecond / 1000;
    this.#burst = burst;
    this.#now = now;
    this.#tokens = burst;
    this.#at = now();
  }

  /** Takes a token and returns 0, or returns the milliseconds until one will be there. */
  take(): number {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#perMs);
    this.#at = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - this.#tokens) / this.#perMs));
  }
}
