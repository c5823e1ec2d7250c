/**
 * The Parquet manifest: the `downloads` table with the Python original's Arrow types, written with
 * an explicit schema so every reader (DuckDB, pyarrow, polars, hyparquet) sees the same columns.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import type { SchemaElement } from "hyparquet";
import type { DownloadRow } from "./store.ts";

/** MIME type of the uploaded manifest. */
export const PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet";

const utf8 = (name: string, required = false): SchemaElement => ({
  name,
  type: "BYTE_ARRAY",
  converted_type: "UTF8",
  logical_type: { type: "STRING" },
  repetition_type: required ? "REQUIRED" : "OPTIONAL",
});
const int32 = (name: string): SchemaElement => ({
  name,
  type: "INT32",
  repetition_type: "OPTIONAL",
});
const timestampMicrosUtc = (name: string): SchemaElement => ({
  name,
  type: "INT64",
  converted_type: "TIMESTAMP_MICROS",
  logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MICROS" },
  repetition_type: "OPTIONAL",
});

/**
 * The manifest schema, column for column the seed's table. Every element names its repetition:
 * without it hyparquet-writer lets nulls into a column and corrupts it.
 */
export const MANIFEST_SCHEMA: SchemaElement[] = [
  { name: "schema", num_children: 10 },
  utf8("url", true),
  utf8("dataset_id", true),
  utf8("status", true),
  int32("http_status"),
  utf8("etag"),
  utf8("error"),
  timestampMicrosUtc("started_at"),
  timestampMicrosUtc("finished_at"),
  int32("multipart_part_size"),
  int32("multipart_number_parts"),
];

const ISO_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Microseconds since the Unix epoch for an ISO-8601 timestamp as stored in the database, exact to
 * the microsecond (digits past the sixth are dropped). A timestamp without an offset is UTC.
 * Returns `null` for `null` or text that is not such a timestamp.
 */
export function isoToEpochMicros(text: string | null): bigint | null {
  if (text === null) return null;
  const match = ISO_TIMESTAMP.exec(text.trim());
  if (match === null) return null;
  const [, year, month, day, hour, minute, second = "0", fraction = "", offset = "Z"] = match;
  const millis = Date.UTC(+year, +month - 1, +day, +hour, +minute, +second);
  if (Number.isNaN(millis)) return null;
  const micros = BigInt(fraction.slice(0, 6).padEnd(6, "0"));
  let offsetMinutes = 0;
  if (offset.toUpperCase() !== "Z") {
    const digits = offset.slice(1).replace(":", "");
    offsetMinutes = (+digits.slice(0, 2) * 60 + +(digits.slice(2) || "0")) *
      (offset[0] === "-" ? -1 : 1);
  }
  return (BigInt(millis) - BigInt(offsetMinutes * 60_000)) * 1000n + micros;
}

/** Column buffers for a manifest, filled one row at a time. */
export interface ManifestColumns {
  url: string[];
  dataset_id: string[];
  status: string[];
  http_status: (number | null)[];
  etag: (string | null)[];
  error: (string | null)[];
  started_at: (bigint | null)[];
  finished_at: (bigint | null)[];
  multipart_part_size: (number | null)[];
  multipart_number_parts: (number | null)[];
}

/** Empty column buffers. */
export function emptyColumns(): ManifestColumns {
  return {
    url: [],
    dataset_id: [],
    status: [],
    http_status: [],
    etag: [],
    error: [],
    started_at: [],
    finished_at: [],
    multipart_part_size: [],
    multipart_number_parts: [],
  };
}

/** Appends `row` to `columns`, converting the text timestamps to microseconds. */
export function appendRow(columns: ManifestColumns, row: DownloadRow): void {
  columns.url.push(row.url);
  columns.dataset_id.push(row.dataset_id);
  columns.status.push(row.status);
  columns.http_status.push(row.http_status);
  columns.etag.push(row.etag);
  columns.error.push(row.error);
  columns.started_at.push(isoToEpochMicros(row.started_at));
  columns.finished_at.push(isoToEpochMicros(row.finished_at));
  columns.multipart_part_size.push(row.multipart_part_size);
  columns.multipart_number_parts.push(row.multipart_number_parts);
}

/** Encodes `columns` as a Parquet file. */
export function encodeManifest(columns: ManifestColumns): Uint8Array<ArrayBuffer> {
  const buffer = parquetWriteBuffer({
    columnData: MANIFEST_SCHEMA.slice(1).map(({ name }) => ({
      name,
      data: columns[name as keyof ManifestColumns],
    })),
    schema: MANIFEST_SCHEMA,
    codec: "SNAPPY",
    rowGroupSize: 100_000,
    createdBy: "d4c-http-ingestor",
  });
  return new Uint8Array(buffer);
}

/**
 * Writes `bytes` to `path` so that a crash at any moment leaves either the previous file or the
 * new one whole: a temporary file in the same directory, flushed to disk, then renamed over it.
 */
export async function writeFileAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    const file = await Deno.open(temporary, { write: true, createNew: true });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
  await removeLeftovers(path);
}

/** What {@link writeFileAtomically} appends to a path to name its temporary. */
const TEMPORARY_SUFFIX = /^\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/;

/**
 * Deletes the temporaries of `path` that a killed run left behind: never renamed, so never whole,
 * and as large as the manifest.
 */
async function removeLeftovers(path: string): Promise<void> {
  const name = basename(path);
  try {
    for await (const entry of Deno.readDir(dirname(path))) {
      if (!entry.isFile || !entry.name.startsWith(name)) continue;
      if (!TEMPORARY_SUFFIX.test(entry.name.slice(name.length))) continue;
      await Deno.remove(join(dirname(path), entry.name)).catch(() => {});
    }
  } catch {
    // Tidying up is a courtesy: the manifest itself is written.
  }
}
