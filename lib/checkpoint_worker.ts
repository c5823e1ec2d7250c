/**
 * The checkpoint Web Worker: keeps the manifest (manifest_builder.ts) on its own thread and its
 * own read-only SQLite connection, so encoding, writing and uploading it never stall the dispatch
 * loop. Messages are handled one at a time, in the order sent: a checkpoint requested after some
 * rows were posted includes them. See {@link CheckpointWorker} in checkpoint.ts for the other end.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { ManifestBuilder } from "./manifest_builder.ts";
import { UnreadableManifestError } from "./parquet.ts";
import { type CheckpointResult, type CheckpointTarget, writeAndUpload } from "./checkpoint.ts";
import type { DownloadRow } from "./store.ts";

/** Messages to the worker. */
export type ToCheckpointWorker =
  | { type: "open"; db: string; target: CheckpointTarget; replaceExisting: boolean }
  | { type: "rows"; rowids: number[]; rows: DownloadRow[] }
  | { type: "checkpoint"; id: number }
  | { type: "close" };

/** Messages from the worker. */
export type FromCheckpointWorker =
  | { type: "opened"; kept: number }
  | { type: "unreadable"; message: string }
  | { type: "checkpoint"; id: number; result: CheckpointResult }
  | { type: "checkpoint-failed"; id: number; message: string }
  | { type: "crashed"; message: string }
  | { type: "closed" };

interface WorkerScope {
  onmessage: ((event: MessageEvent<ToCheckpointWorker>) => void) | null;
  postMessage(message: FromCheckpointWorker): void;
}

const scope = self as unknown as WorkerScope;
let state: { db: DatabaseSync; builder: ManifestBuilder; target: CheckpointTarget } | null = null;
let queue = Promise.resolve();

scope.onmessage = (event) => {
  const message = event.data;
  queue = queue.then(() => handle(message)).catch((error) => {
    scope.postMessage({ type: "crashed", message: messageOf(error) });
  });
};

async function handle(message: ToCheckpointWorker): Promise<void> {
  switch (message.type) {
    case "open": {
      const db = new DatabaseSync(message.db, { readOnly: true });
      const builder = new ManifestBuilder(db);
      let kept = 0;
      if (!message.replaceExisting) {
        try {
          kept = await builder.mergeExisting(message.target.path);
        } catch (error) {
          db.close();
          if (!(error instanceof UnreadableManifestError)) throw error;
          scope.postMessage({ type: "unreadable", message: error.message });
          return;
        }
      }
      scope.postMessage({ type: "opened", kept });
      builder.loadDatabase();
      state = { db, builder, target: message.target };
      return;
    }
    case "rows": {
      const builder = opened().builder;
      for (let i = 0; i < message.rows.length; i++) {
        builder.upsert(message.rowids[i], message.rows[i]);
      }
      return;
    }
    case "checkpoint": {
      const { builder, target } = opened();
      try {
        const result = await writeAndUpload(() => builder.build(), target);
        scope.postMessage({ type: "checkpoint", id: message.id, result });
      } catch (error) {
        scope.postMessage({ type: "checkpoint-failed", id: message.id, message: messageOf(error) });
      }
      return;
    }
    case "close":
      state?.db.close();
      state = null;
      scope.postMessage({ type: "closed" });
  }
}

function opened(): NonNullable<typeof state> {
  if (state === null) throw new Error("the checkpoint worker was not opened");
  return state;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
