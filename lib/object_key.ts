/**
 * Where the worker stores a URL: it keeps only the last path segment, still percent-encoded,
 * under the key prefix (worker contract, "Object key").
 *
 * @module
 */

/** The object's file name the worker derives from `url`: its last path segment, or `unnamed`. */
export function objectName(url: string | URL): string {
  const pathname = (typeof url === "string" ? new URL(url) : url).pathname;
  return pathname.slice(pathname.lastIndexOf("/") + 1) || "unnamed";
}

/** `prefix` without its trailing slashes, as the worker normalises it. */
export function normalizePrefix(prefix: string): string {
  return prefix.replace(/\/+$/, "");
}

/** The full object key for `name` under `prefix`: `prefix/name`, or `name` for an empty prefix. */
export function keyUnderPrefix(prefix: string, name: string): string {
  const base = normalizePrefix(prefix);
  return base === "" ? name : `${base}/${name}`;
}

/** The object key the worker writes `url` to under `prefix`. */
export function objectKey(prefix: string, url: string): string {
  return keyUnderPrefix(prefix, objectName(url));
}
