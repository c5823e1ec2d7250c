import assert from "node:assert/strict";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { ManifestBuilder } from "../lib/manifest_builder.ts";
import { type DownloadRow, DownloadStore, openDatabase } from "../lib/store.ts";
import { parquetMetadata } from "hyparquet";
import { concatParts, emptyColumns, manifestRow, pushRow } from "../lib/parquet.ts";
import { encodeManifest, expectedManifest, readManifest } from "./support/manifest.ts";

function row(i: number, overrides: Partial<DownloadRow> = {}): DownloadRow {
  return {
    url: `https://example.org/tiles/t${i}.zip`,
    dataset_id: "ds",
    status: "success",
    http_status: 200,
    etag: `${i.toString(16).padStart(32, "0")}-1`,
    error: null,
    started_at: `2026-03-12T21:00:${String(i % 60).padStart(2, "0")}.123Z`,
    finished_at: `2026-03-12T21:01:${String(i % 60).padStart(2, "0")}.456Z`,
    multipart_part_size: 5242880,
    multipart_number_parts: 1,
    ...overrides,
  };
}

async function withDatabase(
  fn: (dir: string, db: DatabaseSync, store: DownloadStore) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const db = openDatabase(join(dir, "state.sqlite"));
  try {
    await fn(dir, db, new DownloadStore(db));
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The row count of each row group of the manifest `builder` builds now. */
function groupSizes(builder: ManifestBuilder): number[] {
  return parquetMetadata(concatParts(builder.build()).buffer).row_groups
    .map((group) => Number(group.num_rows));
}

async function built(builder: ManifestBuilder, dir: string) {
  const path = join(dir, "built.parquet");
  await Deno.writeFile(path, concatParts(builder.build()));
  return await readManifest(path);
}

Deno.test("the manifest equals the table after inserts, in-place updates and sealed groups", async () => {
  await withDatabase(async (dir, db, store) => {
    const initial = Array.from({ length: 7 }, (_, i) => row(i));
    store.record(initial);
    const builder = new ManifestBuilder(db, { groupRows: 3 });
    await builder.loadDatabase();
    const feed = (rows: DownloadRow[]) => {
      const rowids = store.record(rows);
      rows.forEach((r, i) => builder.upsert(rowids[i], r));
    };
    assert.deepEqual(await built(builder, dir), expectedManifest(join(dir, "state.sqlite")));

    feed(Array.from({ length: 5 }, (_, i) => row(100 + i)));
    // Rows in a sealed group, in the tail, and a new one, updated in one batch.
    feed([
      row(1, { status: "failed", http_status: 502, etag: null, error: "Source returned HTTP 503" }),
      row(103, { etag: "changed-2" }),
      row(200),
    ]);
    assert.deepEqual(await built(builder, dir), expectedManifest(join(dir, "state.sqlite")));
    // Building again with nothing new gives the same file.
    assert.deepEqual(await built(builder, dir), expectedManifest(join(dir, "state.sqlite")));
    feed([row(5, { status: "skipped", error: "not an absolute URL" })]);
    const rows = await built(builder, dir);
    assert.equal(rows.length, 13);
    assert.deepEqual(rows, expectedManifest(join(dir, "state.sqlite")));
  });
});

Deno.test("rows of an existing manifest that the database lacks are kept; the database wins", async () => {
  await withDatabase(async (dir, db, store) => {
    const other = emptyColumns();
    const theirs = [
      { ...manifestRow(row(1, { dataset_id: "other" })), started_at: 1773349200123456n },
      manifestRow(row(2, { dataset_id: "other" })),
      manifestRow(row(3, { dataset_id: "other" })),
    ];
    for (const r of theirs) pushRow(other, r);
    const path = join(dir, "existing.parquet");
    await Deno.writeFile(path, encodeManifest(other));
    store.record([row(2)]);

    const builder = new ManifestBuilder(db, { groupRows: 2 });
    assert.equal(await builder.mergeExisting(path), 2);
    await builder.loadDatabase();
    const rowids = store.record([row(3), row(4)]);
    builder.upsert(rowids[0], row(3));
    builder.upsert(rowids[1], row(4));

    const rows = await built(builder, dir);
    assert.deepEqual(rows, [theirs[0], ...expectedManifest(join(dir, "state.sqlite"))]);
    assert.equal(rows[0].started_at, 1773349200123456n);
  });
});

Deno.test("a large database loads on two threads into the same manifest, and stays current", async () => {
  await withDatabase(async (dir, db, store) => {
    store.record(Array.from({ length: 50 }, (_, i) => row(i)));
    const builder = new ManifestBuilder(db, { groupRows: 4, twoThreadsFromRows: 10 });
    await builder.loadDatabase();
    // Rowids 1–25 are this thread’s (the last group short), 26–49 the helper’s, 50 the tail.
    assert.deepEqual(groupSizes(builder), [4, 4, 4, 4, 4, 4, 1, 4, 4, 4, 4, 4, 4, 1]);
    assert.deepEqual(await built(builder, dir), expectedManifest(join(dir, "state.sqlite")));

    // Updates to the short group, to a helper's group and to the tail, and new rows.
    const changed = [
      row(24, {
        status: "failed",
        http_status: 502,
        etag: null,
        error: "Source returned HTTP 503",
      }),
      row(30, { etag: "changed-30" }),
      row(49, { etag: "changed-49" }),
      ...Array.from({ length: 5 }, (_, i) => row(100 + i)),
    ];
    const rowids = store.record(changed);
    changed.forEach((r, i) => builder.upsert(rowids[i], r));
    assert.deepEqual(await built(builder, dir), expectedManifest(join(dir, "state.sqlite")));
    // The tail filled up with the new rows and was sealed as it did.
    assert.deepEqual(groupSizes(builder), [4, 4, 4, 4, 4, 4, 1, 4, 4, 4, 4, 4, 4, 4, 2]);
  });
});

Deno.test("text that is not ASCII is written byte for byte", async () => {
  await withDatabase(async (dir, db, store) => {
    store.record([
      row(1),
      row(2, { url: "https://example.org/tuiles/île-d’orléans.zip", etag: "ü-1" }),
      row(3, { etag: null }),
    ]);
    const builder = new ManifestBuilder(db);
    await builder.loadDatabase();
    const rows = await built(builder, dir);
    assert.equal(rows[1].url, "https://example.org/tuiles/île-d’orléans.zip");
    assert.deepEqual(rows, expectedManifest(join(dir, "state.sqlite")));
  });
});
