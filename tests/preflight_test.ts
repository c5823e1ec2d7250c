import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";
import { startFakeWorker } from "./support/fake_worker.ts";
import {
  exists,
  fixture,
  lines,
  readManifest,
  rowsByUrl,
  snapshot,
  urlList,
} from "./support/fixture.ts";

/** A loopback port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

Deno.test("a rejected token stops the run before any POST, in one line, exit 2", async () => {
  const worker = startFakeWorker({ token: "the-right-token" });
  await using files = await fixture(urlList(5));
  try {
    const result = await runCli(files.args(worker, ["--auth-token", "a-wrong-token"]));
    assert.equal(result.code, 2);
    assert.equal(result.stderr, "d4c-http-ingestor: the worker rejected the token (401)\n");
    assert.equal(result.stdout, "");
    assert.deepEqual(worker.posts(), []);
    assert.deepEqual(worker.requests.map((r) => r.method), ["PUT"]);
    assert.equal(await exists(files.db), false, "no database is left behind");
  } finally {
    await worker.close();
  }
});

Deno.test("a rejected token leaves an existing database byte for byte", async () => {
  const worker = startFakeWorker({ token: "the-right-token" });
  await using files = await fixture(urlList(2));
  try {
    assert.equal((await runCli(files.args(worker))).code, 0);
    const before = await snapshot(files.dir);
    const result = await runCli(files.args(worker, ["--auth-token", "revoked"]));
    assert.equal(result.code, 2);
    assert.deepEqual(await snapshot(files.dir), before);
  } finally {
    await worker.close();
  }
});

Deno.test("a token check that meets a passing 503 is retried, then the run goes on", async () => {
  const worker = startFakeWorker({ unavailableChecks: 2 });
  await using files = await fixture(urlList(3));
  try {
    const result = await runCli(files.args(worker));
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(worker.requests.slice(0, 3).map((r) => r.method), ["PUT", "PUT", "PUT"]);
    assert.equal(worker.posts().length, 3);
  } finally {
    await worker.close();
  }
});

Deno.test("a token check still failing after --max-retries is one line and exit 2", async () => {
  const worker = startFakeWorker({ unavailableChecks: 10 });
  await using files = await fixture(urlList(3));
  try {
    const result = await runCli(files.args(worker, ["--max-retries", "2"]));
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr,
      `d4c-http-ingestor: ${worker.url} does not answer like an ingestor worker (preflight got HTTP 503)\n`,
    );
    assert.deepEqual(worker.requests.map((r) => r.method), ["PUT", "PUT", "PUT"]);
  } finally {
    await worker.close();
  }
});

Deno.test("an unreachable worker is one clear line and exit 2", async () => {
  await using files = await fixture(urlList(5));
  const port = closedPort();
  const args = files.args({ url: `http://127.0.0.1:${port}/`, token: "t" } as never);
  const result = await runCli(args);
  assert.equal(result.code, 2);
  assert.equal(lines(result.stderr).length, 1, result.stderr);
  assert.match(
    result.stderr,
    new RegExp(`^d4c-http-ingestor: cannot reach the worker at http://127\\.0\\.0\\.1:${port}/: `),
  );
  assert.equal(await exists(files.db), false);
});

Deno.test("a server that is not the worker is refused before any POST", async () => {
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    requests.push(request.method);
    return new Response("<html>hello</html>", { headers: { "Content-Type": "text/html" } });
  });
  await using files = await fixture(urlList(3));
  try {
    const args = files.args({ url: `http://127.0.0.1:${server.addr.port}/`, token: "t" } as never);
    const result = await runCli(args);
    assert.equal(result.code, 2);
    assert.equal(lines(result.stderr).length, 1, result.stderr);
    assert.match(
      result.stderr,
      /does not answer like an ingestor worker \(preflight got HTTP 200\)/,
    );
    assert.deepEqual(requests, ["PUT"]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a token revoked mid-run stops dispatching, records what was in flight, exit 2", async () => {
  const revokeAfter = 5;
  const concurrency = 4;
  const urls = urlList(200);
  const worker = startFakeWorker({ revokeTokenAfterPosts: revokeAfter });
  await using files = await fixture(urls);
  try {
    const result = await runCli(files.args(worker, ["--concurrency", String(concurrency)]));
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /the worker rejected the token \(401\) mid-run/);
    const posts = worker.posts();
    assert.ok(posts.length > revokeAfter, `${posts.length} POSTs`);
    assert.ok(posts.length <= revokeAfter + 2 * concurrency, `${posts.length} POSTs`);
    assert.equal(new Set(posts).size, posts.length, "a 401 is never retried");

    const rows = rowsByUrl(files.db);
    assert.deepEqual([...rows.keys()].sort(), [...posts].sort(), "every POST is recorded");
    for (const [i, url] of posts.entries()) {
      const row = rows.get(url)!;
      if (i < revokeAfter) assert.equal(row.status, "success", url);
      else {
        assert.equal(row.status, "failed", url);
        assert.equal(row.http_status, 401);
      }
    }
    const manifest = await readManifest(`${files.out}.parquet`);
    assert.equal(manifest.numRows, posts.length, "exported after the stop");
    assert.match(result.stdout, /this run: 5 success, \d+ failed, 0 skipped, \d+ not attempted/);
  } finally {
    await worker.close();
  }
});
