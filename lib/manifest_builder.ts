/**
 * Keeps the Parquet manifest up to date incrementally, so a checkpoint costs what changed since
 * the last one rather than the whole table.
 *
 * The database's rows are taken in rowid order (an upsert keeps a row's rowid; a new row gets a
 * larger one) and cut into row groups of {@link ROW_GROUP_ROWS}. A full group is encoded once and
 * its bytes kept; it is re-encoded (from SQLite) only when a row in it is updated. The rows after
 * the last full group (the tail) are held as column buffers fed by the caller, and encoded at each
 * build. Rows of an existing manifest that the database lacks (another dataset's, say) come first,
 * as groups of their own; a row of the database replaces one of them with the same url.
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import { DOWNLOAD_COLUMNS, type DownloadRow } from "./store.ts";
import {
  assembleManifest,
  emptyColumns,
  type EncodedRowGroup,
  encodeRowGroup,
  filterColumns,
  isoToEpochMicros,
  MANIFEST_COLUMNS,
  type ManifestBytes,
  type ManifestColumns,
  type ManifestRow,
  manifestRow,
  openManifestFile,
  pushRow,
  ROW_GROUP_ROWS,
  setRow,
  sliceColumns,
} from "./parquet.ts";

/** A full group of database rows: those with rowid in (previous group's last, `lastRowid`]. */
interface SealedGroup {
  lastRowid: number;
  encoded: EncodedRowGroup | null;
}

/** A group of rows kept from an existing manifest. */
interface ExtraGroup {
  columns: ManifestColumns;
  removed: Set<number>;
  encoded: EncodedRowGroup | null;
}

/** A built manifest: the file's bytes and its row count. */
export interface BuiltManifest extends ManifestBytes {
  rows: number;
}

/** The manifest of one database, kept current by {@link ManifestBuilder.upsert}. */
export class ManifestBuilder {
  readonly #db: DatabaseSync;
  readonly #groupRows: number;
  readonly #sealed: SealedGroup[] = [];
  #tailRowids: number[] = [];
  #tail: ManifestColumns = emptyColumns();
  #tailEncoded: EncodedRowGroup | null = null;
  readonly #extras: ExtraGroup[] = [];
  readonly #extraIndex = new Map<string, { group: ExtraGroup; index: number }>();
  #range: StatementSync | null = null;

  /**
   * @param db a connection to the database whose `downloads` table the manifest mirrors.
   * @param groupRows rows per row group (smaller only in tests).
   */
  constructor(db: DatabaseSync, groupRows = ROW_GROUP_ROWS) {
    this.#db = db;
    this.#groupRows = groupRows;
  }

  /**
   * Keeps the rows of the manifest at `path` whose url the database lacks. Returns how many.
   *
   * @throws {UnreadableManifestError} when the file exists but cannot be read as a manifest.
   */
  async mergeExisting(path: string): Promise<number> {
    const file = await openManifestFile(path);
    if (file === null) return 0;
    const missing = this.#missingFromDatabase(await file.readUrls(0, file.rows));
    let kept = 0;
    let group = this.#newExtraGroup();
    let next = 0;
    for (const { start, end } of file.groups) {
      if (next >= missing.length || missing[next] >= end) continue;
      const rows = await file.readRows(start, end);
      for (; next < missing.length && missing[next] < end; next++) {
        const i = missing[next] - start;
        if (this.#extraIndex.has(rows.url[i])) continue;
        this.#extraIndex.set(rows.url[i], { group, index: group.columns.url.length });
        pushRow(group.columns, rowAt(rows, i));
        kept++;
        if (group.columns.url.length === this.#groupRows) group = this.#newExtraGroup();
      }
    }
    return kept;
  }

  /**
   * The positions (ascending) of `urls` that the database has no row for. They are staged in a
   * temporary table and looked up in url order through both url indexes: for a million URLs,
   * several times faster than a lookup each.
   */
  #missingFromDatabase(urls: string[]): number[] {
    const db = this.#db;
    db.exec(`DROP TABLE IF EXISTS temp.merge_urls;
      CREATE TEMP TABLE merge_urls (position INTEGER PRIMARY KEY, url TEXT NOT NULL)`);
    try {
      const insert = db.prepare(
        `INSERT INTO merge_urls (position, url) VALUES ${Array(100).fill("(?, ?)").join(", ")}`,
      );
      const insertOne = db.prepare("INSERT INTO merge_urls (position, url) VALUES (?, ?)");
      db.exec("BEGIN");
      let i = 0;
      for (; i + 100 <= urls.length; i += 100) {
        insert.run(...urls.slice(i, i + 100).flatMap((url, j) => [i + j, url]));
      }
      for (; i < urls.length; i++) insertOne.run(i, urls[i]);
      db.exec("COMMIT");
      db.exec("CREATE INDEX temp.merge_urls_url ON merge_urls (url)");
      const rows = db.prepare(`SELECT m.position AS position
        FROM merge_urls AS m INDEXED BY merge_urls_url
        WHERE NOT EXISTS (SELECT 1 FROM downloads AS d WHERE d.url = m.url)`).all() as {
        position: number;
      }[];
      return rows.map((r) => r.position).sort((a, b) => a - b);
    } finally {
      db.exec("DROP TABLE IF EXISTS temp.merge_urls");
    }
  }

  #newExtraGroup(): ExtraGroup {
    const group: ExtraGroup = { columns: emptyColumns(), removed: new Set(), encoded: null };
    this.#extras.push(group);
    return group;
  }

