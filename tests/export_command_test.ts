import assert from "node:assert/strict";
import { parquetReadObjects } from "hyparquet";
import { startFakeWorker } from "./support/fake_worker.ts";
import { runCli } from "./support/cli.ts";
import { DownloadStore, openDatabase } from "../lib/store.ts";
import type { ExportReport } from "../lib/export_command.ts";
import { MANIFEST_DECOMPRESSORS } from "../lib/parquet.ts";

/** A database with three rows of two datasets, written without any worker. */
async function withDatabase(test: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    const db = openDatabase(`${dir}/db.sqlite`);
    const row = (url: string, dataset_id: string, status: "success" | "failed") => ({
      url,
      dataset_id,
      status,
      http_status: status === "success" ? 200 : 502,
      etag: status === "success" ? "abc-1" : null,
      error: status === "success" ? null : "Source returned HTTP 404",
      started_at: "2026-03-12T21:00:00.000Z",
      finished_at: "2026-03-12T21:00:01.000Z",
      multipart_part_size: status === "success" ? 5242880 : null,
      multipart_number_parts: status === "success" ? 1 : null,
    });
    new DownloadStore(db).record([
      row("https://example.org/1.zip", "a", "success"),
      row("https://example.org/2.zip", "a", "failed"),
      row("https://example.org/3.zip", "b", "success"),
    ]);
    db.close();
    await test(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The CLI arguments exporting the database in `dir` to `<dir>/manifest`, then `extra`. */
function exportArgs(dir: string, ...extra: string[]): string[] {
  return ["export", "--db", `${dir}/db.sqlite`, "--out", `${dir}/manifest`, ...extra];
}

async function readManifest(path: string): Promise<Record<string, unknown>[]> {
  const bytes = await Deno.readFile(path);
  return await parquetReadObjects({ file: bytes.buffer, compressors: MANIFEST_DECOMPRESSORS });
}

Deno.test("export writes the manifest of every row without sending anything", async () => {
  await withDatabase(async (dir) => {
    const result = await runCli(exportArgs(dir));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `parquet: ${dir}/manifest.parquet (3 rows)\n`);
    const rows = await readManifest(`${dir}/manifest.parquet`);
    assert.deepEqual(rows.map((r) => [r.url, r.dataset_id, r.status]), [
      ["https://example.org/1.zip", "a", "success"],
      ["https://example.org/2.zip", "a", "failed"],
      ["https://example.org/3.zip", "b", "success"],
    ]);
  });
});

Deno.test("export --upload puts the manifest through the worker under the key prefix", async () => {
  const worker = startFakeWorker();
  try {
    await withDatabase(async (dir) => {
      const result = await runCli(
        exportArgs(
          dir,
          "--upload",
          "--worker-url",
          worker.url,
          "--key-prefix",
          "archive/a/",
          "--json",
        ),
        { env: { D4C_INGESTOR_AUTH_TOKEN: worker.token } },
      );
      assert.equal(result.code, 0, result.stderr);
      const report: ExportReport = JSON.parse(result.stdout);
      assert.deepEqual(report, {
        parquet: { path: `${dir}/manifest.parquet`, rows: 3 },
        upload: { key: "archive/a/manifest.parquet", ok: true, attempts: 1, error: null },
      });
      const uploads = worker.uploads();
      assert.equal(uploads.length, 1);
      assert.equal(uploads[0].headers.get("X-S3-Key"), "archive/a/manifest.parquet");
      assert.equal(uploads[0].headers.get("Content-Type"), "application/vnd.apache.parquet");
      assert.equal(worker.posts().length, 0, "nothing is ingested");
      assert.ok(uploads[0].body.startsWith("PAR1"), "the body is a Parquet file");
    });
  } finally {
    await worker.close();
  }
});

Deno.test("export --upload with a bad token stops at the token check: exit 2", async () => {
  const worker = startFakeWorker();
  try {
    await withDatabase(async (dir) => {
      const result = await runCli(
        exportArgs(dir, "--upload", "--worker-url", worker.url, "--auth-token", "wrong"),
      );
      assert.equal(result.code, 2);
      assert.equal(result.stderr, "d4c-http-ingestor: the worker rejected the token (401)\n");
      assert.equal(worker.uploads().length, 0);
    });
  } finally {
    await worker.close();
  }
});

Deno.test("export --upload without a token, or of a missing database, is exit 2", async () => {
  await withDatabase(async (dir) => {
    const noToken = await runCli(
      ["export", "--db", `${dir}/db.sqlite`, "--out", `${dir}/m`, "--upload"],
      { env: { D4C_INGESTOR_AUTH_TOKEN: "" } },
    );
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /^d4c-http-ingestor: no worker token: pass --auth-token or set/);
    const missing = await runCli(["export", "--db", `${dir}/none.sqlite`, "--out", `${dir}/m`]);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, `d4c-http-ingestor: --db ${dir}/none.sqlite: no such file\n`);
  });
});
