/** Loads one variant by name, so each server process imports only the library it measures. */
import type { VariantName } from "../protocol";
import type { StartVariant } from "./types";

const loaders: Record<VariantName, () => Promise<{ start: StartVariant }>> = {
  raw: () => import("./raw.js"),
  "express-raw": () => import("./express-raw.js"),
  "better-sse": () => import("./better-sse.js"),
  sluice: () => import("./sluice.js"),
  "sse-channel": () => import("./sse-channel.js"),
  "express-sse": () => import("./express-sse.js"),
};

export async function loadVariant(name: VariantName): Promise<StartVariant> {
  return (await loaders[name]()).start;
}
