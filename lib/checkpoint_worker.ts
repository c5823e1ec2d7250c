/**
 * The checkpoint Web Worker: on its own thread and SQLite connection it commits the run's results
 * and keeps the manifest (manifest_builder.ts) current, so neither committing nor encoding,
 * writing and uploading the manifest stalls the dispatch loop. Messages are handled one at a
 * time, in the order sent: a checkpoint requested after some rows were committed includes them.
 * See {@link CheckpointWorker} in checkpoint.ts for the other end.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { setPriority } from "node:os";
import { type BuiltManifest, ManifestBuilder } from "./manifest_builder.ts";
import { UnreadableManifestError } from "./parquet.ts";
import { errorMessage } from "./errors.ts";
import {
  CHECKPOINT_THREAD_NICENESS,
  type CheckpointResult,
  type CheckpointTarget,
  writeAndUpload,
} from "./checkpoint.ts";
import { type DownloadRow, DownloadStore, openDatabase } from "./store.ts";

/** Messages to the worker. */
export type ToCheckpointWorker =
  | { type: "open"; db: string; target: CheckpointTarget; replaceExisting: boolean }
  | { type: "commit"; id: number; rows: DownloadRow[] }
  | { type: "checkpoint"; id: number; upload: boolean }
  | { type: "abort-uploads" }
  | { type: "close" };

/** Messages from the worker. */
export type FromCheckpointWorker =
  | { type: "opened"; kept: number }
  | { type: "committed"; id: number }
  | { type: "commit-failed"; id: number; message: string }
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
runBehindDispatch();
let state: {
  db: DatabaseSync;
  store: DownloadStore;
  builder: ManifestBuilder;
  target: CheckpointTarget;
} | null = null;
let queue = Promise.resolve();
// An AbortSignal cannot cross to this thread: the operator's second Ctrl-C arrives as a message.
const uploads = new AbortController();

scope.onmessage = (event) => {
  const message = event.data;
  // Not queued: it must reach an upload under way, which the queue may be waiting behind.
  if (message.type === "abort-uploads") return uploads.abort();
  queue = queue.then(() => handle(message)).catch((error) => {
    scope.postMessage({ type: "crashed", message: errorMessage(error) });
  });
};

async function handle(message: ToCheckpointWorker): Promise<void> {
  switch (message.type) {
    case "open": {
      // The opener switches the database to WAL once it is sure to record: until then an
      // existing database keeps its bytes.
      const db = openDatabase(message.db, { writeAheadLog: false });
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
      await builder.loadDatabase();
      state = { db, store: new DownloadStore(db), builder, target: message.target };
      return;
    }
    case "commit": {
      const { store, builder } = opened();
      let rowids: number[];
      try {
        rowids = store.record(message.rows);
      } catch (error) {
        scope.postMessage({ type: "commit-failed", id: message.id, message: errorMessage(error) });
        return;
      }
      scope.postMessage({ type: "committed", id: message.id });
      message.rows.forEach((row, i) => builder.upsert(rowids[i], row));
      return;
    }
    case "checkpoint": {
      const { builder, target } = opened();
      const id = message.id;
      // Only the build waits in line; writing and uploading (seconds on a slow link) must not
      // hold up the commits behind it. The scheduler never asks for two checkpoints at once.
      let built: BuiltManifest;
      const started = performance.now();
      try {
        built = builder.build();
      } catch (error) {
        scope.postMessage({ type: "checkpoint-failed", id, message: errorMessage(error) });
        return;
      }
      const upload = message.upload && target.upload !== null
        ? { ...target.upload, signal: uploads.signal }
        : null;
      writeAndUpload(built, { ...target, upload }, started).then(
        (result) => scope.postMessage({ type: "checkpoint", id, result }),
        (error) =>
          scope.postMessage({ type: "checkpoint-failed", id, message: errorMessage(error) }),
      );
      return;
    }
    case "close":
      state?.db.close();
      state = null;
      scope.postMessage({ type: "closed" });
  }
}

function runBehindDispatch(): void {
  // Linux keeps a nice value per thread, and setpriority(who = 0) sets the calling thread's;
  // elsewhere it would lower the dispatch loop too.
  if (Deno.build.os !== "linux") return;
  // Asking first: without --allow-sys=setPriority, calling would prompt or throw.
  if (Deno.permissions.querySync({ name: "sys", kind: "setPriority" }).state !== "granted") return;
  try {
    setPriority(CHECKPOINT_THREAD_NICENESS);
  } catch {
    // A sandbox may forbid it; the priority only helps on a busy machine.
  }
}

function opened(): NonNullable<typeof state> {
  if (state === null) throw new Error("the checkpoint worker was not opened");
  return state;
}
