/**
 * The Parquet manifest: the `downloads` table with the Python original's Arrow types, written with
 * an explicit schema so every reader (DuckDB, pyarrow, polars, hyparquet) sees the same columns.
 *
 * A manifest is assembled from row groups encoded one at a time, so that a caller can keep the
 * bytes of groups that did not change and re-encode only the rest (see manifest_builder.ts).
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { ByteWriter, ParquetWriter } from "hyparquet-writer";
import type { ColumnSource } from "hyparquet-writer";
import { parquetMetadata, parquetRead, parquetReadObjects } from "hyparquet";
import type { FileMetaData, RowGroup, SchemaElement } from "hyparquet";
import { constants as zlibConstants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import type { DownloadRow } from "./store.ts";
import { messageOf } from "./errors.ts";

/** MIME type of the uploaded manifest. */
export const PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet";

/**
 * Rows per row group: about 0.2 MB compressed for realistic URLs. Groups are encoded once and
 * kept (manifest_builder.ts), so this bounds what a checkpoint re-encodes and the memory that
 * takes; readers scan groups of this size without trouble.
 */
export const ROW_GROUP_ROWS = 10_000;

/**
 * ZSTD (level 1): read by DuckDB, pyarrow, polars and Spark, and 2.4 times smaller than SNAPPY
 * on a realistic manifest, at no extra encoding cost, since node:zlib compresses natively.
 * hyparquet reads it given {@link MANIFEST_DECOMPRESSORS}.
 */
