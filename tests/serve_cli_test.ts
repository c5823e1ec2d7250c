import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { parquetMetadata } from "hyparquet";
import { runCli, spawnCli } from "./support/cli.ts";
import { referenceEtag, sampleBytes } from "./support/etag.ts";
import { LineReader } from "./support/lines.ts";
import { answerOf, filesUnder, startTestSource } from "./support/local_worker.ts";

const MIB = 1024 * 1024;
const TOKEN = "cli-serve-token";

/** A `serve` subprocess, started and listening. */
interface ServeProcess {
  child: Deno.ChildProcess;
  url: string;
  stdout: LineReader;
  stderr: LineReader;
}

async function startServe(store: string, extra: string[] = []): Promise<ServeProcess> {
  const child = spawnCli(["serve", "--store", store, "--port", "0", ...extra], {
    env: { D4C_INGESTOR_AUTH_TOKEN: TOKEN },
  });
  const stdout = new LineReader(child.stdout);
  const stderr = new LineReader(child.stderr);
  const [, url] = await stdout.waitFor(/^listening on (http:\/\/127\.0\.0\.1:\d+\/) /);
  return { child, url, stdout, stderr };
}

async function stopServe(serve: ServeProcess): Promise<{ code: number; stderr: string }> {
  serve.child.kill("SIGTERM");
  const [{ code }] = await Promise.all([serve.child.status, serve.stdout.rest()]);
  await serve.stderr.rest();
  return { code, stderr: serve.stderr.seen.join("\n") };
}

