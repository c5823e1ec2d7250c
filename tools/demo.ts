/**
 * `deno task demo [dir]`: the whole tool on this machine, with no network and no configuration.
 * Starts a loopback source server with generated sample files, a local worker (`serve`, run as the
 * real CLI) on a fresh store with a generated token, then the real ingest with its progress
 * display; prints where the results are and stops everything it started. Results stay in `dir`
 * (default: a new temporary directory). Exits 0 when the run went as the demo expects.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { join, resolve } from "node:path";

const MAIN = resolve(new URL("../main.ts", import.meta.url).pathname);
const MIB = 1024 * 1024;
const DATASET_ID = "demo-dataset";
const KEY_PREFIX = "demo/archive";
const OUT_NAME = "demo";

/** A file the source server makes up on the fly. */
interface SampleFile {
  path: string;
  size: number;
  contentType: string;
}

const SAMPLES: SampleFile[] = [
  { path: "/opendata/ortho/tile-0001.tif", size: 12 * MIB + 345, contentType: "image/tiff" },
  { path: "/opendata/ortho/tile-0002.tif", size: 5 * MIB + 1, contentType: "image/tiff" },
  { path: "/opendata/ortho/tile-0003.tif", size: 5 * MIB, contentType: "image/tiff" },
  { path: "/opendata/census-2021.csv", size: 180_000, contentType: "text/csv" },
  { path: "/opendata/v2/boundaries.zip", size: 2 * MIB + 17, contentType: "application/zip" },
  { path: "/opendata/README.txt", size: 1_200, contentType: "text/plain" },
];
/** Redirects to a sample, as a moved file would: the worker follows it. */
const REDIRECTS: Record<string, string> = {
  "/opendata/latest/boundaries-latest.zip": "/opendata/v2/boundaries.zip",
};
/** Answers 404, so the run shows how a failure is recorded. */
const MISSING = "/opendata/retired-dataset.zip";

/** Deterministic bytes for `size` and `seed`, made a chunk at a time (never held whole). */
function sampleStream(size: number, seed: number): ReadableStream<Uint8Array> {
  let state = seed || 1;
  let left = size;
  return new ReadableStream({
    pull(controller) {
      if (left === 0) {
        controller.close();
        return;
      }
      const chunk = new Uint8Array(Math.min(64 * 1024, left));
      for (let i = 0; i < chunk.length; i++) {
        // xorshift32: cheap, reproducible, incompressible enough for a demo.
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        chunk[i] = state & 0xff;
      }
      left -= chunk.length;
      controller.enqueue(chunk);
    },
  });
}

function startSourceServer(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const { pathname } = new URL(request.url);
    const target = REDIRECTS[pathname];
    if (target !== undefined) return Response.redirect(new URL(target, request.url), 302);
    const index = SAMPLES.findIndex((sample) => sample.path === pathname);
    if (index === -1) return new Response("Not Found", { status: 404 });
    const sample = SAMPLES[index];
    return new Response(sampleStream(sample.size, index + 1), {
      headers: { "Content-Type": sample.contentType, "Content-Length": String(sample.size) },
    });
  });
}

/** Starts `d4c-http-ingestor serve` and resolves to its URL once it listens. */
async function startServe(
  store: string,
  token: string,
): Promise<{ child: Deno.ChildProcess; url: string; log: Promise<string> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "serve", "--store", store, "--port", "0", "--bucket", "demo"],
    env: { D4C_INGESTOR_AUTH_TOKEN: token },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const log = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (;;) {
    const match = /listening on (\S+)/.exec(text);
    if (match !== null) {
      void drain(lines);
      return { child, url: match[1], log };
    }
    const { done, value } = await lines.read();
    if (done) throw new Error(`serve stopped before listening:\n${await log}`);
    text += value;
  }
}

async function drain(reader: ReadableStreamDefaultReader<string>): Promise<void> {
  while (!(await reader.read()).done) { /* the listening line was all we needed */ }
}

interface Row {
  url: string;
  status: string;
  error: string | null;
  etag: string | null;
}

function readRows(db: string): Row[] {
  const sqlite = new DatabaseSync(db, { readOnly: true });
  try {
    return sqlite.prepare("SELECT url, status, error, etag FROM downloads ORDER BY url")
      .all() as unknown as Row[];
  } finally {
    sqlite.close();
  }
}

function objectName(url: string): string {
  return new URL(url).pathname.split("/").at(-1)!;
}

