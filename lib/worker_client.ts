/**
 * Talking to the ingestor worker (see the worker contract): POST a URL to archive, PUT an object,
 * and a side-effect-free preflight. Every answer becomes a {@link WorkerOutcome}; nothing the
 * worker or the network does makes these functions throw.
 *
 * @module
 */

import { messageOf, UsageError } from "./errors.ts";
import {
  isRetryableAnswer,
  parseRetryAfterMs,
  retryDelayMs,
  type RetryPolicy,
} from "./retry_policy.ts";

/** How to reach the worker. */
export interface WorkerEndpoint {
  url: string;
  authToken: string;
  /** Per-request limit, body included. */
  timeoutMs: number;
}

/** What one request to the worker came to, in the shape the `downloads` table records. */
export interface WorkerOutcome {
  ok: boolean;
  /** The worker's status, or `null` when no answer arrived (network error, timeout). */
  httpStatus: number | null;
  error: string | null;
  key: string | null;
  etag: string | null;
  sizeBytes: number | null;
  multipartPartSize: number | null;
  multipartNumberParts: number | null;
  /** The worker's clock when it gave one, else this client's, so it is never empty. */
  startedAt: string;
  finishedAt: string;
  /** Whether the same request may succeed later. */
  retryable: boolean;
  /** The delay the worker asked for with `Retry-After`, if any. */
  retryAfterMs: number | null;
}

const INT32_MAX = 2 ** 31 - 1;

/** The longest answer body read; the worker's JSON is a few hundred bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Asks the worker to download `downloadUrl` into the bucket under `keyPrefix`. */
export function requestDownload(
  endpoint: WorkerEndpoint,
  body: { download_url: string; user_agent: string; key_prefix: string },
  signal?: AbortSignal,
): Promise<WorkerOutcome> {
  return send(endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  }, signal);
}

/**
 * Uploads `bytes` to the bucket at `key` through the worker's PUT endpoint. A stream is sent
 * chunked, without Content-Length (which the contract makes optional).
 */
export function uploadObject(
  endpoint: WorkerEndpoint,
  key: string,
  bytes: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array>,
  contentType: string,
  signal?: AbortSignal,
): Promise<WorkerOutcome> {
  return send(endpoint, {
    method: "PUT",
    headers: { "X-S3-Key": key, "Content-Type": contentType },
    body: bytes,
  }, signal);
}

/**
 * Sends `request` until it succeeds, fails for good, or has been retried `policy.maxRetries`
 * times, waiting out the policy's delay (or the worker's `Retry-After`) in between. `signal` cuts
 * a wait short, and no retry follows; aborting the request itself is `request`'s business.
 */
export async function withRetries(
  policy: RetryPolicy,
  request: () => Promise<WorkerOutcome>,
  signal?: AbortSignal,
): Promise<{ outcome: WorkerOutcome; attempts: number }> {
  for (let attempt = 1;; attempt++) {
    const outcome = await request();
    if (outcome.ok || !outcome.retryable || attempt > policy.maxRetries || signal?.aborted) {
      return { outcome, attempts: attempt };
    }
    await sleep(retryDelayMs(policy, attempt, outcome.retryAfterMs), signal);
  }
}

/** Waits `ms`, or until `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Proves the worker is reachable and accepts the token, without side effects: a PUT with no
 * `X-S3-Key`, which the worker answers 401 to a bad token and 400 to a good one. A transient
 * failure (network error, 5xx, 429) is retried under `policy`, as a download would be.
 *
 * @throws {UsageError} when the token is rejected or the worker cannot be reached.
 */
export async function preflight(endpoint: WorkerEndpoint, policy: RetryPolicy): Promise<void> {
  const { outcome } = await withRetries(policy, () => send(endpoint, { method: "PUT", body: "" }));
  if (outcome.httpStatus === 401) throw new UsageError("the worker rejected the token (401)");
  if (outcome.httpStatus === 400 && outcome.error === "'X-S3-Key' header is required.") return;
  throw new UsageError(
    outcome.httpStatus === null
      ? `cannot reach the worker at ${endpoint.url}: ${outcome.error}`
      : `${endpoint.url} does not answer like an ingestor worker ` +
        `(preflight got HTTP ${outcome.httpStatus})`,
  );
}

/** A request under way: what aborts it, and when it times out. */
interface Deadline {
  controller: AbortController;
  at: number;
  expired: boolean;
}

