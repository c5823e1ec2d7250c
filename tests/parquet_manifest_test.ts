import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { DOWNLOADS_DDL } from "../lib/store.ts";
import { isoToEpochMicros, MANIFEST_DECOMPRESSORS } from "../lib/parquet.ts";
import { startFakeWorker } from "./support/fake_worker.ts";
import { runCli } from "./support/cli.ts";
import { fixture, rowsByUrl } from "./support/fixture.ts";

/** Reads a manifest with timestamps as exact epoch microseconds. */
async function readManifest(path: string) {
  const bytes = await Deno.readFile(path);
  const rows = await parquetReadObjects({
    file: bytes.buffer,
    compressors: MANIFEST_DECOMPRESSORS,
    parsers: { timestampFromMicroseconds: (micros: bigint) => micros },
  });
  return { metadata: parquetMetadata(bytes.buffer), rows };
}

Deno.test("isoToEpochMicros is exact to the microsecond for every shape stored in databases", () => {
  const base = BigInt(Date.UTC(2026, 2, 12, 21, 0, 0)) * 1000n;
  assert.equal(isoToEpochMicros("2026-03-12T21:00:00.000Z"), base);
  assert.equal(isoToEpochMicros("2026-03-12T21:00:00.123456+00:00"), base + 123456n);
  assert.equal(isoToEpochMicros("2026-03-12T21:00:00.1234567Z"), base + 123456n);
  assert.equal(isoToEpochMicros("2026-03-12T23:00:00.5+02:00"), base + 500000n);
  assert.equal(isoToEpochMicros("2026-03-12T16:30:00-04:30"), base);
  assert.equal(isoToEpochMicros("2026-03-12 21:00:00"), base);
  assert.equal(isoToEpochMicros("2026-03-12T21:00:00"), base);
  assert.equal(isoToEpochMicros(null), null);
  assert.equal(isoToEpochMicros("yesterday"), null);
  // The worker's format is read a minute at a time: each value must still stand on its own.
  assert.equal(isoToEpochMicros("2026-03-12T21:01:59.999Z"), base + 119_999_000n);
  assert.equal(isoToEpochMicros("2026-03-12T21:01:00.001Z"), base + 60_001_000n);
  assert.equal(isoToEpochMicros("2026-03-12T21:00:00.000Z"), base);
  assert.equal(isoToEpochMicros("2026-03-12T21:00:0x.000Z"), null);
  assert.equal(isoToEpochMicros("2026-03-12X21:00:00.000Z"), null);
});

Deno.test("the manifest has the seed's schema and every value of the database, timestamps to the microsecond", async () => {
  const urls = ["https://example.test/a/one.zip", "https://example.test/a/two.zip"];
  await using files = await fixture(urls);
  const seed = new DatabaseSync(files.db);
  seed.exec(DOWNLOADS_DDL);
  seed.prepare(`INSERT INTO downloads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
    "https://example.test/old/failed.zip",
    "older-dataset",
    "failed",
    502,
    null,
    "Source returned HTTP 503",
    "2026-03-12T21:00:00.123456+00:00",
    "2026-03-12T21:00:01.654321+00:00",
    null,
    null,
  );
  seed.close();
  const worker = startFakeWorker({
    script: (url) =>
      url === urls[1] ? { status: 502, body: { error: "Source returned HTTP 500" } } : undefined,
  });
  try {
    const run = await runCli(files.args(worker, ["--max-retries", "0"]));
    assert.equal(run.code, 1, run.stderr);
  } finally {
    await worker.close();
  }
  const { metadata, rows } = await readManifest(`${files.out}.parquet`);
  const schema = metadata.schema.slice(1).map((e) => ({
    name: e.name,
    type: e.type,
    repetition: e.repetition_type,
    converted: e.converted_type,
    logical: e.logical_type,
  }));
  const text = (name: string, repetition = "OPTIONAL") => ({
    name,
    type: "BYTE_ARRAY",
    repetition,
    converted: "UTF8",
    logical: { type: "STRING" },
  });
  const int32 = (name: string) => ({
    name,
    type: "INT32",
    repetition: "OPTIONAL",
    converted: undefined,
    logical: undefined,
  });
  const timestamp = (name: string) => ({
    name,
    type: "INT64",
    repetition: "OPTIONAL",
    converted: "TIMESTAMP_MICROS",
    logical: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MICROS" },
  });
  assert.deepEqual(schema, [
    text("url", "REQUIRED"),
    text("dataset_id", "REQUIRED"),
    text("status", "REQUIRED"),
    int32("http_status"),
    text("etag"),
    text("error"),
    timestamp("started_at"),
    timestamp("finished_at"),
    int32("multipart_part_size"),
    int32("multipart_number_parts"),
  ]);

  const dbRows = rowsByUrl(files.db);
  assert.equal(rows.length, dbRows.size);
  assert.equal(rows.length, 3);
  for (const row of rows) {
    const expected = dbRows.get(row.url as string)!;
    assert.deepEqual(row, {
      ...expected,
      started_at: isoToEpochMicros(expected.started_at),
      finished_at: isoToEpochMicros(expected.finished_at),
    });
  }
  const old = rows.find((r) => r.url === "https://example.test/old/failed.zip")!;
  assert.equal(old.started_at, BigInt(Date.UTC(2026, 2, 12, 21, 0, 0)) * 1000n + 123456n);
});
