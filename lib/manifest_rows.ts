/**
 * Reading rows of the `downloads` table as manifest column buffers, in rowid order (the
 * manifest's order), a range at a time.
 *
 * @module
 */

import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import { DOWNLOAD_COLUMNS } from "./store.ts";
import { emptyColumns, isoToEpochMicros, type ManifestColumns } from "./parquet.ts";

/** Rows read by {@link readRowRange}: their rowids and their manifest values. */
export interface RowRange {
  rowids: number[];
  columns: ManifestColumns;
}

/** A row as `[rowid, ...DOWNLOAD_COLUMNS]`. */
type RowValues = (string | number | null)[];

/** A statement that gives rows as arrays. */
interface RowArrayStatement {
  all(...parameters: SQLInputValue[]): RowValues[];
}

const statements = new WeakMap<DatabaseSync, RowArrayStatement>();

/** Up to `limit` rows of `db` with rowid in (`after`, `last`], in rowid order. */
export function readRowRange(
  db: DatabaseSync,
  after: number,
  last: number,
  limit: number,
): RowRange {
  let statement = statements.get(db);
  if (statement === undefined) {
    statement = rowArrays(db.prepare(
      `SELECT rowid, ${DOWNLOAD_COLUMNS.join(", ")} FROM downloads
      WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?`,
    ));
    statements.set(db, statement);
  }
  const rowids: number[] = [];
  const columns = emptyColumns();
  for (const values of statement.all(after, last, limit)) {
    rowids.push(values[0] as number);
    pushRowValues(columns, values);
  }
  return { rowids, columns };
}

/**
 * The rows of `db` with rowid in (`after`, `last`], in rowid order, `size` at a time: every range
 * but the last holds exactly `size` rows.
 */
export function* rowRanges(
  db: DatabaseSync,
  after: number,
  last: number,
  size: number,
): Generator<RowRange> {
  while (true) {
    const range = readRowRange(db, after, last, size);
    if (range.rowids.length > 0) yield range;
    if (range.rowids.length < size) return;
    after = range.rowids[range.rowids.length - 1];
  }
}

/**
 * `statement`, switched to give each row as an array: for a million rows, 1.5 times as fast as
 * an object each. Deno 2.9 implements Node's `setReturnArrays`, but its node:sqlite types lack it.
 */
function rowArrays(statement: StatementSync): RowArrayStatement {
  (statement as StatementSync & { setReturnArrays(enabled: boolean): void }).setReturnArrays(true);
  return statement as unknown as RowArrayStatement;
}

/** Appends a {@link RowValues} row to `columns` (a hot loop: no objects). */
function pushRowValues(columns: ManifestColumns, values: RowValues): void {
  columns.url.push(values[1] as string);
  columns.dataset_id.push(values[2] as string);
  columns.status.push(values[3] as string);
  columns.http_status.push(values[4] as number | null);
  columns.etag.push(values[5] as string | null);
  columns.error.push(values[6] as string | null);
  columns.started_at.push(isoToEpochMicros(values[7] as string | null));
  columns.finished_at.push(isoToEpochMicros(values[8] as string | null));
  columns.multipart_part_size.push(values[9] as number | null);
  columns.multipart_number_parts.push(values[10] as number | null);
}
