/**
 * Small helpers every module may use: describing a bad value in an error, the one validator of
 * non-negative integers, reporting an error nobody awaits, `isPromise`, `noop`. A leaf: it imports
 * nothing from the package.
 */
import type { EventEmitter } from "node:events";

/** A value as an error message shows it: its kind, and the value itself for primitives. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) return "an array";
  const type = typeof value;
  if (type === "object") return "an object";
  if (type === "function") return "a function";
  if (type === "string") return `a string`;
  return `${type} ${String(value)}`;
}

/**
 * `value` if it is a non-negative safe integer (or `Infinity`, with `orInfinity`); else a
 * `TypeError` (not a number) or a `RangeError` whose message starts with `subject`, e.g.
 * `The "retry" option`, `The history "max" option`, `The "retry" field`.
 */
export function nonNegativeInteger(subject: string, value: unknown, orInfinity = false): number {
  if (typeof value !== "number") {
    throw new TypeError(`${subject} must be a number, got ${describe(value)}`);
  }
  if (orInfinity && value === Infinity) return value;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `${subject} must be a non-negative safe integer${orInfinity ? " or Infinity" : ""}, got ${value}`,
    );
  }
  return value;
}

/**
 * Reports an error that no caller can catch (it happened in a callback, a timer or a fan-out):
 * to `emitter`'s `error` listeners when it has any, else as a process warning of `type`. Never
 * swallowed, and never thrown: an `error` event without a listener would crash the process for
 * one bad subscriber.
 */
export function reportError(emitter: EventEmitter | undefined, err: unknown, type: string): void {
  const error = err instanceof Error ? err : new Error(String(err));
  if (emitter !== undefined && emitter.listenerCount("error") > 0) emitter.emit("error", error);
  // A string, not the Error: emitWarning rejects Errors from another realm (jest, vm).
  else process.emitWarning(error.message, { type, detail: error.stack });
}

export function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === "function";
}

export function noop(): void {}
