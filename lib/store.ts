/**
 * The SQLite state file: the `downloads` table exactly as the Python original defined it, so its
 * databases open and resume unchanged. One row per URL, upserted; the row holds the last attempt.
 *
 * @module
 */

import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { errorMessage, UsageError } from "./errors.ts";

/** The Python original's DDL, verbatim: existing users' databases have exactly this shape. */
export const DOWNLOADS_DDL = `
CREATE TABLE IF NOT EXISTS downloads (
    url TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL,
    status TEXT NOT NULL,          -- success | failed | skipped
    http_status INTEGER,
    etag TEXT,
    error TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    multipart_part_size INTEGER,
    multipart_number_parts INTEGER
);
CREATE INDEX IF NOT EXISTS ix_downloads_dataset ON downloads(dataset_id);
CREATE INDEX IF NOT EXISTS ix_downloads_status ON downloads(status);
`;

/** What became of a URL. */
export type DownloadStatus = "success" | "failed" | "skipped";

/** One row of the `downloads` table. Timestamps are ISO-8601 text, kept as written. */
export interface DownloadRow {
  url: string;
  dataset_id: string;
  status: DownloadStatus;
  http_status: number | null;
  etag: string | null;
  error: string | null;
  started_at: string;
  finished_at: string | null;
  multipart_part_size: number | null;
  multipart_number_parts: number | null;
}

/** The table's columns, in DDL order. */
export const DOWNLOAD_COLUMNS = [
  "url",
  "dataset_id",
  "status",
  "http_status",
  "etag",
  "error",
  "started_at",
  "finished_at",
  "multipart_part_size",
  "multipart_number_parts",
] as const satisfies readonly (keyof DownloadRow)[];

const UPSERT_SQL = `INSERT INTO downloads (${DOWNLOAD_COLUMNS.join(", ")})
  VALUES (${DOWNLOAD_COLUMNS.map(() => "?").join(", ")})
  ON CONFLICT(url) DO UPDATE SET ${
  DOWNLOAD_COLUMNS.slice(1).map((c) => `${c} = excluded.${c}`).join(", ")
}
  RETURNING rowid`;

/** How {@link openDatabase} leaves the database. */
export interface OpenOptions {
  /**
   * Switch to write-ahead logging now (the default). `false` leaves an existing database's bytes
   * as they are until the caller is sure to write and calls {@link useWriteAheadLog}.
   */
  writeAheadLog?: boolean;
}

/**
 * Opens (or creates) the database at `path` and checks it can hold our rows before changing
 * anything in it.
 *
 * @throws {UsageError} when the file is not SQLite, cannot be opened or created, or holds a
 * `downloads` table of another shape.
 */
export function openDatabase(path: string, options: OpenOptions = {}): DatabaseSync {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
  } catch (error) {
    throw new UsageError(`--db ${path}: cannot open or create it (${errorMessage(error)})`);
  }
  try {
    checkDownloadsShape(db, path);
    // The WAL is copied back every 10,000 pages (40 MB) rather than SQLite's 1,000: a page
    // rewritten by many commits meanwhile is copied once, a fifth of the commit cost per row.
    db.exec(
      "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA wal_autocheckpoint = 10000;",
    );
    if (options.writeAheadLog ?? true) useWriteAheadLog(db);
    // A no-op on a database that already has the table and its indexes.
    db.exec(DOWNLOADS_DDL);
  } catch (error) {
    db.close();
    if (error instanceof UsageError) throw error;
    throw new UsageError(`--db ${path}: ${errorMessage(error)}`);
  }
  return db;
}

/**
 * Switches `db` to write-ahead logging, so each result's commit is cheap and readers never block
 * it. Persistent: it rewrites the file header of a database in rollback-journal mode.
 */
export function useWriteAheadLog(db: DatabaseSync): void {
  db.exec("PRAGMA journal_mode = WAL");
}

/** Whether anything exists at `path` (a database file, or something in its way). */
export function databaseExists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw new UsageError(`--db ${path}: ${errorMessage(error)}`);
  }
}

/** Deletes the database at `path` with its WAL and shared-memory files, as far as it can. */
export function removeDatabase(path: string): void {
  for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    try {
      Deno.removeSync(file);
    } catch {
      // Missing (never written) or not ours to delete: the run is failing for its own reason.
    }
  }
}

