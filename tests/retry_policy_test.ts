import assert from "node:assert/strict";
import {
  backoffDelayMs,
  isRetryableAnswer,
  parseRetryAfterMs,
  retryDelayMs,
  type RetryPolicy,
} from "../lib/retry_policy.ts";

const policy: RetryPolicy = { maxRetries: 3, baseDelayMs: 2000, maxDelayMs: 60_000 };

Deno.test("isRetryableAnswer retries what can heal: 5xx, 408, 425, 429", () => {
  for (const status of [408, 425, 429, 500, 502, 503, 504]) {
    assert.equal(isRetryableAnswer(status, "some worker error"), true, `JSON ${status}`);
    assert.equal(isRetryableAnswer(status, null), true, `HTML ${status}`);
  }
});

Deno.test("isRetryableAnswer records the request's own errors at once, JSON or not", () => {
  for (const status of [400, 401, 403, 404, 405, 413, 415, 422]) {
    assert.equal(isRetryableAnswer(status, "some worker error"), false, `JSON ${status}`);
    assert.equal(isRetryableAnswer(status, null), false, `HTML ${status}`);
    assert.equal(isRetryableAnswer(status, ""), false, `JSON without error ${status}`);
  }
});

Deno.test("isRetryableAnswer retries a non-JSON error page, such as Cloudflare's 520", () => {
  assert.equal(isRetryableAnswer(520, null), true);
  assert.equal(isRetryableAnswer(200, null), true);
});

Deno.test("isRetryableAnswer reads the source's status out of the worker's 502", () => {
  for (const source of [400, 401, 403, 404, 410, 451]) {
    assert.equal(isRetryableAnswer(502, `Source returned HTTP ${source}`), false, `${source}`);
  }
  for (const source of [408, 425, 429, 500, 502, 503, 504]) {
    assert.equal(isRetryableAnswer(502, `Source returned HTTP ${source}`), true, `${source}`);
  }
  assert.equal(isRetryableAnswer(502, "Download failed: connection reset"), true);
  assert.equal(isRetryableAnswer(502, "S3 upload failed: SlowDown"), true);
});

Deno.test("parseRetryAfterMs reads delta-seconds", () => {
  assert.equal(parseRetryAfterMs("0"), 0);
  assert.equal(parseRetryAfterMs("120"), 120_000);
  assert.equal(parseRetryAfterMs(" 7 "), 7000);
});

Deno.test("parseRetryAfterMs reads an HTTP date relative to now, never negative", () => {
  const now = Date.parse("2015-10-21T07:28:00Z");
  assert.equal(parseRetryAfterMs("Wed, 21 Oct 2015 07:28:30 GMT", now), 30_000);
  assert.equal(parseRetryAfterMs("Wednesday, 21-Oct-15 07:29:00 GMT", now), 60_000);
  assert.equal(parseRetryAfterMs("Wed, 21 Oct 2015 07:00:00 GMT", now), 0);
});

Deno.test("parseRetryAfterMs ignores what is neither seconds nor a date", () => {
  for (const value of [null, "", "soon", "-1", "1.5", "10 seconds later"]) {
    assert.equal(parseRetryAfterMs(value, 0), null, `${value}`);
  }
});

Deno.test("backoffDelayMs doubles from the base, with up to 50% jitter", () => {
  const none = () => 0;
  const most = () => 0.999999;
  assert.equal(backoffDelayMs(policy, 1, none), 2000);
  assert.equal(backoffDelayMs(policy, 2, none), 4000);
  assert.equal(backoffDelayMs(policy, 3, none), 8000);
  assert.equal(backoffDelayMs(policy, 1, () => 0.5), 2500);
  for (let retry = 1; retry <= 4; retry++) {
    const base = 2000 * 2 ** (retry - 1);
    const high = backoffDelayMs(policy, retry, most);
    assert.ok(high >= base && high < base * 1.5, `retry ${retry}: ${high}`);
  }
});

Deno.test("backoffDelayMs never exceeds the maximum, jitter included", () => {
  for (const random of [() => 0, () => 0.5, () => 0.999999]) {
    for (let retry = 1; retry <= 12; retry++) {
      assert.ok(backoffDelayMs(policy, retry, random) <= policy.maxDelayMs, `retry ${retry}`);
    }
  }
  assert.equal(backoffDelayMs(policy, 10, () => 0), policy.maxDelayMs);
});

Deno.test("retryDelayMs prefers Retry-After to the backoff, capped at the maximum", () => {
  assert.equal(retryDelayMs(policy, 1, 5000, () => 0.9), 5000);
  assert.equal(retryDelayMs(policy, 3, 0, () => 0.9), 0);
  assert.equal(retryDelayMs(policy, 1, 3_600_000, () => 0.9), 60_000);
  assert.equal(retryDelayMs(policy, 2, null, () => 0), 4000);
});
