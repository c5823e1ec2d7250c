/**
 * A run's surroundings for end-to-end tests: a temporary directory holding the URL list, the
 * database and the manifest, the flags that point the CLI at them and at a fake worker, and
 * readers for what the run left behind.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { parquetMetadata, parquetReadObjects } from "hyparquet";
import type { DownloadRow } from "../../lib/store.ts";
import type { FakeWorker } from "./fake_worker.ts";
import { MANIFEST_DECOMPRESSORS } from "../../lib/parquet.ts";

/** Files of one test run. */
export interface Fixture {
  dir: string;
  urlsPath: string;
  db: string;
  /** The `--out` stem; the manifest is `${out}.parquet`. */
  out: string;
  /** Flags for a run against `worker`, fast retries, then `extra` (later flags win). */
  args(worker: Pick<FakeWorker, "url" | "token">, extra?: string[]): string[];
  [Symbol.asyncDispose](): Promise<void>;
}

/** Makes a temporary directory with `urls` written as the URL list (a string is written as is). */
export async function fixture(urls: string[] | string | Uint8Array): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "d4c-reliability-" });
  const urlsPath = join(dir, "urls.txt");
  if (urls instanceof Uint8Array) await Deno.writeFile(urlsPath, urls);
  else await Deno.writeTextFile(urlsPath, typeof urls === "string" ? urls : urls.join("\n") + "\n");
  const db = join(dir, "state.sqlite");
  const out = join(dir, "manifest");
  return {
    dir,
    urlsPath,
    db,
    out,
    args: (worker, extra = []) => [
      "--urls",
      urlsPath,
      "--dataset-id",
      "test-data",
      "--db",
      db,
      "--out",
      out,
      "--worker-url",
      worker.url,
      "--auth-token",
      worker.token,
      "--retry-delay",
      "0.01",
      "--retry-max-delay",
      "0.05",
      "--log-interval",
      "60",
      ...extra,
    ],
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** `count` distinct URLs with distinct file names. */
export function urlList(count: number, host = "https://data.example.org"): string[] {
  return Array.from({ length: count }, (_, i) => `${host}/files/${i}/part-${i}.zip`);
}

/** Every row of the `downloads` table at `path`, in rowid order. */
export function readRows(path: string): DownloadRow[] {
  const db = new DatabaseSync(path);
  try {
    return db.prepare("SELECT * FROM downloads ORDER BY rowid").all() as unknown as DownloadRow[];
  } finally {
    db.close();
  }
}

/** The rows at `path` keyed by URL. */
export function rowsByUrl(path: string): Map<string, DownloadRow> {
  return new Map(readRows(path).map((row) => [row.url, row]));
}

/** `PRAGMA integrity_check` of the database at `path`: `"ok"` when sound. */
export function integrityCheck(path: string): string {
  const db = new DatabaseSync(path);
  try {
    const rows = db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[];
    return rows.map((row) => row.integrity_check).join("; ");
  } finally {
    db.close();
  }
}

/** Reads a whole Parquet manifest; throws if any part of it is unreadable. */
export async function readManifest(
  path: string,
): Promise<{ rows: Record<string, unknown>[]; numRows: number }> {
  const bytes = await Deno.readFile(path);
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const metadata = parquetMetadata(file);
  const rows = await parquetReadObjects({ file, compressors: MANIFEST_DECOMPRESSORS });
  return { rows, numRows: Number(metadata.num_rows) };
}

/** Whether `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Every file in `dir` with a digest of its bytes and its modification time, to compare. */
export async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    const info = await Deno.stat(path);
    const bytes = info.isFile ? await Deno.readFile(path) : new Uint8Array();
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    files.set(entry.name, `${info.mtime?.getTime()} ${digest.join(",")}`);
  }
  return files;
}

/** Stderr as lines, without the trailing empty one. */
export function lines(text: string): string[] {
  return text.split("\n").filter((line) => line !== "");
}
