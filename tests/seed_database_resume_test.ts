import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { DOWNLOADS_DDL } from "../lib/store.ts";
import { startFakeWorker } from "./support/fake_worker.ts";
import { runCli } from "./support/cli.ts";
import { fixture, rowsByUrl } from "./support/fixture.ts";

Deno.test("a database written by the Python tool resumes: its successes are kept and not sent", async () => {
  await using files = await fixture(
    ["A1", "A2", "A3"].map((n) => `https://example.test/t/${n}.zip`),
  );
  const python = new DatabaseSync(files.db);
  python.exec(DOWNLOADS_DDL);
  const insert = python.prepare("INSERT INTO downloads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  insert.run(
    "https://example.test/t/A1.zip",
    "ds",
    "success",
    200,
    "9b2cf535f27731c974343645a3985328-148",
    null,
    "2026-03-12T21:00:00.123456+00:00",
    "2026-03-12T21:01:30.654321+00:00",
    5242880,
    148,
  );
  insert.run(
    "https://example.test/t/A2.zip",
    "ds",
    "failed",
    502,
    null,
    "Source returned HTTP 503",
    "2026-03-12T21:00:00.000001+00:00",
    null,
    null,
    null,
  );
  python.close();
  const worker = startFakeWorker();
  try {
    const run = await runCli(files.args(worker, ["--dataset-id", "ds"]));
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(worker.posts().sort(), [
      "https://example.test/t/A2.zip",
      "https://example.test/t/A3.zip",
    ]);
  } finally {
    await worker.close();
  }
  const rows = rowsByUrl(files.db);
  assert.deepEqual({ ...rows.get("https://example.test/t/A1.zip") }, {
    url: "https://example.test/t/A1.zip",
    dataset_id: "ds",
    status: "success",
    http_status: 200,
    etag: "9b2cf535f27731c974343645a3985328-148",
    error: null,
    started_at: "2026-03-12T21:00:00.123456+00:00",
    finished_at: "2026-03-12T21:01:30.654321+00:00",
    multipart_part_size: 5242880,
    multipart_number_parts: 148,
  });
  assert.equal(rows.get("https://example.test/t/A2.zip")!.status, "success");
  assert.equal(rows.get("https://example.test/t/A3.zip")!.status, "success");

  const db = new DatabaseSync(files.db, { readOnly: true });
  const indexes = db.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'downloads' AND sql IS NOT NULL ORDER BY name",
  ).all().map((r) => r.name);
  const journal = db.prepare("PRAGMA journal_mode").get();
  db.close();
  assert.deepEqual(indexes, ["ix_downloads_dataset", "ix_downloads_status"]);
  assert.deepEqual({ ...journal }, { journal_mode: "wal" });
});
