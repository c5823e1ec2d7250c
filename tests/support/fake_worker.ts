/**
 * A loopback stand-in for the ingestor worker: answers as the contract says, records every
 * request, and plays scripted answers per download URL and attempt so tests can inject faults.
 *
 * @module
 */

import { objectKey } from "../../lib/object_key.ts";

/** A request the fake worker received. */
export interface RecordedRequest {
  method: string;
  headers: Headers;
  body: string;
  /** The POST body's `download_url`, if any. */
  downloadUrl: string | null;
  /** Requests in flight when this one arrived, itself included. */
  inFlightOnArrival: number;
  /** Milliseconds since the fake worker started. */
  receivedAt: number;
}

/** A scripted answer. */
export interface FakeAnswer {
  status?: number;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Never answer (the client must time out or abort). */
  hang?: boolean;
  /** Send headers, then break the body stream. */
  breakBody?: boolean;
}

/** Decides the answer to a POST, or `undefined` for the default success. */
export type Script = (downloadUrl: string, attempt: number) => FakeAnswer | undefined;

/** Decides the answer to a PUT carrying `X-S3-Key`, or `undefined` for the default success. */
export type PutScript = (key: string, attempt: number) => FakeAnswer | undefined;

/** Options for {@link startFakeWorker}. */
export interface FakeWorkerOptions {
  token?: string;
  script?: Script;
  /** Hold the first POSTs until this many are in flight at once, then release them all. */
  holdUntilInFlight?: number;
  /** Scripted answers to uploads, per object key and attempt. */
  putScript?: PutScript;
  /** Reject the token (401) on every request that arrives after this many POSTs. */
  revokeTokenAfterPosts?: number;
  /** Hold every authorised POST (or those it picks) until {@link FakeWorker.openGate} is called. */
  gated?: boolean | ((downloadUrl: string) => boolean);
  /** Answer this many token checks (PUTs without `X-S3-Key`) with Cloudflare's 503 page. */
  unavailableChecks?: number;
}

/** A running fake worker. */
export interface FakeWorker {
  url: string;
  token: string;
  requests: RecordedRequest[];
  /** The most requests ever in flight at once. */
  maxInFlight: number;
  /** POST bodies' download URLs, in arrival order. */
  posts(): string[];
  /** PUT requests. */
  puts(): RecordedRequest[];
  /** PUT requests with an `X-S3-Key` (uploads, not token checks). */
  uploads(): RecordedRequest[];
  /** Resolves once `n` POSTs have arrived (in the same task as the `n`th one's arrival). */
  whenPosts(n: number): Promise<void>;
  /** Resolves once `n` PUTs with an `X-S3-Key` (uploads) have arrived. */
  whenUploads(n: number): Promise<void>;
  /** Resolves once `n` POSTs are held at the gate (see {@link FakeWorkerOptions.gated}). */
  whenHeld(n: number): Promise<void>;
  /** Lets the held POSTs through, and every later one. */
  openGate(): void;
  close(): Promise<void>;
}

/** The success JSON the deployed worker sends for `downloadUrl` under `keyPrefix`. */
export function successBody(downloadUrl: string, keyPrefix: string): Record<string, unknown> {
  const now = new Date().toISOString();
  return {
    ok: true,
    bucket: "fake-bucket",
    key: objectKey(keyPrefix, downloadUrl),
    content_type: "application/zip",
    size_bytes: 1000 + downloadUrl.length,
    etag: `${hexOf(downloadUrl)}-1`,
    multipart_part_size: 5242880,
    multipart_number_parts: 1,
    started_at: now,
    finished_at: now,
  };
}

function hexOf(text: string): string {
  let hash = 0;
  for (const char of text) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return hash.toString(16).padStart(8, "0").repeat(4);
}

