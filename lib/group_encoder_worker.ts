/**
 * A second thread for loading a large database into the manifest (manifest_builder.ts): on its
 * own read-only connection it encodes the full row groups of the rows after a given rowid and
 * sends each back as it is done, while the thread that started it encodes the rows before.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { type EncodedRowGroup, encodeRowGroup } from "./parquet.ts";
import { rowRanges } from "./manifest_rows.ts";
import { errorMessage } from "./errors.ts";

/** What to encode: groups of `groupRows` rows with rowid above `after`, in the database at `db`. */
export interface GroupEncoderTask {
  db: string;
  after: number;
  groupRows: number;
}

/**
 * Messages from the helper: each full group, then the end (the rows after the last full group are
 * left to the caller), or why it failed.
 */
export type FromGroupEncoder =
  | { type: "group"; lastRowid: number; encoded: EncodedRowGroup }
  | { type: "done" }
  | { type: "failed"; message: string };

interface WorkerScope {
  onmessage: ((event: MessageEvent<GroupEncoderTask>) => void) | null;
  postMessage(message: FromGroupEncoder, transfer?: Transferable[]): void;
}

const scope = self as unknown as WorkerScope;

scope.onmessage = ({ data: task }) => {
  try {
    const db = new DatabaseSync(task.db, { readOnly: true });
    try {
      for (
        const { rowids, columns } of rowRanges(db, task.after, Number.MAX_VALUE, task.groupRows)
      ) {
        if (rowids.length < task.groupRows) break;
        const encoded = encodeRowGroup(columns);
        const lastRowid = rowids[rowids.length - 1];
        scope.postMessage({ type: "group", lastRowid, encoded }, [encoded.bytes.buffer]);
      }
    } finally {
      db.close();
    }
    scope.postMessage({ type: "done" });
  } catch (error) {
    scope.postMessage({
      type: "failed",
      message: errorMessage(error),
    });
  }
};
