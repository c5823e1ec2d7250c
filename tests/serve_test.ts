import assert from "node:assert/strict";
import { join } from "node:path";
import { referenceEtag, sampleBytes } from "./support/etag.ts";
import {
  answerOf,
  filesUnder,
  startTestSource,
  startTestWorker,
  type TestSource,
  type TestWorker,
} from "./support/local_worker.ts";

const MIB = 1024 * 1024;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Runs `body` with a fresh local worker and a source serving `files` (path → bytes). */
async function withWorker(
  files: Record<string, Uint8Array<ArrayBuffer>>,
  body: (worker: TestWorker, source: TestSource) => Promise<void>,
  handler?: (
    request: Request,
    path: string,
  ) => Response | undefined | Promise<Response | undefined>,
): Promise<void> {
  const worker = await startTestWorker();
  const source = startTestSource(async (request, path) => {
    const scripted = await handler?.(request, path);
    if (scripted !== undefined) return scripted;
    const bytes = files[path];
    if (bytes === undefined) return new Response("no such file", { status: 404 });
    return new Response(bytes, { headers: { "Content-Type": "application/zip" } });
  });
  try {
    await body(worker, source);
  } finally {
    await source.close();
    await worker.close();
  }
}

function download(url: string, keyPrefix = "archive/test") {
  return { download_url: url, user_agent: "Data for Canada - test", key_prefix: keyPrefix };
}

Deno.test("a missing or wrong token is answered 401 Unauthorized before anything else", async () => {
  await withWorker({ "/a.zip": sampleBytes(10) }, async (worker, source) => {
    const attempts: [string, Record<string, string>][] = [
      ["POST", {}],
      ["POST", { Authorization: "Bearer wrong" }],
      ["POST", { Authorization: `Bearer ${worker.token}x` }],
      ["POST", { Authorization: worker.token }],
      ["PUT", { "X-S3-Key": "k" }],
      ["GET", {}],
      ["DELETE", { Authorization: "Bearer nope" }],
    ];
    for (const [method, headers] of attempts) {
      const response = await fetch(worker.url, {
        method,
        headers: { "Content-Type": "application/json", ...headers },
        body: method === "GET" ? null : JSON.stringify(download(`${source.url}/a.zip`)),
      });
      const answer = await answerOf(response);
      assert.equal(answer.status, 401, `${method} ${JSON.stringify(headers)}`);
      assert.equal(answer.text, "Unauthorized");
    }
    assert.equal(source.requests.length, 0);
    assert.deepEqual(await filesUnder(worker.store), []);
  });
});

Deno.test("POST validation: 415, 400 invalid JSON, 400 missing fields, 400 invalid download_url", async () => {
  await withWorker({}, async (worker, source) => {
    const plain = await worker.post("{}", { "Content-Type": "text/plain" });
    assert.deepEqual([plain.status, plain.text], [415, "Content-Type must be application/json"]);
    const noType = await fetch(worker.url, {
      method: "POST",
      headers: { Authorization: `Bearer ${worker.token}` },
    });
    assert.equal((await answerOf(noType)).status, 415);
    const charset = await worker.post("nope", {
      "Content-Type": "application/json; charset=utf-8",
    });
    assert.deepEqual([charset.status, charset.text], [400, "Invalid JSON body"]);

    for (const body of ["{not json", "", '{"download_url":']) {
      const answer = await worker.post(body);
      assert.deepEqual([answer.status, answer.text], [400, "Invalid JSON body"], body);
    }
    const required = { error: "'download_url' and 'user_agent' are required." };
    for (
      const body of [
        {},
        { download_url: `${source.url}/a.zip` },
        { user_agent: "ua" },
        { download_url: "", user_agent: "ua" },
        { download_url: `${source.url}/a.zip`, user_agent: "" },
        { download_url: 42, user_agent: "ua" },
        [],
        null,
      ]
    ) {
      const answer = await worker.post(body);
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.deepEqual(answer.json, required);
    }
    for (
      const url of ["ftp://example.org/a.zip", "not a url", "/relative/a.zip", "file:///etc/passwd"]
    ) {
      const answer = await worker.post({ download_url: url, user_agent: "ua" });
      assert.equal(answer.status, 400, url);
      assert.deepEqual(answer.json, { error: "Invalid download_url" });
    }
    const tooBig = await worker.post({
      ...download(`${source.url}/a.zip`),
      pad: "x".repeat(70_000),
    });
    assert.equal(tooBig.status, 413);
    assert.equal(source.requests.length, 0);
    assert.deepEqual(await filesUnder(worker.store), []);
  });
});