/**
 * Every request's timeout is checked by one sweeping timer rather than a timer per request
 * (`AbortSignal.any` with `AbortSignal.timeout` costs about 10 µs a request, a fifth of a whole
 * loopback request). A request is aborted at most 5% of its timeout (and at most 1 s) late.
 */
const deadlines = new Set<Deadline>();
let sweeper: { timer: ReturnType<typeof setInterval>; everyMs: number } | null = null;

function sweepEveryMs(timeoutMs: number): number {
  return Math.min(1000, Math.max(5, timeoutMs / 20));
}

function sweep(): void {
  const now = performance.now();
  for (const deadline of deadlines) {
    if (deadline.at <= now) {
      deadline.expired = true;
      deadlines.delete(deadline);
      deadline.controller.abort();
    }
  }
  if (deadlines.size === 0 && sweeper !== null) {
    clearInterval(sweeper.timer);
    sweeper = null;
  }
}

function watch(timeoutMs: number): Deadline {
  const deadline = {
    controller: new AbortController(),
    at: performance.now() + timeoutMs,
    expired: false,
  };
  deadlines.add(deadline);
  const everyMs = sweepEveryMs(timeoutMs);
  if (sweeper === null || everyMs < sweeper.everyMs) {
    if (sweeper !== null) clearInterval(sweeper.timer);
    // The sweeper alone must not keep the process alive.
    sweeper = { timer: setInterval(sweep, everyMs).unref(), everyMs };
  }
  return deadline;
}

async function send(
  endpoint: WorkerEndpoint,
  init: { method: string; headers?: Record<string, string>; body: BodyInit },
  signal?: AbortSignal,
): Promise<WorkerOutcome> {
  const startedAt = new Date().toISOString();
  const deadline = watch(endpoint.timeoutMs);
  const abort = () => deadline.controller.abort();
  if (signal?.aborted) abort();
  else signal?.addEventListener("abort", abort);
  try {
    const response = await fetch(endpoint.url, {
      method: init.method,
      headers: { ...init.headers, Authorization: `Bearer ${endpoint.authToken}` },
      body: init.body,
      signal: deadline.controller.signal,
    });
    const { text, cut } = await readCapped(response);
    const safe = withoutToken(text, endpoint.authToken);
    return interpretAnswer(response.status, response.headers, safe, startedAt, cut);
  } catch (error) {
    let message: string;
    if (signal?.aborted) message = "interrupted";
    else if (deadline.expired) message = `timed out after ${endpoint.timeoutMs / 1000} s`;
    else message = `worker request failed: ${messageOf(error)}`;
    return {
      ...emptyOutcome(startedAt),
      error: withoutToken(message, endpoint.authToken),
      retryable: !signal?.aborted,
    };
  } finally {
    deadlines.delete(deadline);
    signal?.removeEventListener("abort", abort);
  }
}

/**
 * `text` with the token blanked out: a proxy that echoes the request back in its error page must
 * not put the token into the database, the manifest or the terminal.
 */
function withoutToken(text: string, token: string): string {
  return token === "" ? text : text.replaceAll(token, "[token]");
}

function emptyOutcome(startedAt: string): WorkerOutcome {
  return {
    ok: false,
    httpStatus: null,
    error: null,
    key: null,
    etag: null,
    sizeBytes: null,
    multipartPartSize: null,
    multipartNumberParts: null,
    startedAt,
    finishedAt: new Date().toISOString(),
    retryable: false,
    retryAfterMs: null,
  };
}

/**
 * The body as text, at most {@link MAX_BODY_BYTES}; the rest is discarded unread (`cut` says
 * whether there may have been more).
 */
async function readCapped(response: Response): Promise<{ text: string; cut: boolean }> {
  if (response.body === null) return { text: "", cut: false };
  // A declared length within the cap is read in one go: a stream reader costs about as much CPU
  // as the rest of a loopback request, which matters at thousands of requests per second.
  const declared = Number(response.headers.get("Content-Length") ?? NaN);
  if (declared <= MAX_BODY_BYTES) return { text: await response.text(), cut: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  while (length < MAX_BODY_BYTES) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    length += value.length;
  }
  const cut = length >= MAX_BODY_BYTES;
  if (cut) await reader.cancel();
  const bytes = new Uint8Array(Math.min(length, MAX_BODY_BYTES));
  let offset = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.length - offset);
    bytes.set(part, offset);
    offset += part.length;
  }
  return { text: new TextDecoder().decode(bytes), cut };
}

