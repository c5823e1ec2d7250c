import assert from "node:assert/strict";
import { ingest, zeroCounters } from "../lib/ingest.ts";
import type { DownloadRow } from "../lib/store.ts";
import { startFakeWorker } from "./support/fake_worker.ts";
import { urlList } from "./support/fixture.ts";

const URLS = urlList(40);
const CONCURRENCY = 3;
const MAX_UNCOMMITTED = 5;

Deno.test("no request starts while too many results wait to be committed", async () => {
  const worker = startFakeWorker();
  try {
    // Commits are held until released, as on a disk that stalls.
    let holding = true;
    const held: (() => void)[] = [];
    const committed: string[] = [];
    let heldRows = 0;
    // The loop stops once MAX_UNCOMMITTED results wait; those in flight then still land.
    const stallsAt = MAX_UNCOMMITTED + CONCURRENCY - 1;
    const stalled = Promise.withResolvers<void>();
    const commit = (rows: DownloadRow[]) => {
      const done = () => committed.push(...rows.map((row) => row.url));
      if (!holding) {
        done();
        return Promise.resolve();
      }
      const { promise, resolve } = Promise.withResolvers<void>();
      held.push(() => {
        done();
        resolve();
      });
      heldRows += rows.length;
      if (heldRows >= stallsAt) stalled.resolve();
      return promise;
    };
    const counters = zeroCounters(URLS.length);
    const never = new AbortController().signal;
    const run = ingest(
      URLS.values(),
      commit,
      {
        datasetId: "ds",
        keyPrefix: "archive/ds",
        endpoint: { url: worker.url, authToken: worker.token, timeoutMs: 30_000 },
        concurrency: CONCURRENCY,
        policy: { maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1 },
        maxUncommitted: MAX_UNCOMMITTED,
      },
      counters,
      { graceful: never, immediate: never },
    );

    await stalled.promise;
    assert.equal(heldRows, stallsAt);
    assert.equal(counters.inFlight, 0, "nothing in flight while commits lag");
    assert.equal(worker.posts().length, stallsAt, "nothing sent beyond the bound");
    assert.equal(counters.success, 0, "a result counts once committed");

    holding = false;
    for (const release of held.splice(0)) release();
    assert.equal(await run, "completed");
    assert.deepEqual(committed.toSorted(), URLS.toSorted());
    assert.equal(counters.success, URLS.length);
    assert.equal(worker.posts().length, URLS.length, "each URL sent once");
  } finally {
    await worker.close();
  }
});
