import assert from "node:assert/strict";
import { MultipartEtag, PART_SIZE } from "../lib/multipart_etag.ts";
import { referenceEtag, sampleBytes } from "./support/etag.ts";

const MIB = 1024 * 1024;
const SIZES = [0, 1, 5 * MIB, 5 * MIB + 1, 12 * MIB + 12345];

function streamed(bytes: Uint8Array, chunkSizes: (index: number) => number) {
  const hash = new MultipartEtag();
  for (let offset = 0, i = 0; offset < bytes.length; i++) {
    const size = chunkSizes(i);
    hash.update(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return { ...hash.digest(), bytes: hash.bytes };
}

Deno.test("the part size is 5 MiB, as the worker contract says", () => {
  assert.equal(PART_SIZE, 5242880);
});

Deno.test("an empty stream is one empty part: md5(md5(''))-1", () => {
  const hash = new MultipartEtag();
  hash.update(new Uint8Array(0));
  assert.deepEqual(hash.digest(), { etag: "59adb24ef3cdbe0297f05b395827453f-1", parts: 1 });
  assert.equal(referenceEtag(new Uint8Array(0)), "59adb24ef3cdbe0297f05b395827453f-1");
});

Deno.test("the streamed ETag equals the reference ETag for 0 B, 1 B, 5 MiB, 5 MiB + 1, ~12 MiB", () => {
  for (const size of SIZES) {
    const bytes = sampleBytes(size, size + 7);
    const expected = referenceEtag(bytes);
    const parts = Math.max(1, Math.ceil(size / PART_SIZE));
    assert.ok(expected.endsWith(`-${parts}`));
    const result = streamed(bytes, () => size || 1);
    assert.deepEqual(result, { etag: expected, parts, bytes: size }, `${size} B in one chunk`);
  }
});

Deno.test("the ETag does not depend on how the stream is chunked", () => {
  const bytes = sampleBytes(12 * MIB + 12345, 3);
  const expected = referenceEtag(bytes);
  let seed = 42;
  const random = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return 1 + (seed % (300 * 1024));
  };
  const chunkings: [string, (i: number) => number][] = [
    ["64 KiB chunks", () => 64 * 1024],
    ["parts minus one byte", () => PART_SIZE - 1],
    ["parts plus one byte", () => PART_SIZE + 1],
    ["odd sizes", random],
    ["one byte, then 5 MiB chunks", (i) => (i === 0 ? 1 : PART_SIZE)],
  ];
  for (const [name, sizes] of chunkings) {
    assert.equal(streamed(bytes, sizes).etag, expected, name);
  }
});
