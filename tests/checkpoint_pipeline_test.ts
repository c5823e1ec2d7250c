import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { parquetMetadata } from "hyparquet";
import { runCli } from "./support/cli.ts";
import { startFakeWorker, successBody } from "./support/fake_worker.ts";
import { encodeManifest, expectedManifest, readManifest } from "./support/manifest.ts";
import { emptyColumns, manifestRow, pushRow } from "../lib/parquet.ts";
import { fixture, urlList } from "./support/fixture.ts";

/**
 * A loopback worker that answers POSTs after `delayMs` and keeps every uploaded manifest, noting
 * how many uploads were ever under way at once.
 */
function startRecordingWorker(delayMs: number) {
  const uploads: ArrayBuffer[] = [];
  const state = { putsInFlight: 0, maxPutsInFlight: 0, posts: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    if (req.headers.get("Authorization") !== "Bearer test-token") {
      return new Response("Unauthorized", { status: 401 });
    }
    if (req.method === "PUT") {
      if (!req.headers.get("X-S3-Key")) {
        return Response.json({ error: "'X-S3-Key' header is required." }, { status: 400 });
      }
      state.putsInFlight++;
      state.maxPutsInFlight = Math.max(state.maxPutsInFlight, state.putsInFlight);
      try {
        const bytes = await req.arrayBuffer();
        uploads.push(bytes);
        return Response.json({
          ...successBody("https://x/manifest.parquet", ""),
          size_bytes: bytes.byteLength,
        });
      } finally {
        state.putsInFlight--;
      }
    }
    const { download_url, key_prefix } = await req.json();
    state.posts++;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    return Response.json(successBody(download_url, key_prefix));
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    token: "test-token",
    uploads,
    state,
    close: () => server.shutdown(),
  };
}

Deno.test("after many folded checkpoints the manifest equals the table; uploads never overlap", async () => {
  await using files = await fixture(urlList(3000));
  const worker = startRecordingWorker(8);
  try {
    const run = await runCli(files.args(worker, ["--concurrency", "8"]));
    assert.equal(run.code, 0, run.stderr);
    const manifest = await readManifest(`${files.out}.parquet`);
    assert.equal(manifest.length, 3000);
    assert.deepEqual(manifest, expectedManifest(files.db));
    // 30 checkpoints fell due; fewer ran, one at a time, each seeing at least the rows before.
    assert.ok(
      worker.uploads.length >= 2 && worker.uploads.length < 30,
      `${worker.uploads.length} ${run.stderr} ${run.stdout}`,
    );
    assert.equal(worker.state.maxPutsInFlight, 1);
    const rows = worker.uploads.map((bytes) => Number(parquetMetadata(bytes).num_rows));
    assert.deepEqual(rows, rows.toSorted((a, b) => a - b));
    assert.equal(rows.at(-1), 3000);
  } finally {
    await worker.close();
  }
});

Deno.test("every result of a 100,000-URL run is committed and in the manifest", async () => {
  await using files = await fixture(urlList(100_000));
  const worker = startFakeWorker();
  try {
    const run = await runCli(files.args(worker, ["--concurrency", "64"]));
    assert.equal(run.code, 0, run.stderr);
    assert.equal(worker.posts().length, 100_000);
    const db = new DatabaseSync(files.db, { readOnly: true });
    const { n } = db.prepare("SELECT count(*) AS n FROM downloads WHERE status = 'success'")
      .get() as { n: number };
    db.close();
    assert.equal(n, 100_000);
    const manifest = await readManifest(`${files.out}.parquet`);
    assert.equal(new Set(manifest.map((r) => r.url)).size, 100_000);
    assert.ok(manifest.every((r) => r.status === "success"));
  } finally {
    await worker.close();
  }
});

Deno.test("a re-run with everything archived says there is nothing to do", async () => {
  await using files = await fixture(urlList(20));
  const worker = startFakeWorker();
  try {
    assert.equal((await runCli(files.args(worker))).code, 0);
    const before = await Deno.readFile(`${files.out}.parquet`);
    const again = await runCli(files.args(worker));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to do/);
    assert.equal(worker.posts().length, 20);
    assert.deepEqual(await Deno.readFile(`${files.out}.parquet`), before);
  } finally {
    await worker.close();
  }
});

Deno.test("rows of another dataset already in the manifest are kept; this database wins", async () => {
  const theirs = Array.from({ length: 5 }, (_, i) => `https://other.example.org/a/other_${i}.tif`);
  await using files = await fixture([...urlList(10), theirs[0]]);
  const worker = startFakeWorker();
  try {
    const other = emptyColumns();
    for (const url of theirs) {
      pushRow(other, {
        ...manifestRow({
          url,
          dataset_id: "ds-a",
          status: "failed",
          http_status: 502,
          etag: null,
          error: "Source returned HTTP 503",
          started_at: "2026-03-12T21:00:00Z",
          finished_at: null,
          multipart_part_size: null,
          multipart_number_parts: null,
        }),
        started_at: 1773349200123456n,
      });
    }
    await Deno.writeFile(`${files.out}.parquet`, encodeManifest(other));
    const run = await runCli(files.args(worker));
    assert.equal(run.code, 0, run.stderr);
    const manifest = await readManifest(`${files.out}.parquet`);
    const kept = manifest.filter((r) => r.dataset_id === "ds-a");
    assert.deepEqual(kept.map((r) => r.url), theirs.slice(1));
    assert.ok(kept.every((r) => r.started_at === 1773349200123456n && r.finished_at === null));
    assert.deepEqual(
      manifest.filter((r) => r.dataset_id !== "ds-a"),
      expectedManifest(files.db),
    );
    assert.equal(manifest.find((r) => r.url === theirs[0])?.status, "success");
  } finally {
    await worker.close();
  }
});

Deno.test("an unreadable manifest stops the run before anything is sent, unless replaced", async () => {
  // An invalid line would be recorded as skipped: not before the manifest is judged.
  await using files = await fixture([...urlList(5), "not a url"]);
  const worker = startFakeWorker();
  try {
    const garbage = new TextEncoder().encode("this is not parquet\n");
    await Deno.writeFile(`${files.out}.parquet`, garbage);
    const refused = await runCli(files.args(worker));
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /manifest\.parquet.*--replace-parquet/);
    assert.equal(refused.stderr.trim().split("\n").length, 1);
    assert.equal(worker.posts().length, 0);
    assert.deepEqual(await Deno.readFile(`${files.out}.parquet`), garbage);
    assert.deepEqual(
      [...Deno.readDirSync(files.dir)].map((e) => e.name).sort(),
      ["manifest.parquet", "urls.txt"],
      "the database the run created is gone",
    );

    const replaced = await runCli(files.args(worker, ["--replace-parquet"]));
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.deepEqual(await readManifest(`${files.out}.parquet`), expectedManifest(files.db));
  } finally {
    await worker.close();
  }
});
