import express5 from "express";

// Express 4 is installed under an npm alias ("express4": "npm:express@^4"), so that the same suite
// runs on both majors. Its types are Express 5's; the API used here is common to both.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const express4 = require("express4") as typeof express5;

export type ExpressFactory = typeof express5;

/** `[name, factory]` rows for `describe.each`. */
export const EXPRESS_VERSIONS: ReadonlyArray<readonly [string, ExpressFactory]> = [
  ["Express 5", express5],
  ["Express 4", express4],
];