Deno.test("a source answering non-2xx is 502 'Source returned HTTP <status>'; nothing is stored", async () => {
  await withWorker({}, async (worker, source) => {
    for (const status of [404, 403, 500, 503]) {
      const answer = await worker.post(download(`${source.url}/status-${status}.zip`));
      assert.equal(answer.status, 502);
      assert.deepEqual(answer.json, { error: `Source returned HTTP ${status}` });
    }
    assert.deepEqual(await filesUnder(worker.store), []);
  }, (_request, path) => {
    const status = /status-(\d+)/.exec(path);
    return status === null ? undefined : new Response("nope", { status: Number(status[1]) });
  });
});

Deno.test("a source that cannot be reached is 502 'Download failed: <message>'", async () => {
  await withWorker({}, async (worker) => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closedPort = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const answer = await worker.post(download(`http://127.0.0.1:${closedPort}/a.zip`));
    assert.equal(answer.status, 502);
    assert.match(String(answer.json?.error), /^Download failed: \S/);
    assert.deepEqual(await filesUnder(worker.store), []);
  });
});

Deno.test("other methods are answered 405", async () => {
  await withWorker({}, async (worker) => {
    for (const method of ["GET", "DELETE", "PATCH", "HEAD"]) {
      const response = await fetch(worker.url, {
        method,
        headers: { Authorization: `Bearer ${worker.token}` },
      });
      const answer = await answerOf(response);
      assert.equal(answer.status, 405, method);
      if (method !== "HEAD") assert.equal(answer.text, "Method Not Allowed. Use POST or PUT.");
    }
  });
});

Deno.test("PUT validation: no X-S3-Key and no body are 400 with the contract's JSON", async () => {
  await withWorker({}, async (worker) => {
    const keyRequired = { error: "'X-S3-Key' header is required." };
    // The ingest's preflight: a PUT without key and with an empty body must get the key error.
    const preflight = await worker.put(null, "");
    assert.deepEqual([preflight.status, preflight.json], [400, keyRequired]);
    assert.deepEqual((await worker.put(null, "data")).json, keyRequired);
    assert.deepEqual((await worker.put("", "data")).json, keyRequired);
    const bodyRequired = { error: "Request body is required." };
    for (const body of [null, "", new Blob([]).stream()]) {
      const answer = await worker.put("a/empty.bin", body);
      assert.equal(answer.status, 400);
      assert.deepEqual(answer.json, bodyRequired);
    }
    assert.deepEqual(await filesUnder(worker.store), []);
  });
});

Deno.test("POST stores the source's bytes under the contract's key with the S3 multipart ETag", async () => {
  const sizes = [0, 1, 5 * MIB, 5 * MIB + 1, 12 * MIB + 4321];
  const files = Object.fromEntries(
    sizes.map((size) => [`/dir/f${size}.bin`, sampleBytes(size, size + 1)]),
  );
  await withWorker(files, async (worker, source) => {
    for (const size of sizes) {
      const url = `${source.url}/dir/f${size}.bin`;
      const answer = await worker.post(download(url, "archive/test//"));
      assert.equal(answer.status, 200, answer.text);
      const json = answer.json!;
      const key = `archive/test/f${size}.bin`;
      assert.deepEqual(Object.keys(json), [
        "ok",
        "bucket",
        "key",
        "content_type",
        "size_bytes",
        "etag",
        "multipart_part_size",
        "multipart_number_parts",
        "started_at",
        "finished_at",
      ]);
      assert.equal(json.ok, true);
      assert.equal(json.bucket, "test-bucket");
      assert.equal(json.key, key);
      assert.equal(json.content_type, "application/zip");
      assert.equal(json.size_bytes, size);
      const expected = files[`/dir/f${size}.bin`];
      assert.equal(json.etag, referenceEtag(expected), `${size} B`);
      assert.equal(json.multipart_part_size, 5242880);
      assert.equal(json.multipart_number_parts, Math.max(1, Math.ceil(size / (5 * MIB))));
      assert.match(String(json.started_at), ISO_MS);
      assert.match(String(json.finished_at), ISO_MS);
      assert.ok(String(json.started_at) <= String(json.finished_at));
      assert.deepEqual(await Deno.readFile(join(worker.store, key)), expected);
    }
    for (const request of source.requests) {
      assert.equal(request.headers.get("User-Agent"), "Data for Canada - test");
      assert.equal(request.headers.get("Accept-Encoding"), "identity");
    }
    assert.deepEqual(
      await filesUnder(worker.store),
      sizes.map((size) => `archive/test/f${size}.bin`).sort(),
    );
  });
});

