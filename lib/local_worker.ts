/**
 * The ingestor worker's HTTP contract (POST a URL to archive, PUT an object) answered by this
 * machine, storing objects in a local directory instead of an S3 bucket. Bodies are streamed
 * through, never held whole, so memory stays bounded whatever the object size.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import { objectKey } from "./object_key.ts";
import { LocalStore, type StoredObject, StoreWriteError } from "./local_store.ts";
import { messageOf } from "./errors.ts";
import { PART_SIZE } from "./multipart_etag.ts";

/** How the local worker is set up. */
export interface LocalWorkerOptions {
  /** Existing directory the objects are written under. */
  store: string;
  /** Bearer token every request must carry. */
  authToken: string;
  /** Reported as `bucket` in success answers. */
  bucket: string;
  /** Told one line for each POST or PUT answered. */
  log?: (line: string) => void;
}

/** A local worker: its request handler, and what a stopping server needs from it. */
export interface LocalWorker {
  /** Answers one request as the worker contract says. */
  handle(request: Request): Promise<Response>;
  /** Requests being answered now. */
  inFlight(): number;
  /** Deletes the temporary files of unfinished writes (for an exit that does not wait). */
  removePartials(): void;
}

/** The largest POST body read; the contract's JSON is a few hundred bytes. */
export const MAX_JSON_BYTES = 64 * 1024;

const DEFAULT_CONTENT_TYPE = "application/octet-stream";

/** Creates a local worker storing under `options.store`. */
export function createLocalWorker(options: LocalWorkerOptions): LocalWorker {
  const store = new LocalStore(options.store);
  const expected = digest(`Bearer ${options.authToken}`);
  let inFlight = 0;

  const answer = (request: Request): Promise<Response> => {
    // Hashing both sides gives equal lengths, so the comparison time says nothing of the token.
    if (!timingSafeEqual(digest(request.headers.get("Authorization") ?? ""), expected)) {
      return Promise.resolve(new Response("Unauthorized", { status: 401 }));
    }
    if (request.method === "POST") return post(request, store, options);
    if (request.method === "PUT") return put(request, store, options);
    return Promise.resolve(
      new Response("Method Not Allowed. Use POST or PUT.", { status: 405 }),
    );
  };

  return {
    handle: async (request) => {
      inFlight++;
      try {
        return await answer(request);
      } catch (error) {
        // A client gone mid-request, or a bug: answer, rather than let Deno.serve print a stack.
        return jsonError(500, `Internal error: ${messageOf(error)}`);
      } finally {
        inFlight--;
      }
    },
    inFlight: () => inFlight,
    removePartials: () => store.removePartials(),
  };
}

function digest(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}

function jsonError(status: number, error: string, extra: Record<string, string> = {}): Response {
  return Response.json({ error, ...extra }, { status });
}

async function post(
  request: Request,
  store: LocalStore,
  options: LocalWorkerOptions,
): Promise<Response> {
  const contentType = request.headers.get("Content-Type") ?? "";
  if (!contentType.toLowerCase().includes("application/json")) {
    return new Response("Content-Type must be application/json", { status: 415 });
  }
  const text = await readSmallText(request);
  if (text === null) return new Response("Request body too large", { status: 413 });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return new Response("Invalid JSON body", { status: 400 });
  }
  const fields = typeof json === "object" && json !== null ? json as Record<string, unknown> : {};
  const { download_url: downloadUrl, user_agent: userAgent, key_prefix: keyPrefix } = fields;
  if (typeof downloadUrl !== "string" || downloadUrl === "") return missingFields();
  if (typeof userAgent !== "string" || userAgent === "") return missingFields();
  if (!URL.canParse(downloadUrl) || !/^https?:$/.test(new URL(downloadUrl).protocol)) {
    return jsonError(400, "Invalid download_url");
  }
  if (keyPrefix !== undefined && keyPrefix !== null && typeof keyPrefix !== "string") {
    return jsonError(400, "'key_prefix' must be a string.");
  }
  const key = objectKey(keyPrefix ?? "", downloadUrl);
  const unsafe = checkKey(store, key);
  if (unsafe !== null) return unsafe;

  const startedAt = new Date().toISOString();
  let source: Response;
  try {
    // The client's signal: a client that gives up stops the download too.
    source = await fetch(downloadUrl, {
      // identity: the object is the bytes the server holds, not a decompressed copy of them.
      headers: { "User-Agent": userAgent, "Accept-Encoding": "identity" },
      redirect: "follow",
      signal: request.signal,
    });
  } catch (error) {
    const failure = jsonError(502, `Download failed: ${messageOf(error)}`);
    return logged(options, "POST", downloadUrl, failure);
  }
  if (!source.ok) {
    await source.body?.cancel();
    const failure = jsonError(502, `Source returned HTTP ${source.status}`);
    return logged(options, "POST", downloadUrl, failure);
  }
  // A 2xx without a body (204) is an empty object.
  const body = source.body ?? new Blob().stream();
  const response = await storeAndAnswer(store, key, body, true, {
    bucket: options.bucket,
    contentType: source.headers.get("Content-Type") ?? DEFAULT_CONTENT_TYPE,
    contentLength: source.headers.get("Content-Length"),
    startedAt,
    readFailure: (message) => jsonError(502, `Download failed: ${message}`),
  });
  return logged(options, "POST", downloadUrl, response);
}

