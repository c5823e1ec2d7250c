/**
 * The S3 multipart ETag computed the plain way, from bytes held whole, independently of
 * lib/multipart_etag.ts: the reference the streaming implementation is checked against.
 *
 * @module
 */

import { createHash } from "node:crypto";

const PART = 5 * 1024 * 1024;

/** `md5(md5(part 1) ‖ md5(part 2) ‖ …)-<parts>` with 5 MiB parts; empty bytes are one empty part. */
export function referenceEtag(bytes: Uint8Array): string {
  const digests: Uint8Array[] = [];
  for (let offset = 0; offset < bytes.length || digests.length === 0; offset += PART) {
    digests.push(createHash("md5").update(bytes.subarray(offset, offset + PART)).digest());
  }
  const whole = createHash("md5");
  for (const digest of digests) whole.update(digest);
  return `${whole.digest("hex")}-${digests.length}`;
}

/** `size` reproducible bytes that do not repeat with the part size. */
export function sampleBytes(size: number, seed = 1): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let state = seed;
  for (let i = 0; i < size; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}
