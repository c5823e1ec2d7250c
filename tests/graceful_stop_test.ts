import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";
import { startCli } from "./support/live_cli.ts";
import { startFakeWorker } from "./support/fake_worker.ts";
import { fixture, integrityCheck, readManifest, rowsByUrl, urlList } from "./support/fixture.ts";

const CONCURRENCY = 4;
const URLS = urlList(30);

Deno.test("SIGINT lets in-flight requests finish, sends nothing new, exits 130", async () => {
  const worker = startFakeWorker({ gated: true });
  await using files = await fixture(URLS);
  try {
    const cli = startCli(files.args(worker, ["--concurrency", String(CONCURRENCY)]));
    await worker.whenHeld(CONCURRENCY);
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
    assert.equal(worker.puts().filter((r) => r.headers.get("X-S3-Key")).length, 1, "final upload");
    assert.equal(integrityCheck(files.db), "ok");

    const again = await runCli(files.args(worker, ["--concurrency", String(CONCURRENCY)]));
    assert.equal(again.code, 0, again.stderr);
    const resumed = worker.posts().slice(CONCURRENCY);
    assert.deepEqual(resumed.toSorted(), URLS.slice(CONCURRENCY).toSorted(), "resumed");
    assert.ok([...rowsByUrl(files.db).values()].every((row) => row.status === "success"));
  } finally {
    await worker.close();
  }
});

Deno.test("SIGTERM stops the same way and exits 143", async () => {
  const worker = startFakeWorker({ gated: true });
  await using files = await fixture(URLS);
  try {
    const cli = startCli(files.args(worker, ["--concurrency", String(CONCURRENCY)]));
    await worker.whenHeld(CONCURRENCY);
    cli.kill("SIGTERM");
    await cli.waitForStderr(/SIGTERM: finishing 4 request\(s\) in flight/);
    worker.openGate();
    const result = await cli.result;
    assert.equal(result.code, 143, result.stderr);
    assert.equal(worker.posts().length, CONCURRENCY);
    assert.equal(rowsByUrl(files.db).size, CONCURRENCY);
    assert.match(result.stdout, /this run: 4 success/);
  } finally {
    await worker.close();
  }
});

Deno.test("a second signal aborts in-flight requests, recorded as interrupted", async () => {
  const worker = startFakeWorker({ gated: true });
  await using files = await fixture(URLS);
  try {
    const cli = startCli(files.args(worker, ["--concurrency", String(CONCURRENCY)]));
    await worker.whenHeld(CONCURRENCY);
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
  } finally {
    await worker.close();
  }
});

Deno.test("--grace bounds the wait: requests still running then are interrupted", async () => {
  const worker = startFakeWorker({ gated: true });
  await using files = await fixture(URLS);
  try {
    const cli = startCli(
      files.args(worker, ["--concurrency", String(CONCURRENCY), "--grace", "0.2"]),
    );
    await worker.whenHeld(CONCURRENCY);
    cli.kill("SIGINT");
    const result = await cli.result;
    assert.equal(result.code, 130, result.stderr);
    const rows = [...rowsByUrl(files.db).values()];
    assert.equal(rows.length, CONCURRENCY);
    assert.ok(rows.every((row) => row.status === "failed" && row.error === "interrupted"));
    assert.match(result.stdout, /^parquet upload: ok \(/m, "--grace does not cut the upload");
  } finally {
    await worker.close();
  }
});

Deno.test("a URL waiting to retry when SIGINT comes is recorded with its failure, not retried", async () => {
  const [flaky, ...rest] = URLS;
  const worker = startFakeWorker({
    gated: (url) => url !== flaky,
    script: (url) => url === flaky ? { status: 503, body: { error: "busy" } } : undefined,
  });
  await using files = await fixture(URLS);
  try {
    const cli = startCli(files.args(worker, [
      "--concurrency",
      String(CONCURRENCY),
      "--retry-delay",
      "600",
      "--retry-max-delay",
      "600",
    ]));
    // The flaky URL failed and a fourth request took its slot: it is waiting out its delay.
    await worker.whenHeld(CONCURRENCY);
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
  } finally {
    await worker.close();
  }
});

Deno.test("a second signal cuts a hanging manifest upload short; the summary says so", async () => {
  const worker = startFakeWorker({ gated: true, putScript: () => ({ hang: true }) });
  await using files = await fixture(URLS);
  try {
    const cli = startCli(files.args(worker, ["--concurrency", String(CONCURRENCY)]));
    await worker.whenHeld(CONCURRENCY);
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
  } finally {
    await worker.close();
  }
});
