/**
 * Small helpers shared by the adapter's modules (a leaf: it imports nothing from the package).
 * The same shapes as @sluice/express-sse's own util.ts, which this package cannot import (only
 * that package's public API is a dependency).
 */
import type { EventEmitter } from "node:events";

/**
 * Reports an error that no caller can catch (a connection dropped, a background read failed): to
 * `emitter`'s `error` listeners when it has any, else as a process warning of `type`. Never
 * swallowed, and never thrown: an `error` event without a listener would crash the process.
 */
export function reportError(emitter: EventEmitter, error: Error, type: string): void {
  if (emitter.listenerCount("error") > 0) emitter.emit("error", error);
  // A string, not the Error: emitWarning rejects Errors from another realm (jest, vm).
  else process.emitWarning(error.message, { type, detail: error.stack });
}

export function noop(): void {}
