import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";
import { type FakeAnswer, startFakeWorker, successBody } from "./support/fake_worker.ts";
import { fixture, readManifest, rowsByUrl } from "./support/fixture.ts";

const url = (name: string) => `https://source.example.org/${name}.zip`;
const withFields = (name: string, fields: Record<string, unknown>): FakeAnswer => ({
  body: { ...successBody(url(name), ""), ...fields },
});

/** Each answer, and the error it must be recorded with (`null`: a success). */
const CASES: Record<string, [FakeAnswer, RegExp | null]> = {
  "ok-false": [{ body: { ok: false, error: "could not fetch" } }, /^could not fetch$/],
  "ok-false-bare": [{ body: { ok: false } }, /^HTTP 200: worker answered without ok:true$/],
  "ok-string": [withFields("ok-string", { ok: "true" }), /without ok:true/],
  "not-json": [{ body: "<html><body>All good!</body></html>" }, /not a JSON object: All good!$/],
  "empty": [
    { body: "" },
    /^worker answered 200 with a body that is not a JSON object: empty body$/,
  ],
  "array": [{ body: [{ ok: true }] }, /^worker answered 200 with a body that is not a JSON object/],
  "number": [{ body: 42 }, /not a JSON object: 42$/],
  "null": [{ body: "null" }, /not a JSON object: null$/],
  "size-string": [
    withFields("size-string", { size_bytes: "12" }),
    /"size_bytes" is not an integer/,
  ],
  "parts-fraction": [
    withFields("parts-fraction", { multipart_number_parts: 1.5 }),
    /^worker answered 200 with a malformed body: "multipart_number_parts" is not an integer$/,
  ],
  "part-size-huge": [
    withFields("part-size-huge", { multipart_part_size: 5 * 2 ** 30 }),
    /^worker answered 200 with a malformed body: "multipart_part_size" is not a 32-bit count$/,
  ],
  "etag-number": [withFields("etag-number", { etag: 5 }), /"etag" is not a string/],
  "key-object": [withFields("key-object", { key: {} }), /"key" is not a string/],
  "started-number": [withFields("started-number", { started_at: 5 }), /"started_at" is not/],
  "huge-text": [
    { body: "x".repeat(5 * 1024 * 1024) },
    /^worker answered 200 with a body over 64 KiB: x{200}…$/,
  ],
  "huge-json": [
    withFields("huge-json", { padding: "y".repeat(100 * 1024) }),
    /^worker answered 200 with a body over 64 KiB: \{"ok":true/,
  ],
  "huge-error-page": [
    { status: 500, body: `<p>${"z".repeat(200_000)}</p>` },
    /^HTTP 500: z{200}…$/,
  ],
  "etag-quoted": [withFields("etag-quoted", { etag: '"0123abcd-2"' }), null],
  "etag-entities": [withFields("etag-entities", { etag: "&quot;4567ef01-3&quot;" }), null],
  "etag-null": [withFields("etag-null", { etag: null, size_bytes: null }), null],
};

Deno.test("malformed worker answers become failures with readable messages", async (t) => {
  const worker = startFakeWorker({
    script: (downloadUrl) => CASES[new URL(downloadUrl).pathname.slice(1, -4)][0],
  });
  await using files = await fixture(Object.keys(CASES).map(url));
  try {
    const result = await runCli(files.args(worker, ["--max-retries", "0"]));
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stderr, "", "nothing but the summary is printed");
    const rows = rowsByUrl(files.db);
    for (const [name, [, error]] of Object.entries(CASES)) {
      await t.step(name, () => {
        const row = rows.get(url(name))!;
        if (error === null) {
          assert.equal(row.status, "success");
          assert.equal(row.error, null);
        } else {
          assert.equal(row.status, "failed");
          assert.match(row.error ?? "", error);
          assert.ok(row.error!.length < 300, `a short message: ${row.error!.length}`);
        }
      });
    }
    assert.equal(rows.get(url("etag-quoted"))?.etag, "0123abcd-2");
    assert.equal(rows.get(url("etag-entities"))?.etag, "4567ef01-3");
    assert.equal(rows.get(url("etag-null"))?.etag, null);
    assert.equal((await readManifest(`${files.out}.parquet`)).numRows, rows.size);
  } finally {
    await worker.close();
  }
});

Deno.test("a 2xx that is not the worker's success is recorded at once, not retried", async () => {
  const names = ["not-json", "ok-false", "size-string"];
  const worker = startFakeWorker({
    script: (downloadUrl) => CASES[new URL(downloadUrl).pathname.slice(1, -4)][0],
  });
  await using files = await fixture(names.map(url));
  try {
    const result = await runCli(files.args(worker, ["--max-retries", "2"]));
    assert.equal(result.code, 1, result.stderr);
    assert.deepEqual(worker.posts().sort(), names.map(url).sort());
  } finally {
    await worker.close();
  }
});