const CODEC = "ZSTD";
const ZSTD_LEVEL = 1;
const COMPRESSORS = {
  ZSTD: (input: Uint8Array) =>
    new Uint8Array(
      zstdCompressSync(input, { params: { [zlibConstants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } }),
    ),
};

/** Decompressors to pass to hyparquet (`compressors`) to read a manifest. */
export const MANIFEST_DECOMPRESSORS = {
  ZSTD: (input: Uint8Array) => new Uint8Array(zstdDecompressSync(input)),
};
const CREATED_BY = "d4c-http-ingestor";

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

/**
 * How each column is written. Unique strings (url, etag) go as PLAIN bytes without min/max
 * statistics, which would cost a comparison per value and help no query. Low-cardinality columns
 * are dictionary-encoded outright (no sampling); timestamps are delta-encoded, as consecutive
 * results are close in time. The error column is left to
 * hyparquet-writer, which dictionary-encodes it when that at least halves it.
 */
const COLUMN_OPTIONS: Record<string, Partial<ColumnSource>> = {
  url: { encoding: "PLAIN", statistics: false },
  dataset_id: { encoding: "RLE_DICTIONARY" },
  status: { encoding: "RLE_DICTIONARY" },
  http_status: { encoding: "RLE_DICTIONARY" },
  etag: { encoding: "PLAIN", statistics: false },
  error: { statistics: false },
  started_at: { encoding: "DELTA_BINARY_PACKED" },
  finished_at: { encoding: "DELTA_BINARY_PACKED" },
  multipart_part_size: { encoding: "RLE_DICTIONARY" },
  multipart_number_parts: { encoding: "RLE_DICTIONARY" },
};

const ISO_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Microseconds since the Unix epoch for an ISO-8601 timestamp as stored in the database, exact to
 * the microsecond (digits past the sixth are dropped). A timestamp without an offset is UTC.
 * Returns `null` for `null` or text that is not such a timestamp.
 */
export function isoToEpochMicros(text: string | null): bigint | null {
  if (text === null) return null;
  const workerMillis = workerFormatMillis(text);
  if (workerMillis !== null) return BigInt(workerMillis * 1000);
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

/** The last minute {@link workerFormatMillis} parsed: consecutive results share it. */
let lastMinute = { text: "", millis: 0 };

/**
 * Milliseconds since the epoch for the worker's own format (`2026-03-12T21:00:00.000Z`), or
 * `null` for any other text. A manifest holds two per row, so the date and time down to the
 * minute are parsed once per minute and the seconds read digit by digit: 4 times as fast as
 * `Date.parse` for each.
 */
function workerFormatMillis(text: string): number | null {
  if (text.length !== 24 || text[16] !== ":" || text[19] !== "." || text[23] !== "Z") return null;
  let fraction = 0;
  for (const at of [17, 18, 20, 21, 22]) {
    const digit = text.charCodeAt(at) - 48;
    if (digit < 0 || digit > 9) return null;
    fraction = fraction * 10 + digit;
  }
  if (fraction >= 60_000) return null;
  const prefix = text.slice(0, 16);
  if (prefix !== lastMinute.text) {
    const millis = Date.parse(`${prefix}:00.000Z`);
    if (Number.isNaN(millis) || prefix[10] !== "T") return null;
    lastMinute = { text: prefix, millis };
  }
  return lastMinute.millis + fraction;
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

/** One manifest row as column values (timestamps already in microseconds). */
export type ManifestRow = { [K in keyof ManifestColumns]: ManifestColumns[K][number] };

/** The manifest's column names, in schema order. */
export const MANIFEST_COLUMNS = MANIFEST_SCHEMA.slice(1).map((e) => e.name) as (
  keyof ManifestColumns
)[];

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

/** `row` as manifest values: the text timestamps converted to microseconds. */
export function manifestRow(row: DownloadRow): ManifestRow {
  return {
    url: row.url,
    dataset_id: row.dataset_id,
    status: row.status,
    http_status: row.http_status,
    etag: row.etag,
    error: row.error,
    started_at: isoToEpochMicros(row.started_at),
    finished_at: isoToEpochMicros(row.finished_at),
    multipart_part_size: row.multipart_part_size,
    multipart_number_parts: row.multipart_number_parts,
  };
}

/** Appends an already converted row to `columns`. */
export function pushRow(columns: ManifestColumns, row: ManifestRow): void {
  for (const name of MANIFEST_COLUMNS) (columns[name] as unknown[]).push(row[name]);
}

/** Writes `row` over row `index` of `columns`. */
export function setRow(columns: ManifestColumns, index: number, row: ManifestRow): void {
  for (const name of MANIFEST_COLUMNS) (columns[name] as unknown[])[index] = row[name];
}

/** Rows `start` to `end` (exclusive) of `columns`, as new buffers. */
export function sliceColumns(
  columns: ManifestColumns,
  start: number,
  end: number,
): ManifestColumns {
  const out = emptyColumns();
  for (const name of MANIFEST_COLUMNS) {
    (out[name] as unknown[]) = (columns[name] as unknown[]).slice(start, end);
  }
  return out;
}

/** Keeps only the rows whose index `keep` accepts, in place. */
export function filterColumns(columns: ManifestColumns, keep: (index: number) => boolean): void {
  const kept: number[] = [];
  for (let i = 0; i < columns.url.length; i++) if (keep(i)) kept.push(i);
  for (const name of MANIFEST_COLUMNS) {
    const values = columns[name] as unknown[];
    (columns[name] as unknown[]) = kept.map((i) => values[i]);
  }
}

/**
 * One row group, encoded: its column chunks as bytes, and its metadata with offsets counted from
 * the start of those bytes, so it can be placed anywhere in a file.
 */
export interface EncodedRowGroup {
  bytes: Uint8Array<ArrayBuffer>;
  rows: number;
  meta: RowGroup;
}

const MAGIC_BYTES = 4;

/**
 * UTF-8 bytes of each string, as views into one buffer: a single native encode instead of one
 * per value, which is what makes string columns cheap to write.
 */
function utf8Values(values: (string | null)[]): (Uint8Array | null)[] {
  const encoder = new TextEncoder();
  const joined = values.filter((v): v is string => v !== null).join("");
  const bytes = encoder.encode(joined);
  // Only ASCII encodes to one byte per character, and so lets each value be cut out by length.
  if (bytes.length !== joined.length) {
    return values.map((v) => v === null ? null : encoder.encode(v));
  }
  const out = new Array<Uint8Array | null>(values.length);
  let offset = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value === null) out[i] = null;
    else {
      out[i] = bytes.subarray(offset, offset + value.length);
      offset += value.length;
    }
  }
  return out;
}

/** Encodes all of `columns` as one row group. */
export function encodeRowGroup(columns: ManifestColumns): EncodedRowGroup {
  const rows = columns.url.length;
  if (rows === 0) {
    return {
      bytes: new Uint8Array(),
      rows,
      meta: { columns: [], total_byte_size: 0n, num_rows: 0n },
    };
  }
  const writer = new ByteWriter(1 << 20);
  const parquet = new ParquetWriter({
    writer,
    schema: MANIFEST_SCHEMA,
    codec: CODEC,
    compressors: COMPRESSORS,
    createdBy: CREATED_BY,
  });
  const data: Record<string, unknown[]> = { ...columns };
  data.url = utf8Values(columns.url);
  data.etag = utf8Values(columns.etag);
  parquet.write({
    columnData: MANIFEST_COLUMNS.map((name) => ({
      name,
      data: data[name],
      offsetIndex: false,
      ...COLUMN_OPTIONS[name],
    })),
    rowGroupSize: rows,
  });
  const meta = relocate(parquet.row_groups[0], -MAGIC_BYTES);
  return { bytes: writer.getBytes().slice(MAGIC_BYTES), rows, meta };
}

/** `group` with every file offset in it moved by `delta` bytes. */
function relocate(group: RowGroup, delta: number): RowGroup {
  const by = BigInt(delta);
  return {
    ...group,
    columns: group.columns.map((chunk) => ({
      ...chunk,
      file_offset: chunk.file_offset + by,
      meta_data: chunk.meta_data && {
        ...chunk.meta_data,
        data_page_offset: chunk.meta_data.data_page_offset + by,
        dictionary_page_offset: chunk.meta_data.dictionary_page_offset === undefined
          ? undefined
          : chunk.meta_data.dictionary_page_offset + by,
      },
    })),
  };
}

/** A Parquet file as the list of byte ranges that make it up, in order. */
export interface ManifestBytes {
  parts: Uint8Array[];
  size: number;
}

/**
 * A ByteWriter that takes whole row groups by reference: the file is a list of parts, so a
 * manifest of cached groups is never copied into one buffer.
 */
class PartsWriter extends ByteWriter {
  readonly parts: Uint8Array[] = [];

  /** Appends `bytes` without copying them. */
  appendPart(bytes: Uint8Array): void {
    this.#flush();
    this.parts.push(bytes);
    this.offset += bytes.length;
  }

  #flush(): void {
    if (this.index === 0) return;
    this.parts.push(new Uint8Array(this.buffer.slice(0, this.index)));
    this.index = 0;
  }

  /** The parts, once the file is finished. */
  done(): ManifestBytes {
    this.#flush();
    return { parts: this.parts, size: this.offset };
  }
}

