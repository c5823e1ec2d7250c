/**
 * When to retry a failed worker request, and how long to wait first: exponential backoff with
 * jitter as the Python original did, but only for failures that can heal.
 *
 * @module
 */

/** How many times, and how patiently, a failed request is tried again. */
export interface RetryPolicy {
  /** Further attempts after the first; 0 means one attempt in all. */
  maxRetries: number;
  /** Delay before the first retry, doubled for each one after it. */
  baseDelayMs: number;
  /** Ceiling of the doubled delay, and of any `Retry-After` the worker asks for. */
  maxDelayMs: number;
}

const PERMANENT_STATUSES = new Set([400, 401, 403, 404, 405, 413, 415, 422]);
const TRANSIENT_STATUSES = new Set([408, 425, 429]);
const SOURCE_STATUS = /^Source returned HTTP (\d{3})\b/;

/**
 * Whether a failed answer may succeed if sent again. `error` is the worker's JSON `error` message,
 * or `null` when the body was not the worker's JSON — an HTML page from Cloudflare in front of
 * the worker, say, which is transient unless its status says the request itself is wrong.
 * The worker reports a source's own error as `502 Source returned HTTP <n>`: a source 4xx other
 * than 408 and 429 will not heal.
 */
export function isRetryableAnswer(status: number, error: string | null): boolean {
  if (PERMANENT_STATUSES.has(status)) return false;
  if (error === null) return true;
  const source = SOURCE_STATUS.exec(error);
  const effective = source === null ? status : Number(source[1]);
  return effective >= 500 || TRANSIENT_STATUSES.has(effective);
}

/**
 * The delay before retry number `retry` (1 for the first): `base * 2^(retry-1)` plus up to 50%
 * jitter so that many failing URLs do not return in lockstep, never above the policy's maximum.
 */
export function backoffDelayMs(
  policy: RetryPolicy,
  retry: number,
  random: () => number = Math.random,
): number {
  const delay = policy.baseDelayMs * 2 ** (retry - 1);
  return Math.min(policy.maxDelayMs, delay + delay * 0.5 * random());
}

/**
 * Milliseconds a `Retry-After` header value asks for (delta-seconds or an HTTP date, relative to
 * `now`), or `null` when absent or unreadable.
 */
export function parseRetryAfterMs(value: string | null, now: number = Date.now()): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // An HTTP date spells its day and month; Date.parse alone takes "-1" or "1.5" for dates in 2001.
  if (!/[a-z]/i.test(trimmed)) return null;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/** The delay before retry number `retry`: the worker's `Retry-After` if it gave one, capped. */
export function retryDelayMs(
  policy: RetryPolicy,
  retry: number,
  retryAfterMs: number | null,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== null) return Math.min(retryAfterMs, policy.maxDelayMs);
  return backoffDelayMs(policy, retry, random);
}