Deno.test("size_bytes is left out when the source sends no Content-Length", async () => {
  const bytes = sampleBytes(100_000);
  await withWorker({}, async (worker, source) => {
    const answer = await worker.post(download(`${source.url}/chunked.bin`, ""));
    assert.equal(answer.status, 200, answer.text);
    assert.equal("size_bytes" in answer.json!, false);
    assert.equal(answer.json!.key, "chunked.bin");
    assert.equal(answer.json!.content_type, "application/octet-stream");
    assert.equal(answer.json!.etag, referenceEtag(bytes));
    assert.deepEqual(await Deno.readFile(join(worker.store, "chunked.bin")), bytes);
  }, (_request, path) => {
    if (path !== "/chunked.bin") return undefined;
    // A stream of unknown length goes out chunked, without Content-Length.
    return new Response(new Blob([bytes]).stream().pipeThrough(new TransformStream()));
  });
});

Deno.test("redirects are followed; the key comes from download_url, percent-encoding kept", async () => {
  const bytes = sampleBytes(3000);
  await withWorker({ "/real/target.bin": bytes }, async (worker, source) => {
    const answer = await worker.post(download(`${source.url}/moved/a%20b.tif?x=1`));
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json!.key, "archive/test/a%20b.tif");
    assert.deepEqual(await Deno.readFile(join(worker.store, "archive/test/a%20b.tif")), bytes);
    assert.deepEqual(source.requests.map((r) => r.path), ["/moved/a%20b.tif", "/real/target.bin"]);
    assert.equal(source.requests[1].headers.get("User-Agent"), "Data for Canada - test");

    const unnamed = await worker.post(download(`${source.url}/`));
    assert.equal(unnamed.json!.key, "archive/test/unnamed");
  }, (request, path) => {
    if (path.startsWith("/moved/")) {
      return Response.redirect(new URL("/real/target.bin", request.url), 302);
    }
    if (path === "/") return new Response("index");
    return undefined;
  });
});

Deno.test("a second POST for the same key replaces the object", async () => {
  let version = 0;
  await withWorker({}, async (worker, source) => {
    for (let i = 1; i <= 2; i++) {
      const answer = await worker.post(download(`${source.url}/same.txt`));
      assert.equal(answer.status, 200);
    }
    assert.equal(await Deno.readTextFile(join(worker.store, "archive/test/same.txt")), "version 2");
    assert.deepEqual(await filesUnder(worker.store), ["archive/test/same.txt"]);
  }, () => new Response(`version ${++version}`));
});

