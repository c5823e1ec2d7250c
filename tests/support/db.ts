/**
 * Reading a test run's SQLite file.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import type { DownloadRow } from "../../lib/store.ts";

/** Every row of the `downloads` table at `path`, by URL. */
export function readRows(path: string): Map<string, DownloadRow> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const rows = db.prepare("SELECT * FROM downloads").all() as unknown as DownloadRow[];
    return new Map(rows.map((row) => [row.url, { ...row }]));
  } finally {
    db.close();
  }
}