/**
 * Turns a worker answer into an outcome. Success needs a 2xx status *and* a JSON object with
 * `ok: true` whose fields have the contract's types; anything else is a failure with a readable
 * message. `cut` tells that `text` is only the first {@link MAX_BODY_BYTES} of the body.
 */
export function interpretAnswer(
  status: number,
  headers: Headers,
  text: string,
  startedAt: string,
  cut = false,
): WorkerOutcome {
  const outcome: WorkerOutcome = { ...emptyOutcome(startedAt), httpStatus: status };
  const json = parseObject(text);
  const workerError = json !== null && typeof json.error === "string" ? json.error : null;
  if (json !== null) {
    if (typeof json.started_at === "string") outcome.startedAt = json.started_at;
    if (typeof json.finished_at === "string") outcome.finishedAt = json.finished_at;
  }
  if (status >= 200 && status < 300 && json !== null && json.ok === true) {
    const fieldError = readSuccessFields(json, outcome);
    if (fieldError === null) return { ...outcome, ok: true };
    return { ...outcome, error: `worker answered ${status} with ${fieldError}` };
  }
  if (workerError !== null) outcome.error = workerError;
  else if (json !== null) outcome.error = `HTTP ${status}: worker answered without ok:true`;
  else if (status >= 200 && status < 300) {
    // Said plainly, or "HTTP 200: {"ok":true,…" would read like a success.
    const what = cut
      ? `a body over ${MAX_BODY_BYTES / 1024} KiB`
      : "a body that is not a JSON object";
    outcome.error = `worker answered ${status} with ${what}: ${summarizeText(text)}`;
  } else outcome.error = `HTTP ${status}: ${summarizeText(text)}`;
  // A 2xx that is not the worker's success came from something that claims success: sending the
  // same request again would get the same answer.
  outcome.retryable = !(status >= 200 && status < 300) &&
    isRetryableAnswer(status, json === null ? null : workerError ?? "");
  outcome.retryAfterMs = parseRetryAfterMs(headers.get("Retry-After"));
  return outcome;
}

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : null;
  } catch {
    return null;
  }
}

function summarizeText(text: string): string {
  const flat = text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim();
  if (flat === "") return "empty body";
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}

/** Copies the success fields into `outcome`; returns what is malformed, or `null`. */
function readSuccessFields(json: Record<string, unknown>, outcome: WorkerOutcome): string | null {
  const strings = { key: json.key, etag: json.etag } as const;
  for (const [name, value] of Object.entries(strings)) {
    if (value !== undefined && value !== null && typeof value !== "string") {
      return `a malformed body: "${name}" is not a string`;
    }
  }
  for (const name of ["started_at", "finished_at"]) {
    if (json[name] !== undefined && typeof json[name] !== "string") {
      return `a malformed body: "${name}" is not a string`;
    }
  }
  const integers = ["size_bytes", "multipart_part_size", "multipart_number_parts"] as const;
  for (const name of integers) {
    const value = json[name];
    if (value !== undefined && value !== null && !Number.isSafeInteger(value)) {
      return `a malformed body: "${name}" is not an integer`;
    }
  }
  // The manifest's multipart columns are int32 (the seed's schema): a row beyond that could be
  // recorded but never exported.
  for (const name of ["multipart_part_size", "multipart_number_parts"] as const) {
    const value = json[name] as number | null | undefined;
    if (value !== undefined && value !== null && (value < 0 || value > INT32_MAX)) {
      return `a malformed body: "${name}" is not a 32-bit count`;
    }
  }
  outcome.key = typeof json.key === "string" ? json.key : null;
  outcome.etag = typeof json.etag === "string" ? bareEtag(json.etag) : null;
  outcome.sizeBytes = (json.size_bytes as number | undefined) ?? null;
  outcome.multipartPartSize = (json.multipart_part_size as number | undefined) ?? null;
  outcome.multipartNumberParts = (json.multipart_number_parts as number | undefined) ?? null;
  return null;
}

/** An ETag without the quotes S3 wraps it in, literal or as `&quot;` entities. */
export function bareEtag(etag: string): string {
  return etag.replaceAll("&quot;", "").replaceAll('"', "").trim();
}