  /**
   * Takes every row of the database, encoding full groups as it goes so that no more than a
   * group's rows are held at once. Call before the first {@link upsert}.
   */
  loadDatabase(): void {
    let after = -Number.MAX_VALUE;
    while (true) {
      const { rowids, columns } = this.#readRows(after, Number.MAX_VALUE, this.#groupRows);
      if (rowids.length === 0) return;
      after = rowids[rowids.length - 1];
      if (rowids.length === this.#groupRows && this.#tailRowids.length === 0) {
        this.#sealed.push({ lastRowid: after, encoded: encodeRowGroup(columns) });
        continue;
      }
      for (let i = 0; i < rowids.length; i++) {
        this.#tailRowids.push(rowids[i]);
        pushRow(this.#tail, rowAt(columns, i));
        if (this.#tailRowids.length === this.#groupRows) this.#sealTail();
      }
    }
  }

  /**
   * Up to `limit` rows with rowid in (`after`, `last`], in rowid order. SQLite hands them over as
   * one JSON text: for a million rows, twice as fast as a row object each.
   */
  #readRows(
    after: number,
    last: number,
    limit: number,
  ): { rowids: number[]; columns: ManifestColumns } {
    this.#range ??= this.#db.prepare(
      `SELECT json_group_array(json_array(rowid, ${
        DOWNLOAD_COLUMNS.join(", ")
      })) AS rows FROM (SELECT rowid, * FROM downloads
      WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?)`,
    );
    const { rows } = this.#range.get(after, last, limit) as { rows: string };
    const rowids: number[] = [];
    const columns = emptyColumns();
    for (const values of JSON.parse(rows) as Json[]) {
      rowids.push(values[0] as number);
      pushJsonRow(columns, values);
    }
    return { rowids, columns };
  }

  /** Records that `row` was committed with `rowid`; the next build includes it. */
  upsert(rowid: number, row: DownloadRow): void {
    const extra = this.#extraIndex.get(row.url);
    if (extra !== undefined) {
      this.#extraIndex.delete(row.url);
      extra.group.removed.add(extra.index);
      extra.group.encoded = null;
    }
    const last = this.#sealed.at(-1);
    if (last !== undefined && rowid <= last.lastRowid) {
      this.#sealed[this.#sealedIndexOf(rowid)].encoded = null;
      return;
    }
    this.#tailEncoded = null;
    const rowids = this.#tailRowids;
    const values = manifestRow(row);
    if (rowids.length === 0 || rowid > rowids[rowids.length - 1]) {
      rowids.push(rowid);
      pushRow(this.#tail, values);
      return;
    }
    const at = lowerBound(rowids, rowid);
    if (rowids[at] === rowid) {
      setRow(this.#tail, at, values);
      return;
    }
    rowids.splice(at, 0, rowid);
    const tail = this.#tail;
    for (const name of MANIFEST_COLUMNS) {
      (tail[name] as unknown[]).splice(at, 0, values[name]);
    }
  }

  #sealedIndexOf(rowid: number): number {
    let lo = 0;
    let hi = this.#sealed.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#sealed[mid].lastRowid < rowid) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Turns the first group's worth of tail rows into a sealed, encoded group. */
  #sealTail(): void {
    const n = this.#groupRows;
    const group = sliceColumns(this.#tail, 0, n);
    this.#sealed.push({ lastRowid: this.#tailRowids[n - 1], encoded: encodeRowGroup(group) });
    this.#tail = sliceColumns(this.#tail, n, this.#tailRowids.length);
    this.#tailRowids = this.#tailRowids.slice(n);
    this.#tailEncoded = null;
  }

  /** Re-reads sealed group `index` from the database. */
  #readSealed(index: number): ManifestColumns {
    const after = index === 0 ? -Number.MAX_VALUE : this.#sealed[index - 1].lastRowid;
    return this.#readRows(after, this.#sealed[index].lastRowid, Number.MAX_SAFE_INTEGER).columns;
  }

  /** The manifest as it stands: every row taken so far, re-encoding only what changed. */
  build(): BuiltManifest {
    while (this.#tailRowids.length >= this.#groupRows) this.#sealTail();
    for (const group of this.#extras) {
      if (group.encoded !== null) continue;
      if (group.removed.size > 0) {
        filterColumns(group.columns, (i) => !group.removed.has(i));
        group.removed.clear();
        group.columns.url.forEach((url, index) => this.#extraIndex.set(url, { group, index }));
      }
      group.encoded = encodeRowGroup(group.columns);
    }
    this.#sealed.forEach((group, index) => {
      group.encoded ??= encodeRowGroup(this.#readSealed(index));
    });
    this.#tailEncoded ??= encodeRowGroup(this.#tail);
    const groups = [
      ...this.#extras.map((g) => g.encoded!),
      ...this.#sealed.map((g) => g.encoded!),
      this.#tailEncoded,
    ];
    return { ...assembleManifest(groups), rows: groups.reduce((sum, g) => sum + g.rows, 0) };
  }
}

function rowAt(columns: ManifestColumns, index: number): ManifestRow {
  const row: Record<string, unknown> = {};
  for (const name of MANIFEST_COLUMNS) row[name] = columns[name][index];
  return row as ManifestRow;
}

type Json = (string | number | null)[];

/** Appends `[rowid, ...columns]` as SQLite's json_array gives a row (a hot loop: no objects). */
function pushJsonRow(columns: ManifestColumns, values: Json): void {
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

/** The first index of sorted `values` whose value is ≥ `target`. */
function lowerBound(values: number[], target: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (values[mid] < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
