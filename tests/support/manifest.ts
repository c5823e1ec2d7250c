/**
 * Reading back what a run left: the Parquet manifest (with hyparquet, timestamps as exact
 * microseconds) and the `downloads` table, in the manifest's column types, so tests can compare
 * them row for row.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { parquetReadObjects } from "hyparquet";
import {
  assembleManifest,
  concatParts,
  encodeRowGroup,
  MANIFEST_DECOMPRESSORS,
  type ManifestColumns,
  type ManifestRow,
  manifestRow,
  ROW_GROUP_ROWS,
  sliceColumns,
} from "../../lib/parquet.ts";
import { DOWNLOAD_COLUMNS, type DownloadRow } from "../../lib/store.ts";

/** Every row of the manifest at `path`, in file order. */
export async function readManifest(path: string): Promise<ManifestRow[]> {
  const file = (await Deno.readFile(path)).buffer;
  const rows = await parquetReadObjects({
    file,
    compressors: MANIFEST_DECOMPRESSORS,
    parsers: { timestampFromMicroseconds: (micros: bigint) => micros },
  });
  return rows as ManifestRow[];
}

/** Every row of the `downloads` table of the database at `path`, in rowid order. */
export function readDownloads(path: string): DownloadRow[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare(`SELECT ${DOWNLOAD_COLUMNS.join(", ")} FROM downloads ORDER BY rowid`)
      .all() as unknown as DownloadRow[];
  } finally {
    db.close();
  }
}

/** The database's rows as the manifest should hold them. */
export function expectedManifest(dbPath: string): ManifestRow[] {
  return readDownloads(dbPath).map((row) => ({ ...manifestRow(row) }));
}

/** `columns` as a whole manifest file, {@link ROW_GROUP_ROWS} rows per row group. */
export function encodeManifest(columns: ManifestColumns): Uint8Array<ArrayBuffer> {
  const groups = [];
  for (let start = 0; start < columns.url.length; start += ROW_GROUP_ROWS) {
    groups.push(encodeRowGroup(sliceColumns(columns, start, start + ROW_GROUP_ROWS)));
  }
  return concatParts(assembleManifest(groups));
}
