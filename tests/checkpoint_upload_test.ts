import assert from "node:assert/strict";
import { join } from "node:path";
import { uploadManifest } from "../lib/checkpoint.ts";
import { runCli } from "./support/cli.ts";
import { startTestWorker } from "./support/local_worker.ts";
import { type FakeWorker, type PutScript, startFakeWorker } from "./support/fake_worker.ts";
import { fixture, readManifest, rowsByUrl, urlList } from "./support/fixture.ts";

const KEY = "archive/test/manifest.parquet";

function uploads(worker: FakeWorker): string[] {
  return worker.uploads().map((r) => r.headers.get("X-S3-Key")!);
}

async function runWithPuts(
  putScript: PutScript,
  urls: string[],
  extra: string[],
  answerDelayMs = 0,
) {
  const worker = startFakeWorker({
    putScript,
    script: answerDelayMs > 0 ? () => ({ delayMs: answerDelayMs }) : undefined,
  });
  await using files = await fixture(urls);
  try {
    const result = await runCli(files.args(worker, ["--key-prefix", "archive/test/", ...extra]));
    const rows = rowsByUrl(files.db);
    const manifest = await readManifest(`${files.out}.parquet`);
    return { result, rows, manifestRows: manifest.numRows, uploads: uploads(worker) };
  } finally {
    await worker.close();
  }
}

Deno.test("a failing upload is retried like a download and then lands: exit 0", async () => {
  const { result, uploads } = await runWithPuts(
    (_, attempt) => attempt < 3 ? { status: 503, body: "<html>busy</html>" } : undefined,
    urlList(3),
    ["--max-retries", "3"],
  );
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(uploads, [KEY, KEY, KEY]);
  assert.match(result.stdout, /^parquet upload: ok \(archive\/test\/manifest\.parquet\)$/m);
});

Deno.test("a final upload that still fails: exit 1 and the summary says so", async () => {
  const { result, rows, manifestRows, uploads } = await runWithPuts(
    () => ({ status: 502, body: { error: "S3 upload failed: SlowDown" } }),
    urlList(3),
    ["--max-retries", "2"],
  );
  assert.equal(result.code, 1, result.stderr);
  assert.equal(uploads.length, 3);
  assert.match(
    result.stdout,
    /^parquet upload: FAILED after 3 attempt\(s\): S3 upload failed: SlowDown$/m,
  );
  assert.ok([...rows.values()].every((row) => row.status === "success"));
  assert.equal(manifestRows, 3, "the local manifest is written all the same");
});

Deno.test("an upload refused outright (403) is not retried", async () => {
  const { result, uploads } = await runWithPuts(
    () => ({ status: 403, body: { error: "Forbidden key" } }),
    urlList(2),
    ["--max-retries", "3"],
  );
  assert.equal(result.code, 1);
  assert.equal(uploads.length, 1);
  assert.match(result.stdout, /parquet upload: FAILED after 1 attempt\(s\): Forbidden key/);
});

Deno.test("an upload that hangs past --timeout is retried, then reported", async () => {
  const { result, uploads } = await runWithPuts(
    () => ({ hang: true }),
    urlList(1),
    ["--max-retries", "1", "--timeout", "0.5"],
  );
  assert.equal(result.code, 1);
  assert.equal(uploads.length, 2);
  assert.match(
    result.stdout,
    /parquet upload: FAILED after 2 attempt\(s\): timed out after 0\.5 s/,
  );
});

Deno.test("a failed mid-run upload is reported, and the final one makes up for it", async () => {
  // One at a time, 12 ms each: the 100th success comes at least 1.2 s in, past the shortest
  // spacing of checkpoints (1 s), so the checkpoint it asks for runs before the final one.
  const { result, uploads, manifestRows } = await runWithPuts(
    (_, attempt) =>
      attempt <= 2 ? { status: 503, body: { error: "S3 upload failed: busy" } } : undefined,
    urlList(150),
    ["--max-retries", "1", "--concurrency", "1"],
    12,
  );
  assert.equal(result.code, 0, result.stderr);
  assert.equal(uploads.length, 3, "two for the checkpoint at 100, one final");
  assert.match(
    result.stderr,
    /checkpoint upload to archive\/test\/manifest\.parquet failed: S3 upload failed: busy/,
  );
  assert.match(result.stdout, /^parquet upload: ok \(archive\/test\/manifest\.parquet\)$/m);
  assert.equal(manifestRows, 150);
});

Deno.test("a manifest is uploaded byte for byte from its parts, as one body or streamed", async () => {
  const worker = await startTestWorker();
  const fake = startFakeWorker({ token: worker.token });
  try {
    const parts = [
      new Uint8Array([80, 65, 82, 49]),
      crypto.getRandomValues(new Uint8Array(60_000)),
    ];
    const manifest = { parts, size: 60_004 };
    const expected = new Uint8Array([...parts[0], ...parts[1]]);
    const policy = { maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1 };
    const cases = [["whole.parquet", 1_000_000], ["streamed.parquet", 10]] as const;
    for (const [key, streamFromBytes] of cases) {
      for (const url of [worker.url, fake.url]) {
        const endpoint = { url, authToken: worker.token, timeoutMs: 10_000 };
        const { outcome } = await uploadManifest(
          manifest,
          { endpoint, key, policy },
          streamFromBytes,
        );
        assert.ok(outcome.ok, outcome.error ?? "");
      }
      assert.deepEqual(await Deno.readFile(join(worker.store, key)), expected);
    }
    // A whole body says its length; a streamed one is sent chunked.
    const lengths = fake.uploads().map((put) => put.headers.get("Content-Length"));
    assert.deepEqual(lengths, ["60004", null]);
  } finally {
    await fake.close();
    await worker.close();
  }
});