Deno.test("PUT stores the body at X-S3-Key and answers like POST", async () => {
  await withWorker({}, async (worker) => {
    const bytes = sampleBytes(6 * MIB, 9);
    const answer = await worker.put("manifests/run.parquet", bytes, {
      "Content-Type": "application/vnd.apache.parquet",
    });
    assert.equal(answer.status, 200, answer.text);
    const { started_at: startedAt, finished_at: finishedAt } = answer.json!;
    assert.deepEqual(answer.json, {
      ...answer.json,
      ok: true,
      bucket: "test-bucket",
      key: "manifests/run.parquet",
      content_type: "application/vnd.apache.parquet",
      size_bytes: bytes.length,
      etag: referenceEtag(bytes),
      multipart_part_size: 5242880,
      multipart_number_parts: 2,
    });
    assert.match(String(startedAt), ISO_MS);
    assert.match(String(finishedAt), ISO_MS);
    assert.deepEqual(await Deno.readFile(join(worker.store, "manifests/run.parquet")), bytes);

    const plain = await worker.put("one.bin", new Uint8Array([7]));
    assert.equal(plain.json!.content_type, "application/octet-stream");
    assert.equal(plain.json!.etag, referenceEtag(new Uint8Array([7])));
  });
});

Deno.test("keys or prefixes that would escape the store are 400 and write nothing", async () => {
  await withWorker({ "/f.bin": sampleBytes(10) }, async (worker, source) => {
    const prefixes = [
      "..",
      "../outside",
      "a/../../outside",
      "a/./b",
      "/etc",
      "//etc",
      "a\\..\\..\\outside",
      "C:/Windows",
      "a\u0000b",
    ];
    for (const prefix of prefixes) {
      const answer = await worker.post(download(`${source.url}/f.bin`, prefix));
      assert.equal(answer.status, 400, JSON.stringify(prefix));
      assert.match(String(answer.json?.error), /^Invalid object key/);
    }
    assert.equal(source.requests.length, 0, "nothing was downloaded");
    const keys = ["../x.bin", "../../x.bin", "a/../../x.bin", "/tmp/x.bin", "a\\b.bin", "dir/"];
    for (const key of keys) {
      const answer = await worker.put(key, "data");
      assert.equal(answer.status, 400, key);
      assert.match(String(answer.json?.error), /^Invalid object key/);
    }
    assert.deepEqual(await filesUnder(worker.store), []);
    assert.deepEqual(await filesUnder(worker.root), [], "nothing next to the store either");
  });
});

Deno.test("a source that drops the connection mid-body leaves no object and no temporary file", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const served = (async () => {
    for await (const connection of listener) {
      const buffer = new Uint8Array(4096);
      await connection.read(buffer);
      const head = "HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\n" +
        `Content-Length: ${12 * MIB}\r\nConnection: close\r\n\r\n`;
      await connection.write(new TextEncoder().encode(head));
      const part = sampleBytes(MIB);
      for (let i = 0; i < 6; i++) {
        let written = 0;
        while (written < part.length) written += await connection.write(part.subarray(written));
      }
      connection.close();
    }
  })();
  try {
    await withWorker({}, async (worker) => {
      const answer = await worker.post(download(`http://127.0.0.1:${port}/dropped.zip`));
      assert.equal(answer.status, 502);
      assert.match(String(answer.json?.error), /^Download failed: \S/);
      assert.deepEqual(await filesUnder(worker.store), []);
    });
  } finally {
    listener.close();
    await served.catch(() => {});
  }
});

Deno.test("concurrent POSTs download in parallel and each lands intact", async () => {
  const count = 6;
  const files = Object.fromEntries(
    Array.from({ length: count }, (_, i) => [`/c/${i}.bin`, sampleBytes(MIB + i * 1000, i + 1)]),
  );
  let waiting: (() => void)[] = [];
  await withWorker(files, async (worker, source) => {
    const answers = await Promise.all(
      Object.keys(files).map((path) => worker.post(download(source.url + path))),
    );
    for (const [i, answer] of answers.entries()) {
      assert.equal(answer.status, 200, answer.text);
      const bytes = files[`/c/${i}.bin`];
      assert.equal(answer.json!.etag, referenceEtag(bytes));
      assert.deepEqual(await Deno.readFile(join(worker.store, `archive/test/${i}.bin`)), bytes);
    }
    assert.equal(source.requests.length, count);
  }, async () => {
    // Hold every source answer until all are asked for: the worker had them all in flight.
    const all = Promise.withResolvers<void>();
    waiting.push(all.resolve);
    if (waiting.length === count) {
      for (const release of waiting) release();
      waiting = [];
    }
    await all.promise;
    return undefined;
  });
});