/** What went differently from what the demo expects, or an empty list. */
async function check(
  rows: Row[],
  ingestCode: number,
  urls: string[],
  missingUrl: string,
  store: string,
  parquet: string,
): Promise<string[]> {
  const problems: string[] = [];
  if (ingestCode !== 1) problems.push(`ingest exited ${ingestCode}, expected 1 (one URL fails)`);
  for (const url of urls) {
    const row = rows.find((r) => r.url === url);
    if (url === missingUrl) {
      if (row?.status !== "failed" || row.error !== "Source returned HTTP 404") {
        problems.push(
          `${url}: expected failed with "Source returned HTTP 404", got ${row?.status}`,
        );
      }
      continue;
    }
    if (row?.status !== "success") {
      problems.push(`${url}: expected success, got ${row?.status} ${row?.error ?? ""}`);
      continue;
    }
    const path = new URL(url).pathname;
    const expected = SAMPLES.find((s) => s.path === (REDIRECTS[path] ?? path))!.size;
    const stat = await Deno.stat(join(store, KEY_PREFIX, objectName(url))).catch(() => null);
    if (stat?.size !== expected) {
      problems.push(`${url}: stored object has ${stat?.size ?? "no"} bytes, expected ${expected}`);
    }
  }
  for (const file of [parquet, join(store, KEY_PREFIX, `${OUT_NAME}.parquet`)]) {
    if (await Deno.stat(file).catch(() => null) === null) problems.push(`${file} is missing`);
  }
  return problems;
}

async function listStore(root: string, dir = root): Promise<string[]> {
  const lines: string[] = [];
  const entries = await Array.fromAsync(Deno.readDir(dir));
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) lines.push(...await listStore(root, path));
    else {
      const { size } = await Deno.stat(path);
      lines.push(`    ${String(size).padStart(10)} B  ${path.slice(root.length + 1)}`);
    }
  }
  return lines;
}

async function main(args: string[]): Promise<number> {
  const dir = args[0] === undefined
    ? await Deno.makeTempDir({ prefix: "d4c-demo-" })
    : resolve(args[0]);
  await Deno.mkdir(dir, { recursive: true });
  const store = join(dir, "store");
  const db = join(dir, `${OUT_NAME}.sqlite`);
  const out = join(dir, OUT_NAME);
  const urlList = join(dir, "urls.txt");
  const token = crypto.randomUUID();

  const source = startSourceServer();
  const sourceUrl = `http://127.0.0.1:${source.addr.port}`;
  let serve: Awaited<ReturnType<typeof startServe>> | null = null;
  try {
    serve = await startServe(store, token);
    const urls = [
      ...SAMPLES.filter((s) => !Object.values(REDIRECTS).includes(s.path)).map((s) => s.path),
      ...Object.keys(REDIRECTS),
      MISSING,
    ].map((path) => sourceUrl + path);
    const missingUrl = sourceUrl + MISSING;
    await Deno.writeTextFile(urlList, urls.join("\n") + "\n");

    console.log(`d4c-http-ingestor demo: everything runs on this machine, over loopback.
  source server  ${sourceUrl}/ (generated files, up to 12 MiB; one URL answers 404)
  local worker   ${serve.url} (d4c-http-ingestor serve --store ${store})
  URL list       ${urlList} (${urls.length} URLs)

running the ingest:
  d4c-http-ingestor --urls ${urlList} --dataset-id ${DATASET_ID} \\
    --worker-url ${serve.url} --db ${db} --out ${out} --key-prefix ${KEY_PREFIX}
`);
    const ingest = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        ...["--urls", urlList, "--dataset-id", DATASET_ID, "--worker-url", serve.url],
        ...["--db", db, "--out", out, "--key-prefix", KEY_PREFIX, "--log-interval", "1"],
      ],
      env: { D4C_INGESTOR_AUTH_TOKEN: token },
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).output();

    const rows = readRows(db);
    const problems = await check(rows, ingest.code, urls, missingUrl, store, `${out}.parquet`);
    console.log();
    if (problems.length === 0) {
      console.log(
        `The ingest exited 1, as expected: ${missingUrl} answers 404, so the worker answered ` +
          `"Source returned HTTP 404" and the URL is recorded as failed; ` +
          `every other URL was archived.`,
      );
    } else {
      console.log(`The demo did not go as expected:\n  ${problems.join("\n  ")}`);
      console.log(`local worker's log:\n${await stopServe(serve)}`);
      serve = null;
    }
    console.log(`
Results:
  SQLite database   ${db}
                    (sqlite3 ${db} "select status, url, etag from downloads")
  Parquet manifest  ${out}.parquet
                    (uploaded through the worker too: ${
      join(store, KEY_PREFIX, `${OUT_NAME}.parquet`)
    })
  stored objects    ${store}
${(await listStore(store)).join("\n")}

Everything is in ${dir}; remove it with: rm -r ${dir}`);
    return problems.length === 0 ? 0 : 1;
  } finally {
    if (serve !== null) await stopServe(serve);
    await source.shutdown();
  }
}

/** Stops `serve` the way an operator would (SIGTERM) and returns what it logged. */
async function stopServe(serve: Awaited<ReturnType<typeof startServe>>): Promise<string> {
  serve.child.kill("SIGTERM");
  await serve.child.status;
  return await serve.log;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