function missingFields(): Response {
  return jsonError(400, "'download_url' and 'user_agent' are required.");
}

async function put(
  request: Request,
  store: LocalStore,
  options: LocalWorkerOptions,
): Promise<Response> {
  const key = request.headers.get("X-S3-Key");
  if (key === null || key === "") return jsonError(400, "'X-S3-Key' header is required.");
  if (request.body === null || request.headers.get("Content-Length") === "0") {
    return bodyRequired(request);
  }
  const unsafe = checkKey(store, key);
  if (unsafe !== null) {
    await request.body.cancel();
    return unsafe;
  }
  const response = await storeAndAnswer(store, key, request.body, false, {
    bucket: options.bucket,
    contentType: request.headers.get("Content-Type") ?? DEFAULT_CONTENT_TYPE,
    contentLength: request.headers.get("Content-Length"),
    startedAt: new Date().toISOString(),
    readFailure: (message) => jsonError(400, `Request body could not be read: ${message}`),
  });
  return logged(options, "PUT", key, response);
}

async function bodyRequired(request: Request): Promise<Response> {
  await request.body?.cancel();
  return jsonError(400, "Request body is required.");
}

function checkKey(store: LocalStore, key: string): Response | null {
  try {
    store.pathOf(key);
    return null;
  } catch (error) {
    return jsonError(400, `Invalid object key ${JSON.stringify(key)}: ${messageOf(error)}`);
  }
}

interface StoreContext {
  bucket: string;
  contentType: string;
  contentLength: string | null;
  startedAt: string;
  /** The answer when the body could not be read. */
  readFailure: (message: string) => Response;
}

/** Writes `body` to `key` and answers with the contract's success or failure JSON. */
async function storeAndAnswer(
  store: LocalStore,
  key: string,
  body: ReadableStream<Uint8Array>,
  allowEmpty: boolean,
  context: StoreContext,
): Promise<Response> {
  let stored: StoredObject | null;
  try {
    stored = await store.write(key, body, allowEmpty);
  } catch (error) {
    if (error instanceof StoreWriteError && error.stage === "read") {
      return context.readFailure(error.message);
    }
    return jsonError(502, `S3 upload failed: ${messageOf(error)}`, {
      started_at: context.startedAt,
      finished_at: new Date().toISOString(),
    });
  }
  if (stored === null) return jsonError(400, "Request body is required.");
  const size = context.contentLength === null ? NaN : Number(context.contentLength);
  return Response.json({
    ok: true,
    bucket: context.bucket,
    key,
    content_type: context.contentType,
    ...(Number.isSafeInteger(size) ? { size_bytes: size } : {}),
    etag: stored.etag,
    multipart_part_size: PART_SIZE,
    multipart_number_parts: stored.parts,
    started_at: context.startedAt,
    finished_at: new Date().toISOString(),
  });
}

function logged(
  options: LocalWorkerOptions,
  method: string,
  subject: string,
  response: Response,
): Response {
  options.log?.(`${method} ${response.status} ${subject}`);
  return response;
}

/** The request body as text, or `null` when it is over {@link MAX_JSON_BYTES}. */
async function readSmallText(request: Request): Promise<string | null> {
  if (request.body === null) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.length;
    if (length > MAX_JSON_BYTES) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(bytes);
}
