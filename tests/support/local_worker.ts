/**
 * A local worker (lib/local_worker.ts) served in-process on loopback over a fresh store, and a
 * scriptable loopback source server for it to download from.
 *
 * @module
 */

import { join } from "node:path";
import { createLocalWorker } from "../../lib/local_worker.ts";

/** A running in-process local worker. */
export interface TestWorker {
  url: string;
  token: string;
  /** The store directory. */
  store: string;
  /** The temporary directory holding the store, and nothing else. */
  root: string;
  /** Lines the worker logged. */
  log: string[];
  /** POSTs `body` (JSON-encoded unless a string) with the token and a JSON content type. */
  post(body: unknown, headers?: Record<string, string>): Promise<Answer>;
  /** PUTs `body` at `key` (no `X-S3-Key` when `null`) with the token. */
  put(key: string | null, body: BodyInit | null, headers?: Record<string, string>): Promise<Answer>;
  close(): Promise<void>;
}

/** A worker answer, its body read. */
export interface Answer {
  status: number;
  contentType: string | null;
  text: string;
  /** The body parsed as JSON, or `null` when it is not JSON. */
  json: Record<string, unknown> | null;
}

/** Reads `response` into an {@link Answer}. */
export async function answerOf(response: Response): Promise<Answer> {
  const text = await response.text();
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(text);
  } catch { /* plain text */ }
  return { status: response.status, contentType: response.headers.get("Content-Type"), text, json };
}

/** Starts a local worker on 127.0.0.1 at a free port, storing in a new temporary directory. */
export async function startTestWorker(): Promise<TestWorker> {
  const root = await Deno.makeTempDir({ prefix: "d4c-serve-test-" });
  const store = join(root, "store");
  await Deno.mkdir(store);
  const token = "serve-test-token";
  const log: string[] = [];
  const worker = createLocalWorker({
    store,
    authToken: token,
    bucket: "test-bucket",
    log: (line) => log.push(line),
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => worker.handle(request),
  );
  const url = `http://127.0.0.1:${server.addr.port}/`;
  return {
    url,
    token,
    store,
    root,
    log,
    post: async (body, headers = {}) =>
      await answerOf(
        await fetch(url, {
          method: "POST",
          headers: {
            Authorization: `Bearer ${token}`,
            "Content-Type": "application/json",
            ...headers,
          },
          body: typeof body === "string" ? body : JSON.stringify(body),
        }),
      ),
    put: async (key, body, headers = {}) =>
      await answerOf(
        await fetch(url, {
          method: "PUT",
          headers: {
            Authorization: `Bearer ${token}`,
            ...(key === null ? {} : { "X-S3-Key": key }),
            ...headers,
          },
          body,
        }),
      ),
    close: async () => {
      await server.shutdown();
      await Deno.remove(root, { recursive: true });
    },
  };
}

/** A request the source server received. */
export interface SourceRequest {
  path: string;
  headers: Headers;
}

/** A running source server. */
export interface TestSource {
  /** Base URL, without a trailing slash. */
  url: string;
  requests: SourceRequest[];
  close(): Promise<void>;
}

/** Starts a source server on 127.0.0.1 that records each request and answers with `handler`. */
export function startTestSource(
  handler: (request: Request, path: string) => Response | Promise<Response>,
): TestSource {
  const requests: SourceRequest[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => {
      const path = new URL(request.url).pathname;
      requests.push({ path, headers: request.headers });
      return handler(request, path);
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    close: () => server.shutdown(),
  };
}

/** Every file under `dir`, dot files included, as paths relative to it, sorted. */
export async function filesUnder(dir: string, prefix = ""): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(join(dir, prefix))) {
    const path = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory) files.push(...await filesUnder(dir, path));
    else files.push(path);
  }
  return files.sort();
}
