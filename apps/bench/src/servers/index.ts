/** Loads one variant by name, so each server process imports only the library it measures. */
import type { ServerVariantName } from "../protocol";
import type { StartVariant } from "./types";

const loaders: Record<ServerVariantName, () => Promise<{ start: StartVariant }>> = {
  raw: () => import("./raw.js"),
  "raw-socket": () => import("./raw-socket.js"),
  "express-raw": () => import("./express-raw.js"),
  "better-sse": () => import("./better-sse.js"),
  sluice: () => import("./sluice.js"),
  "sluice-redis": () => import("./sluice-redis.js"),
  "sse-channel": () => import("./sse-channel.js"),
  "express-sse": () => import("./express-sse.js"),
};

export async function loadVariant(name: ServerVariantName): Promise<StartVariant> {
  return (await loaders[name]()).start;
}