/** Starts a fake worker on 127.0.0.1 at a free port. */
export function startFakeWorker(options: FakeWorkerOptions = {}): FakeWorker {
  const token = options.token ?? "test-token";
  const requests: RecordedRequest[] = [];
  const attempts = new Map<string, number>();
  const started = performance.now();
  let inFlight = 0;
  let held: (() => void)[] | null = options.holdUntilInFlight ? [] : null;
  let gate: (() => void)[] | null = options.gated ? [] : null;
  let checkCount = 0;
  const hangs = new Set<() => void>();
  const putAttempts = new Map<string, number>();
  const waiters: { ready: () => boolean; resolve: () => void }[] = [];
  let postCount = 0;
  let uploadCount = 0;
  const notify = () => {
    for (const waiter of [...waiters]) {
      if (!waiter.ready()) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };
  const when = (ready: () => boolean): Promise<void> => {
    if (ready()) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    waiters.push({ ready, resolve });
    return promise;
  };
  /** Waits until the release handed to `register` is called (at the latest by `close`). */
  const parked = (register: (release: () => void) => void) => {
    const { promise, resolve } = Promise.withResolvers<void>();
    register(resolve);
    return promise;
  };
  const worker: FakeWorker = {
    url: "",
    token,
    requests,
    maxInFlight: 0,
    posts: () => requests.filter((r) => r.method === "POST").flatMap((r) => r.downloadUrl ?? []),
    puts: () => requests.filter((r) => r.method === "PUT"),
    uploads: () => requests.filter((r) => r.method === "PUT" && r.headers.has("X-S3-Key")),
    whenPosts: (n) => when(() => postCount >= n),
    whenUploads: (n) => when(() => uploadCount >= n),
    whenHeld: (n) => when(() => (gate?.length ?? 0) >= n),
    openGate: () => {
      const released = gate ?? [];
      gate = null;
      for (const release of released) release();
    },
    close: async () => {
      for (const release of held ?? []) release();
      worker.openGate();
      for (const release of hangs) release();
      await server.shutdown();
    },
  };

  const answer = async (request: Request): Promise<Response> => {
    const body = await request.text();
    let downloadUrl: string | null = null;
    let keyPrefix = "";
    try {
      const json = JSON.parse(body);
      downloadUrl = typeof json.download_url === "string" ? json.download_url : null;
      keyPrefix = typeof json.key_prefix === "string" ? json.key_prefix : "";
    } catch { /* not JSON: answered below */ }
    requests.push({
      method: request.method,
      headers: request.headers,
      body,
      downloadUrl,
      inFlightOnArrival: inFlight,
      receivedAt: performance.now() - started,
    });
    const revoked = options.revokeTokenAfterPosts !== undefined &&
      postCount >= options.revokeTokenAfterPosts;
    if (request.method === "POST") postCount++;
    if (request.method === "PUT" && request.headers.has("X-S3-Key")) uploadCount++;
    notify();
    if (revoked || request.headers.get("Authorization") !== `Bearer ${token}`) {
      return new Response("Unauthorized", { status: 401 });
    }
    if (request.method === "PUT") {
      const key = request.headers.get("X-S3-Key");
      if (!key && checkCount++ < (options.unavailableChecks ?? 0)) {
        return new Response("<html><h1>503 Service Unavailable</h1></html>", { status: 503 });
      }
      if (!key) {
        return Response.json({ error: "'X-S3-Key' header is required." }, { status: 400 });
      }
      if (body.length === 0) {
        return Response.json({ error: "Request body is required." }, { status: 400 });
      }
      const attempt = (putAttempts.get(key) ?? 0) + 1;
      putAttempts.set(key, attempt);
      const scripted = options.putScript?.(key, attempt);
      if (scripted !== undefined) return await play(scripted, () => ({ ok: true, key }));
      const now = new Date().toISOString();
      return Response.json({
        ok: true,
        bucket: "fake-bucket",
        key: request.headers.get("X-S3-Key"),
        content_type: request.headers.get("Content-Type") ?? "application/octet-stream",
        size_bytes: body.length,
        multipart_part_size: 5242880,
        multipart_number_parts: 1,
        started_at: now,
        finished_at: now,
      });
    }
    if (request.method !== "POST") {
      return new Response("Method Not Allowed. Use POST or PUT.", { status: 405 });
    }
    if (downloadUrl === null) {
      return Response.json({ error: "'download_url' and 'user_agent' are required." }, {
        status: 400,
      });
    }
    const gated = typeof options.gated === "function" ? options.gated(downloadUrl) : true;
    if (gate !== null && gated) {
      const waiting = parked((release) => gate!.push(release));
      notify();
      await waiting;
    }
    if (held !== null) {
      if (inFlight >= options.holdUntilInFlight!) {
        for (const release of held) release();
        held = null;
      } else {
        await new Promise<void>((resolve) => held!.push(resolve));
      }
    }
    const attempt = (attempts.get(downloadUrl) ?? 0) + 1;
    attempts.set(downloadUrl, attempt);
    const scripted = options.script?.(downloadUrl, attempt);
    if (scripted === undefined) return Response.json(successBody(downloadUrl, keyPrefix));
    return await play(scripted, () => successBody(downloadUrl!, keyPrefix));
  };

  /** Answers as `scripted` says; `fallback` is the body when it names none. */
  const play = async (scripted: FakeAnswer, fallback: () => unknown): Promise<Response> => {
    if (scripted.hang) {
      // Until the fake worker closes: the client must give up first, so the answer is never read.
      await parked((release) => hangs.add(release));
      return new Response(null, { status: 504 });
    }
    if (scripted.delayMs) await new Promise((r) => setTimeout(r, scripted.delayMs));
    const headers = new Headers(scripted.headers);
    const text = typeof scripted.body === "string"
      ? scripted.body
      : JSON.stringify(scripted.body ?? fallback());
    if (scripted.breakBody) {
      const stream = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(text.slice(0, 5)));
          controller.error(new Error("connection reset"));
        },
      });
      return new Response(stream, { status: scripted.status ?? 200, headers });
    }
    return new Response(text, { status: scripted.status ?? 200, headers });
  };

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      inFlight++;
      worker.maxInFlight = Math.max(worker.maxInFlight, inFlight);
      try {
        return await answer(request);
      } finally {
        inFlight--;
      }
    },
  );
  worker.url = `http://127.0.0.1:${server.addr.port}/`;
  return worker;
}
