/**
 * Keeps the Parquet manifest up to date incrementally, so a checkpoint costs what changed since
 * the last one rather than the whole table.
 *
 * The database's rows are taken in rowid order (an upsert keeps a row's rowid; a new row gets a
 * larger one) and cut into row groups of {@link ROW_GROUP_ROWS}. A group is sealed (encoded once
 * and its bytes kept) as soon as it is full; it is re-encoded (from SQLite) only when a row in it
 * is updated. (A database loaded on two threads may have one short sealed group where the
 * threads' halves meet.) The rows after the last sealed group (the tail) are held as column
 * buffers fed by the caller, and encoded at each build. Rows of an existing manifest that the
 * database lacks (another dataset's, say) come first, as groups of their own; a row of the
 * database replaces one of them with the same url.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { batchInserter, type DownloadRow } from "./store.ts";
import { readRowRange, type RowRange, rowRanges } from "./manifest_rows.ts";
import type { FromGroupEncoder, GroupEncoderTask } from "./group_encoder_worker.ts";
import {
  assembleManifest,
  emptyColumns,
  type EncodedRowGroup,
  encodeRowGroup,
  filterColumns,
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

/**
 * Rows from which a whole export is worth splitting over two threads: a helper thread takes about
 * 0.1 s to start, and loading 200,000 rows takes about 0.5 s on one.
 */
export const TWO_THREADS_FROM_ROWS = 200_000;

/** A sealed group of database rows: those with rowid in (previous group's last, `lastRowid`]. */
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
  readonly #twoThreadsFromRows: number;
  readonly #sealed: SealedGroup[] = [];
  #tailRowids: number[] = [];
  #tail: ManifestColumns = emptyColumns();
  #tailEncoded: EncodedRowGroup | null = null;
  readonly #extras: ExtraGroup[] = [];
  readonly #extraIndex = new Map<string, { group: ExtraGroup; index: number }>();

  /**
   * @param db a connection to the database whose `downloads` table the manifest mirrors.
   * @param options `groupRows`: rows per row group (smaller only in tests); `twoThreadsFromRows`:
   * the rowid span from which {@link loadDatabase} uses a helper thread, by default never. A run
   * loads its database while dispatch goes on, where a second thread would compete with dispatch
   * for the CPU and added 60–70 MB to a million-row resume; a one-off export is worth it.
   */
  constructor(
    db: DatabaseSync,
    { groupRows = ROW_GROUP_ROWS, twoThreadsFromRows = Number.POSITIVE_INFINITY } = {},
  ) {
    this.#db = db;
    this.#groupRows = groupRows;
    this.#twoThreadsFromRows = twoThreadsFromRows;
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
      const insert = batchInserter(db, "merge_urls (position, url)", 2);
      db.exec("BEGIN");
      urls.forEach((url, position) => insert.add(position, url));
      insert.flush();
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
   *
   * From `twoThreadsFromRows` rows on, the database is loaded on two cores: a helper thread
   * (group_encoder_worker.ts) encodes the groups of the upper half of the rowids while this one
   * encodes the lower half, whose last group may then be short.
   */
  async loadDatabase(): Promise<void> {
    const split = this.#splitForHelper();
    if (split !== null) {
      const helper = encodeOnHelper({
        db: split.path,
        after: split.mid,
        groupRows: this.#groupRows,
      });
      try {
        this.#sealRange(-Number.MAX_VALUE, split.mid);
      } finally {
        this.#sealed.push(...await helper);
      }
    }
    const after = this.#sealed.at(-1)?.lastRowid ?? -Number.MAX_VALUE;
    for (const range of rowRanges(this.#db, after, Number.MAX_VALUE, this.#groupRows)) {
      if (range.rowids.length < this.#groupRows) {
        // Only the last range is short: its rows are the tail.
        this.#tailRowids = range.rowids;
        this.#tail = range.columns;
      } else this.#seal(range);
    }
  }

  /** Where a helper thread should take over, or `null` when loading on this one is quicker. */
  #splitForHelper(): { path: string; mid: number } | null {
    const path = this.#db.location();
    if (path === null) return null;
    const { first, last } = this.#db.prepare(
      "SELECT min(rowid) AS first, max(rowid) AS last FROM downloads",
    ).get() as { first: number | null; last: number | null };
    if (first === null || last === null || last - first + 1 < this.#twoThreadsFromRows) return null;
    return { path, mid: first + Math.floor((last - first) / 2) };
  }

  /** Seals every row with rowid in (`after`, `last`] as groups, the last one possibly short. */
  #sealRange(after: number, last: number): void {
    for (const range of rowRanges(this.#db, after, last, this.#groupRows)) this.#seal(range);
  }

  #seal({ rowids, columns }: RowRange): void {
    this.#sealed.push({ lastRowid: rowids[rowids.length - 1], encoded: encodeRowGroup(columns) });
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
      this.#sealed[lowerBound(this.#sealed, rowid, (group) => group.lastRowid)].encoded = null;
      return;
    }
    this.#tailEncoded = null;
    this.#putInTail(rowid, manifestRow(row));
    // Sealed as soon as it is full, between two commits: a checkpoint then encodes only the
    // tail, and the cost of encoding groups is spread evenly over the run.
    if (this.#tailRowids.length === this.#groupRows) this.#sealTail();
  }

  #putInTail(rowid: number, values: ManifestRow): void {
    const rowids = this.#tailRowids;
    if (rowids.length === 0 || rowid > rowids[rowids.length - 1]) {
      rowids.push(rowid);
      pushRow(this.#tail, values);
      return;
    }
    const at = lowerBound(rowids, rowid, (id) => id);
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
    const last = this.#sealed[index].lastRowid;
    return readRowRange(this.#db, after, last, Number.MAX_SAFE_INTEGER).columns;
  }

  /** The manifest as it stands: every row taken so far, re-encoding only what changed. */
  build(): BuiltManifest {
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

/** The first index of `items` (sorted by `key`) whose key is ≥ `target`, or `items.length`. */
function lowerBound<T>(items: T[], target: number, key: (item: T) => number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (key(items[mid]) < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Runs `task` on a helper thread (group_encoder_worker.ts); resolves to the groups it sealed. */
function encodeOnHelper(task: GroupEncoderTask): Promise<SealedGroup[]> {
  const worker = new Worker(new URL("./group_encoder_worker.ts", import.meta.url).href, {
    type: "module",
  });
  const groups: SealedGroup[] = [];
  return new Promise<SealedGroup[]>((resolve, reject) => {
    worker.onmessage = ({ data }: MessageEvent<FromGroupEncoder>) => {
      if (data.type === "group") groups.push({ lastRowid: data.lastRowid, encoded: data.encoded });
      else if (data.type === "done") resolve(groups);
      else reject(new Error(`loading the database on a helper thread failed: ${data.message}`));
    };
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(`loading the database on a helper thread failed: ${event.message}`));
    };
    worker.postMessage(task);
  }).finally(() => worker.terminate());
}
