import assert from "node:assert/strict";
import { TokenBucket } from "../lib/rate_limit.ts";
import { startFakeWorker } from "./support/fake_worker.ts";
import { runCli } from "./support/cli.ts";
import { fixture, urlList } from "./support/fixture.ts";

Deno.test("the token bucket spaces takes 1/rate apart and says how long to wait", () => {
  let now = 0;
  const bucket = new TokenBucket(4, 1, () => now);
  assert.equal(bucket.take(), 0, "starts full");
  assert.equal(bucket.take(), 250);
  now = 100;
  assert.equal(bucket.take(), 150);
  now = 250;
  assert.equal(bucket.take(), 0);
  now = 10_000;
  assert.equal(bucket.take(), 0, "a long pause banks only `burst` tokens");
  assert.equal(bucket.take(), 250);
});

Deno.test("a burst lets that many go at once, then the rate holds", () => {
  let now = 0;
  const bucket = new TokenBucket(2, 3, () => now);
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take()], [0, 0, 0]);
  assert.equal(bucket.take(), 500);
  now = 500;
  assert.equal(bucket.take(), 0);
});

Deno.test("in any interval, takes never exceed burst + rate × length", () => {
  let now = 0;
  const bucket = new TokenBucket(10, 1, () => now);
  const takes: number[] = [];
  while (takes.length < 50) {
    const wait = bucket.take();
    if (wait === 0) takes.push(now);
    else now += wait;
  }
  for (let i = 0; i < takes.length; i++) {
    const inSecond = takes.filter((t) => t >= takes[i] && t < takes[i] + 1000).length;
    assert.ok(inSecond <= 11, `${inSecond} takes within 1 s of ${takes[i]} ms`);
  }
});

Deno.test("a bad rate is refused", () => {
  assert.throws(() => new TokenBucket(0), RangeError);
  assert.throws(() => new TokenBucket(1, 0.5), RangeError);
});

Deno.test("--rate caps request starts per second at the worker, on top of --concurrency", async () => {
  await using files = await fixture(urlList(25));
  const worker = startFakeWorker();
  try {
    const result = await runCli(
      files.args(worker, ["--concurrency", "12", "--rate", "10", "--quiet"]),
    );
    assert.equal(result.code, 0, result.stderr);
    const arrivals = worker.requests.filter((r) => r.method === "POST").map((r) => r.receivedAt);
    assert.equal(arrivals.length, 25);
    // Without the cap all 25 arrive within milliseconds. With it, the client starts at most
    // 1 + 10 in any second; arrival times carry network jitter, hence the slack of 3.
    const most = Math.max(
      ...arrivals.map((t) => arrivals.filter((u) => u >= t && u < t + 1000).length),
    );
    assert.ok(most <= 14, `${most} requests arrived within one second`);
  } finally {
    await worker.close();
  }
});