Deno.test("serve as a CLI: prints its URL, and on SIGTERM answers the request in flight, then exits 0", async () => {
  const root = await Deno.makeTempDir({ prefix: "d4c-serve-cli-" });
  const store = join(root, "store");
  const bytes = sampleBytes(2 * MIB);
  const arrived = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const source = startTestSource(async () => {
    arrived.resolve();
    await release.promise;
    return new Response(bytes);
  });
  const serve = await startServe(store, ["--bucket", "nas"]);
  try {
    assert.match(serve.stdout.seen[0], new RegExp(`store ${store}, bucket nas\\)$`));
    const pending = fetch(serve.url, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ download_url: `${source.url}/slow.bin`, user_agent: "ua" }),
    });
    await arrived.promise;
    serve.child.kill("SIGTERM");
    await serve.stderr.waitFor(/^SIGTERM: stopping after 1 request\(s\) in flight/);
    release.resolve();
    const answer = await answerOf(await pending);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json!.bucket, "nas");
    assert.equal(answer.json!.etag, referenceEtag(bytes));
    const { code } = await serve.child.status;
    await serve.stderr.rest();
    assert.equal(code, 0);
    assert.ok(serve.stderr.seen.includes("stopped"), serve.stderr.seen.join("\n"));
    assert.ok(serve.stderr.seen.some((line) => / POST 200 http:\/\/.*\/slow\.bin$/.test(line)));
    assert.deepEqual(await Deno.readFile(join(store, "slow.bin")), bytes);
    assert.deepEqual(await filesUnder(store), ["slow.bin"]);
  } finally {
    release.resolve();
    await source.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve as a CLI: the signal sent again aborts the transfers in flight and removes their temporary files", async () => {
  const root = await Deno.makeTempDir({ prefix: "d4c-serve-cli-" });
  const store = join(root, "store");
  const release = Promise.withResolvers<void>();
  const source = startTestSource(() => {
    // Headers and a first part now, the rest never: the download stays in flight.
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(sampleBytes(MIB));
      },
      pull: () => release.promise,
    });
    return new Response(body, { headers: { "Content-Length": String(8 * MIB) } });
  });
  const serve = await startServe(store);
  const watcher = Deno.watchFs(store);
  try {
    const pending = fetch(serve.url, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ download_url: `${source.url}/never-ends.bin`, user_agent: "ua" }),
    }).then((response) => response.body?.cancel(), () => "connection closed");
    for await (const event of watcher) {
      if (event.paths.some((path) => path.includes("/.d4c-partial-"))) break;
    }
    serve.child.kill("SIGTERM");
    await serve.stderr.waitFor(/^SIGTERM: stopping after 1 request\(s\) in flight/);
    serve.child.kill("SIGTERM");
    const { code } = await serve.child.status;
    await Promise.all([serve.stdout.rest(), serve.stderr.rest()]);
    assert.equal(code, 143);
    assert.ok(serve.stderr.seen.includes("SIGTERM: aborting 1 request(s) in flight"));
    assert.equal(await pending, "connection closed");
    assert.deepEqual(await filesUnder(store), []);
  } finally {
    watcher.close();
    release.resolve();
    await source.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve's flags: a token and a store are required, ingest's options are not", async () => {
  const root = await Deno.makeTempDir({ prefix: "d4c-serve-cli-" });
  try {
    const noToken = await runCli(["serve", "--store", root], {
      env: { D4C_INGESTOR_AUTH_TOKEN: "" },
    });
    assert.equal(noToken.code, 2);
    assert.equal(
      noToken.stderr,
      "d4c-http-ingestor: no token for clients: pass --auth-token or set D4C_INGESTOR_AUTH_TOKEN\n",
    );
    const noStore = await runCli(["serve", "--auth-token", "t"]);
    assert.equal(noStore.code, 2);
    assert.equal(
      noStore.stderr,
      "d4c-http-ingestor: required option '--store <dir>' not specified\n",
    );
    const file = join(root, "a-file");
    await Deno.writeTextFile(file, "");
    const storeIsFile = await runCli(["serve", "--store", file, "--auth-token", "t"]);
    assert.equal(storeIsFile.code, 2);
    assert.match(storeIsFile.stderr, /^d4c-http-ingestor: --store .*a-file: .+\n$/);
    const badPort = await runCli(["serve", "--store", root, "--auth-token", "t", "--port", "x"]);
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /^d4c-http-ingestor: option '--port <n>' argument 'x' is invalid/);

    const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = String((busy.addr as Deno.NetAddr).port);
      const inUse = await runCli(["serve", "--store", root, "--auth-token", "t", "--port", port]);
      assert.equal(inUse.code, 2);
      assert.match(
        inUse.stderr,
        new RegExp(`^d4c-http-ingestor: cannot listen on 127\\.0\\.0\\.1:${port}: .+\\n$`),
      );
    } finally {
      busy.close();
    }

    // The root command is still the ingest, with its own required options.
    const ingest = await runCli(["--dataset-id", "x"]);
    assert.equal(ingest.code, 2);
    assert.equal(
      ingest.stderr,
      "d4c-http-ingestor: required option '--urls <file>' not specified\n",
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("--help lists serve, and serve --help lists its flags", async () => {
  const root = await runCli(["--help"]);
  assert.equal(root.code, 0);
  assert.match(root.stdout, /--urls <file>/);
  assert.match(root.stdout, /Commands:[\s\S]*\n\s+serve \[options\]\s+run a local worker/);
  const serve = await runCli(["serve", "--help"]);
  assert.equal(serve.code, 0);
  assert.match(serve.stdout, /^Usage: d4c-http-ingestor serve \[options\]/);
  for (const flag of ["--store <dir>", "--host <host>", "--port <n>", "--bucket <name>"]) {
    assert.ok(serve.stdout.includes(flag), flag);
  }
  assert.match(
    serve.stdout,
    /--auth-token <token>\s+bearer token clients must send \(env:\s+D4C_INGESTOR_AUTH_TOKEN\)/,
  );
  assert.doesNotMatch(serve.stdout, /--urls/);
});

interface Row {
  url: string;
  status: string;
  http_status: number | null;
  etag: string | null;
  error: string | null;
  multipart_part_size: number | null;
  multipart_number_parts: number | null;
}

Deno.test("the ingest CLI end to end against serve: objects, ETags, failures and the Parquet upload", async () => {
  const root = await Deno.makeTempDir({ prefix: "d4c-serve-e2e-" });
  const store = join(root, "store");
  const files: Record<string, Uint8Array<ArrayBuffer>> = {
    "/data/empty.bin": new Uint8Array(0),
    "/data/one.txt": new TextEncoder().encode("x"),
    "/data/sub/part.tif": sampleBytes(5 * MIB + 1, 2),
    "/data/other/big.tif": sampleBytes(12 * MIB + 3, 3),
  };
  const source = startTestSource((_request, path) => {
    const bytes = files[path];
    return bytes === undefined ? new Response("gone", { status: 404 }) : new Response(bytes);
  });
  const serve = await startServe(store);
  try {
    const missing = `${source.url}/data/missing.zip`;
    const urls = [...Object.keys(files).map((path) => source.url + path), missing];
    const list = join(root, "urls.txt");
    await Deno.writeTextFile(list, urls.join("\n") + "\n");
    const db = join(root, "e2e.sqlite");
    const args = [
      ...["--urls", list, "--dataset-id", "e2e", "--worker-url", serve.url, "--db", db],
      ...["--out", join(root, "manifest"), "--key-prefix", "archive/e2e/", "--max-retries", "0"],
    ];

    const wrongToken = await runCli(args, { env: { D4C_INGESTOR_AUTH_TOKEN: "wrong" } });
    assert.equal(wrongToken.code, 2);
    assert.equal(wrongToken.stderr, "d4c-http-ingestor: the worker rejected the token (401)\n");

    const run = await runCli(args, { env: { D4C_INGESTOR_AUTH_TOKEN: TOKEN } });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, /this run: 4 success, 1 failed/);
    assert.match(run.stdout, /parquet upload: ok/);

    const sqlite = new DatabaseSync(db, { readOnly: true });
    const rows = sqlite.prepare("SELECT * FROM downloads").all() as unknown as Row[];
    sqlite.close();
    assert.equal(rows.length, urls.length);
    for (const [path, bytes] of Object.entries(files)) {
      const row = rows.find((r) => r.url === source.url + path)!;
      const name = path.split("/").at(-1)!;
      assert.deepEqual({ ...row }, {
        ...row,
        status: "success",
        http_status: 200,
        etag: referenceEtag(bytes),
        error: null,
        multipart_part_size: 5242880,
        multipart_number_parts: Math.max(1, Math.ceil(bytes.length / (5 * MIB))),
      });
      assert.deepEqual(await Deno.readFile(join(store, "archive/e2e", name)), bytes);
    }
    const failed = rows.find((r) => r.url === missing)!;
    assert.deepEqual(
      [failed.status, failed.http_status, failed.error],
      ["failed", 502, "Source returned HTTP 404"],
    );

    const local = await Deno.readFile(join(root, "manifest.parquet"));
    const uploaded = await Deno.readFile(join(store, "archive/e2e/manifest.parquet"));
    assert.deepEqual(uploaded, local);
    assert.equal(Number(parquetMetadata(uploaded.buffer).num_rows), urls.length);
    assert.deepEqual(await filesUnder(store), [
      "archive/e2e/big.tif",
      "archive/e2e/empty.bin",
      "archive/e2e/manifest.parquet",
      "archive/e2e/one.txt",
      "archive/e2e/part.tif",
    ]);
  } finally {
    const stopped = await stopServe(serve);
    assert.equal(stopped.code, 0, stopped.stderr);
    await source.close();
    await Deno.remove(root, { recursive: true });
  }
});
