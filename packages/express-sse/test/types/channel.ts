// Type-level tests for typed channels, checked by `pnpm typecheck`. Each @ts-expect-error must
// remain an error, or tsc fails on the unused directive.
import { Channel } from "../../src";

const chat = new Channel<{ message: { user: string; text: string }; typing: string }>("chat");

void chat.publish({ user: "ada", text: "hi" }); // unnamed: the "message" payload
void chat.publish({ user: "ada", text: "hi" }, { event: "message" });
void chat.publish("ada", { event: "typing" });
const id: Promise<string> = chat.publish("ada", { event: "typing" });
void id;

// @ts-expect-error wrong payload for "typing"
void chat.publish({ user: "ada" }, { event: "typing" });
// @ts-expect-error wrong payload for "message"
void chat.publish({ user: "ada", text: 1 });
// @ts-expect-error unknown event name
void chat.publish("x", { event: "tpying" });
// @ts-expect-error a named event needs its name
void chat.publish("ada");

const noMessage = new Channel<{ tick: number }>("ticks");
void noMessage.publish(1, { event: "tick" });
// @ts-expect-error no "message" event in this map, so the name is required
void noMessage.publish(1);

const untyped = new Channel("anything");
void untyped.publish({ any: "thing" });
void untyped.publish(42, { event: "whatever" });

chat.on("join", (stream) => void stream.send("welcome"));
chat.on("leave", (_stream, reason) => void reason.type);
// @ts-expect-error not a channel event
chat.on("joined", () => undefined);
