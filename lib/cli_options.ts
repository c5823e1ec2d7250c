/**
 * Options that more than one command takes: where the worker is and how to prove who we are.
 *
 * @module
 */

import { InvalidArgumentError } from "commander";
import { UsageError } from "./errors.ts";

/** The Data for Canada worker, the seed's default. */
export const DEFAULT_WORKER_URL = "https://cf-data-ingestor.labs.dataforcanada.org/";
/** Where the token is read from when `--auth-token` is not given. */
export const TOKEN_ENV = "D4C_INGESTOR_AUTH_TOKEN";

/** Commander parser for `--worker-url`: an http(s) URL. */
export function httpUrl(value: string): string {
  if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) {
    throw new InvalidArgumentError(`expected an http(s) URL, got "${value}"`);
  }
  return value;
}

/**
 * The token given with `--auth-token` or in {@link TOKEN_ENV}.
 *
 * @throws {UsageError} when there is none.
 */
export function requireToken(token: string | undefined): string {
  if (token === undefined || token === "") {
    throw new UsageError(`no worker token: pass --auth-token or set ${TOKEN_ENV}`);
  }
  return token;
}
