import * as api from "../src";

test("the public surface: the adapter, its factory, the publish error and the key helpers", () => {
  expect(Object.keys(api).sort()).toEqual([
    "DEFAULT_PREFIX",
    "RedisAdapter",
    "RedisPublishError",
    "createRedisAdapter",
    "hashSlot",
    "metaKey",
    "streamKey",
  ]);
  expect(api.createRedisAdapter).toHaveLength(1);
  expect(api.streamKey(api.DEFAULT_PREFIX, "chat")).toBe("sluice:{chat}");
  expect(api.metaKey(api.streamKey(api.DEFAULT_PREFIX, "chat"))).toBe("sluice:{chat}:meta");
  expect(api.hashSlot("sluice:{chat}")).toBe(api.hashSlot("chat"));
});