/** A whole Parquet file made of `groups`, in order. A manifest with no rows has no row group. */
export function assembleManifest(groups: EncodedRowGroup[]): ManifestBytes {
  const writer = new PartsWriter(64 * 1024);
  const parquet = new ParquetWriter({
    writer,
    schema: MANIFEST_SCHEMA,
    codec: CODEC,
    createdBy: CREATED_BY,
  });
  for (const group of groups) {
    if (group.rows === 0) continue;
    const base = writer.offset;
    writer.appendPart(group.bytes);
    parquet.row_groups.push(relocate(group.meta, base));
    parquet.num_rows += BigInt(group.rows);
  }
  parquet.finish();
  return writer.done();
}

/** `parts` as one buffer. */
export function concatParts({ parts, size }: ManifestBytes): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Why an existing manifest cannot be merged: it is not a Parquet file of our columns. */
export class UnreadableManifestError extends Error {
  /** @param message what is wrong with the file. */
  constructor(message: string) {
    super(message);
    this.name = "UnreadableManifestError";
  }
}

const TIMESTAMP_PARSERS = {
  timestampFromMilliseconds: (millis: bigint) => millis * 1000n,
  timestampFromMicroseconds: (micros: bigint) => micros,
  timestampFromNanoseconds: (nanos: bigint) => nanos / 1000n,
};

/** A manifest file read back: its metadata and a reader of its row groups. */
export interface ManifestFile {
  rows: number;
  /** Each row group's row range, in file order. */
  groups: { start: number; end: number }[];
  /** The `url` column of rows `start` to `end`. */
  readUrls(start: number, end: number): Promise<string[]>;
  /** Rows `start` to `end`, every manifest column, timestamps in exact microseconds. */
  readRows(start: number, end: number): Promise<ManifestColumns>;
}