/**
 * Like {@link openDatabase}, for commands that only report on a database: a missing file is an
 * error, not a new empty database.
 *
 * @throws {UsageError} when there is no file at `path`, or as {@link openDatabase} does.
 */
export function openExistingDatabase(path: string): DatabaseSync {
  if (!databaseExists(path)) throw new UsageError(`--db ${path}: no such file`);
  return openDatabase(path);
}

function checkDownloadsShape(db: DatabaseSync, path: string): void {
  let columns: { name: string; pk: number }[];
  try {
    columns = db.prepare("SELECT name, pk FROM pragma_table_info('downloads')").all() as {
      name: string;
      pk: number;
    }[];
  } catch (error) {
    throw new UsageError(`--db ${path} is not a SQLite database (${errorMessage(error)})`);
  }
  if (columns.length === 0) return;
  const names = new Set(columns.map((c) => c.name));
  const missing = DOWNLOAD_COLUMNS.filter((c) => !names.has(c));
  const urlIsKey = columns.some((c) => c.name === "url" && c.pk === 1) &&
    columns.filter((c) => c.pk > 0).length === 1;
  if (missing.length > 0 || !urlIsKey) {
    const why = missing.length > 0
      ? `lacks column(s) ${missing.join(", ")}`
      : "is not keyed by url";
    throw new UsageError(`--db ${path} has a downloads table of another shape (it ${why})`);
  }
}

/** Rows per statement in a {@link batchInserter}: one statement per row costs twice as much. */
const ROWS_PER_INSERT = 100;

/** Collects rows for one table and inserts them {@link ROWS_PER_INSERT} to a statement. */
export interface BatchInserter {
  /** Adds a row; a full batch is inserted at once. */
  add(...row: SQLInputValue[]): void;
  /** Inserts the rows added since the last full batch. */
  flush(): void;
}

/**
 * A {@link BatchInserter} into `into` (`table (column, …)`), whose rows have `width` values: for
 * the many rows staged in temporary tables (a URL list, an existing manifest's urls).
 */
export function batchInserter(db: DatabaseSync, into: string, width: number): BatchInserter {
  const row = `(${Array(width).fill("?").join(", ")})`;
  const many = db.prepare(
    `INSERT INTO ${into} VALUES ${Array(ROWS_PER_INSERT).fill(row).join(", ")}`,
  );
  const one = db.prepare(`INSERT INTO ${into} VALUES ${row}`);
  const values: SQLInputValue[] = [];
  return {
    add(...row) {
      values.push(...row);
      if (values.length === ROWS_PER_INSERT * width) {
        many.run(...values);
        values.length = 0;
      }
    },
    flush() {
      for (let i = 0; i < values.length; i += width) one.run(...values.slice(i, i + width));
      values.length = 0;
    },
  };
}

/** Prepared writes and reads on the `downloads` table. */
export class DownloadStore {
  readonly #db: DatabaseSync;
  readonly #upsert;

  /** @param db a connection from {@link openDatabase}. */
  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#upsert = db.prepare(UPSERT_SQL);
  }

  /** The connection the store writes through. */
  get database(): DatabaseSync {
    return this.#db;
  }

  /**
   * Writes `rows` in one transaction; when this returns they are committed. Returns each row's
   * rowid, which an upsert keeps for an existing url (the manifest is in rowid order).
   */
  record(rows: readonly DownloadRow[]): number[] {
    if (rows.length === 0) return [];
    const rowids = new Array<number>(rows.length);
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (let i = 0; i < rows.length; i++) {
        // Positional parameters: binding by name costs a third more per row.
        const row = rows[i];
        const returned = this.#upsert.get(
          row.url,
          row.dataset_id,
          row.status,
          row.http_status,
          row.etag,
          row.error,
          row.started_at,
          row.finished_at,
          row.multipart_part_size,
          row.multipart_number_parts,
        ) as { rowid: number };
        rowids[i] = returned.rowid;
      }
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
    return rowids;
  }

  /** The number of rows. */
  count(): number {
    return (this.#db.prepare("SELECT count(*) AS n FROM downloads").get() as { n: number }).n;
  }
}
