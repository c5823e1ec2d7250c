import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";
import { type LiveCli, startCli } from "./support/live_cli.ts";
import { type FakeWorker, type FakeWorkerOptions, startFakeWorker } from "./support/fake_worker.ts";
import {
  type Fixture,
  fixture,
  integrityCheck,
  readManifest,
  rowsByUrl,
  urlList,
} from "./support/fixture.ts";

const CONCURRENCY = 4;
const URLS = urlList(30);

/**
 * Starts a run of `URLS` at `CONCURRENCY` against a fake worker that holds every POST (`worker`
 * options may say otherwise), with `args` added, and hands it to `test` once `CONCURRENCY`
 * requests are held there.
 */
async function whileHeld(
  test: (cli: LiveCli, worker: FakeWorker, files: Fixture) => Promise<void>,
  { worker: options = {}, args = [] }: { worker?: FakeWorkerOptions; args?: string[] } = {},
): Promise<void> {
  const worker = startFakeWorker({ gated: true, ...options });
  await using files = await fixture(URLS);
  try {
    const cli = startCli(files.args(worker, ["--concurrency", String(CONCURRENCY), ...args]));
    await worker.whenHeld(CONCURRENCY);
    await test(cli, worker, files);
  } finally {
    await worker.close();
  }
}

Deno.test("SIGINT lets in-flight requests finish, sends nothing new, exits 130", async () => {
  await whileHeld(async (cli, worker, files) => {
    cli.kill("SIGINT");
    await cli.waitForStderr(/SIGINT: finishing 4 request\(s\) in flight/);
    worker.openGate();
    const result = await cli.result;

    assert.equal(result.code, 130, result.stderr);
    const posts = worker.posts();
    assert.deepEqual(posts.toSorted(), URLS.slice(0, CONCURRENCY).toSorted(), "none after it");
    const rows = rowsByUrl(files.db);
    assert.deepEqual([...rows.keys()].toSorted(), posts.toSorted());
    for (const row of rows.values()) assert.equal(row.status, "success");
    assert.match(result.stdout, /this run: 4 success, 0 failed, 0 skipped, 26 not attempted/);
    assert.equal((await readManifest(`${files.out}.parquet`)).numRows, CONCURRENCY);
    assert.equal(worker.uploads().length, 1, "final upload");
    assert.equal(integrityCheck(files.db), "ok");

    const again = await runCli(files.args(worker, ["--concurrency", String(CONCURRENCY)]));
    assert.equal(again.code, 0, again.stderr);
    const resumed = worker.posts().slice(CONCURRENCY);
    assert.deepEqual(resumed.toSorted(), URLS.slice(CONCURRENCY).toSorted(), "resumed");
    assert.ok([...rowsByUrl(files.db).values()].every((row) => row.status === "success"));
  });
});

Deno.test("SIGTERM stops the same way and exits 143", async () => {
  await whileHeld(async (cli, worker, files) => {
    cli.kill("SIGTERM");
    await cli.waitForStderr(/SIGTERM: finishing 4 request\(s\) in flight/);
    worker.openGate();
    const result = await cli.result;
    assert.equal(result.code, 143, result.stderr);
    assert.equal(worker.posts().length, CONCURRENCY);
    assert.equal(rowsByUrl(files.db).size, CONCURRENCY);
    assert.match(result.stdout, /this run: 4 success/);
  });
});

Deno.test("a second signal aborts in-flight requests, recorded as interrupted", async () => {
  await whileHeld(async (cli, worker, files) => {
    cli.kill("SIGINT");
    await cli.waitForStderr(/SIGINT: finishing/);
    cli.kill("SIGINT");
    const result = await cli.result;

    assert.equal(result.code, 130, result.stderr);
    assert.match(result.stderr, /SIGINT: aborting 4 request\(s\) in flight/);
    const rows = rowsByUrl(files.db);
    assert.deepEqual([...rows.keys()].toSorted(), URLS.slice(0, CONCURRENCY).toSorted());
    for (const row of rows.values()) {
      assert.equal(row.status, "failed");
      assert.equal(row.error, "interrupted");
      assert.equal(row.http_status, null);
    }
    assert.match(result.stdout, /this run: 0 success, 4 failed, 0 skipped, 26 not attempted/);
    assert.equal(integrityCheck(files.db), "ok");
    assert.equal((await readManifest(`${files.out}.parquet`)).numRows, CONCURRENCY);

    worker.openGate();
    const again = await runCli(files.args(worker));
    assert.equal(again.code, 0, again.stderr);
    const after = rowsByUrl(files.db);
    assert.equal(after.size, URLS.length);
    assert.ok([...after.values()].every((row) => row.status === "success"));
  });
});

Deno.test("--grace bounds the wait: requests still running then are interrupted", async () => {
  await whileHeld(async (cli, _worker, files) => {
    cli.kill("SIGINT");
    const result = await cli.result;
    assert.equal(result.code, 130, result.stderr);
    const rows = [...rowsByUrl(files.db).values()];
    assert.equal(rows.length, CONCURRENCY);
    assert.ok(rows.every((row) => row.status === "failed" && row.error === "interrupted"));
    assert.match(result.stdout, /^parquet upload: ok \(/m, "--grace does not cut the upload");
  }, { args: ["--grace", "0.2"] });
});

Deno.test("a URL waiting to retry when SIGINT comes is recorded with its failure, not retried", async () => {
  const [flaky, ...rest] = URLS;
  const answers = {
    gated: (url: string) => url !== flaky,
    script: (url: string) => url === flaky ? { status: 503, body: { error: "busy" } } : undefined,
  };
  const args = ["--retry-delay", "600", "--retry-max-delay", "600"];
  // Once held, the flaky URL has failed and a fourth request took its slot: it waits out its delay.
  await whileHeld(async (cli, worker, files) => {
    cli.kill("SIGINT");
    await cli.waitForStderr(/SIGINT: finishing/);
    worker.openGate();
    const result = await cli.result;
    assert.equal(result.code, 130, result.stderr);
    assert.deepEqual(worker.posts().toSorted(), [flaky, ...rest.slice(0, CONCURRENCY)].toSorted());
    assert.equal(worker.posts().filter((url) => url === flaky).length, 1);
    const row = rowsByUrl(files.db).get(flaky)!;
    assert.equal(row.status, "failed");
    assert.equal(row.http_status, 503);
    assert.equal(row.error, "busy");
    assert.match(result.stdout, /this run: 4 success, 1 failed/);
  }, { worker: answers, args });
});

Deno.test("a second signal cuts a hanging manifest upload short; the summary says so", async () => {
  await whileHeld(async (cli, worker, files) => {
    cli.kill("SIGINT");
    await cli.waitForStderr(/SIGINT: finishing/);
    worker.openGate();
    await worker.whenUploads(1);
    cli.kill("SIGINT");
    const result = await cli.result;
    assert.equal(result.code, 130, result.stderr);
    assert.match(result.stdout, /this run: 4 success, 0 failed/);
    assert.match(result.stdout, /^parquet upload: FAILED after 1 attempt\(s\): interrupted$/m);
    assert.equal((await readManifest(`${files.out}.parquet`)).numRows, CONCURRENCY);
    assert.equal(integrityCheck(files.db), "ok");
  }, { worker: { putScript: () => ({ hang: true }) } });
});