/**
 * Opens the manifest at `path` for reading, or returns `null` when there is no file.
 *
 * @throws {UnreadableManifestError} when the file is not Parquet or lacks a manifest column.
 */
export async function openManifestFile(path: string): Promise<ManifestFile | null> {
  let file: ArrayBuffer;
  try {
    file = (await Deno.readFile(path)).buffer;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw new UnreadableManifestError(`cannot read it (${messageOf(error)})`);
  }
  let metadata: FileMetaData;
  try {
    metadata = parquetMetadata(file);
  } catch (error) {
    throw new UnreadableManifestError(`not a Parquet file (${messageOf(error)})`);
  }
  const names = new Set(metadata.schema.map((e) => e.name));
  const missing = MANIFEST_COLUMNS.filter((name) => !names.has(name));
  if (missing.length > 0) {
    throw new UnreadableManifestError(`not a manifest: no column(s) ${missing.join(", ")}`);
  }
  const groups = [];
  let start = 0;
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows);
    groups.push({ start, end });
    start = end;
  }
  const read = async (columns: string[], rowStart: number, rowEnd: number) => {
    try {
      return await parquetReadObjects({
        file,
        metadata,
        columns,
        rowStart,
        rowEnd,
        parsers: TIMESTAMP_PARSERS,
        compressors: MANIFEST_DECOMPRESSORS,
      });
    } catch (error) {
      throw new UnreadableManifestError(`damaged (${messageOf(error)})`);
    }
  };
  return {
    rows: Number(metadata.num_rows),
    groups,
    async readUrls(rowStart, rowEnd) {
      // Column chunks as they decode: no object per row, four times faster for a million.
      const urls: string[] = [];
      try {
        await parquetRead({
          file,
          metadata,
          columns: ["url"],
          rowStart,
          rowEnd,
          compressors: MANIFEST_DECOMPRESSORS,
          onChunk: ({ columnData, rowStart: first }) => {
            for (let i = Math.max(rowStart - first, 0); i < columnData.length; i++) {
              if (first + i >= rowEnd) break;
              urls.push(columnData[i] as string);
            }
          },
        });
      } catch (error) {
        throw new UnreadableManifestError(`damaged (${messageOf(error)})`);
      }
      if (urls.length !== rowEnd - rowStart || urls.some((url) => typeof url !== "string")) {
        throw new UnreadableManifestError("its url column is not text for every row");
      }
      return urls;
    },
    async readRows(rowStart, rowEnd) {
      const columns = emptyColumns();
      for (const row of await read(MANIFEST_COLUMNS, rowStart, rowEnd)) {
        pushRow(columns, coerceRow(row));
      }
      return columns;
    },
  };
}

/** A row as hyparquet decoded it, in our column types (a file from pyarrow may differ a bit). */
function coerceRow(row: Record<string, unknown>): ManifestRow {
  const text = (value: unknown) => value === null || value === undefined ? null : String(value);
  const int = (value: unknown) => value === null || value === undefined ? null : Number(value);
  const micros = (value: unknown) => {
    if (value === null || value === undefined) return null;
    if (typeof value === "bigint") return value;
    if (value instanceof Date) return BigInt(value.getTime()) * 1000n;
    throw new UnreadableManifestError(`a timestamp is not a timestamp (${String(value)})`);
  };
  return {
    url: String(row.url),
    dataset_id: text(row.dataset_id) ?? "",
    status: text(row.status) ?? "",
    http_status: int(row.http_status),
    etag: text(row.etag),
    error: text(row.error),
    started_at: micros(row.started_at),
    finished_at: micros(row.finished_at),
    multipart_part_size: int(row.multipart_part_size),
    multipart_number_parts: int(row.multipart_number_parts),
  };
}

/**
 * Writes `bytes` (one buffer, or parts in order) to `path` so that a crash at any moment leaves
 * either the previous file or the new one whole: a temporary file in the same directory, flushed
 * to disk, then renamed over it.
 */
export async function writeFileAtomically(
  path: string,
  bytes: Uint8Array | Uint8Array[],
): Promise<void> {
  const temporary = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    const file = await Deno.open(temporary, { write: true, createNew: true });
    try {
      for (const part of Array.isArray(bytes) ? bytes : [bytes]) {
        let written = 0;
        while (written < part.length) written += await file.write(part.subarray(written));
      }
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
