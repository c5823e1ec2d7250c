import assert from "node:assert/strict";
import { invalidUrlReason, readUrlEntries } from "../lib/url_list.ts";
import { UsageError } from "../lib/errors.ts";

function streamOf(...chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return ReadableStream.from(chunks.map((c) => typeof c === "string" ? encoder.encode(c) : c));
}

async function entries(stream: ReadableStream<Uint8Array>): Promise<string[]> {
  return await Array.fromAsync(readUrlEntries(stream, "test list"));
}

Deno.test("entries are trimmed lines without blanks and # comments", async () => {
  assert.deepEqual(
    await entries(
      streamOf("# header\n  https://a/1.zip  \n\n\t\nhttps://a/2.zip\n# x\nhttps://a/3.zip"),
    ),
    ["https://a/1.zip", "https://a/2.zip", "https://a/3.zip"],
  );
});

Deno.test("a BOM, CRLF line ends and lines split across chunks are read correctly", async () => {
  const bytes = new TextEncoder().encode("\uFEFFhttps://a/1.zip\r\nhttps://a/é.zip\r\n");
  const chunks = Array.from(bytes, (b) => new Uint8Array([b]));
  assert.deepEqual(await entries(streamOf(...chunks)), ["https://a/1.zip", "https://a/é.zip"]);
});

Deno.test("binary content is refused with a one-line error", async () => {
  await assert.rejects(
    entries(streamOf("https://a/1.zip\n", new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x00]))),
    (error) => error instanceof UsageError && /test list is not a text file/.test(error.message),
  );
  await assert.rejects(
    entries(streamOf(new Uint8Array([0xff, 0xfe, 0x41]))),
    (error) => error instanceof UsageError,
  );
});

Deno.test("only absolute http(s) URLs are sendable", () => {
  assert.equal(invalidUrlReason("https://a/1.zip"), null);
  assert.equal(invalidUrlReason("http://a/1.zip"), null);
  assert.equal(invalidUrlReason("a/1.zip"), "not an absolute URL");
  assert.match(invalidUrlReason("ftp://a/1.zip")!, /unsupported scheme "ftp"/);
});
