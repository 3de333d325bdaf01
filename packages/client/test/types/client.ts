// Type-level tests, checked by `pnpm typecheck`. Each @ts-expect-error must remain an error, or tsc
// fails on the unused directive.
import type {
  Channel,
  EventMap as ServerEventMap,
  ResetData as ServerResetData,
} from "@sluice/express-sse";
import { SseClient, SseError, type EventMap, type ResetData, type SseMessageOf } from "../../src";

// The client's EventMap and ResetData are the server's, written again (the client does not depend
// on the server package): each is assignable to the other.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameMap: Same<EventMap, ServerEventMap> = true;
const sameReset: Same<ResetData, ServerResetData> = true;
(void sameMap, sameReset);

// The map a Channel is typed with types the client: one type, imported by both sides.
type Events = { price: { symbol: string; price: number }; message: string };
type ServerSide = Channel<Events>;
type MapOf<C> = C extends Channel<infer E> ? E : never;
const client = new SseClient<MapOf<ServerSide>>("http://127.0.0.1/prices");

client.on("price", (data, event) => {
  const symbol: string = data.symbol;
  const price: number = event.data.price;
  const type: "price" = event.type;
  (void symbol, price, type);
});
client.on("message", (data) => void data.toUpperCase());
client.on("reset", (data) => {
  const reason: "unknown" | "too-old" = data.reason;
  const newest: string | null = data.newestId;
  (void reason, newest);
});
// @ts-expect-error not a field of "price"
client.on("price", (data) => data.volume);
// @ts-expect-error not an event of the map
client.on("prices", () => undefined);
// @ts-expect-error "message" is a string here
client.on("message", (data) => data.symbol);
const off: () => void = client.on("price", () => undefined);
off();

client.addEventListener("open", (event) => void event.response.status);
client.addEventListener("error", (event) => {
  const error: SseError = event.error;
  const fatal: boolean = error.fatal;
  // @ts-expect-error not an error code
  const code: "timeout" = error.code;
  (void fatal, code);
});
client.addEventListener("close", (event) => void event.error?.code);
client.addEventListener("price", (event) => void event.data.price);
// @ts-expect-error not a field of "price"
client.addEventListener("price", (event) => void event.data.volume);
client.addEventListener("anything", (event: Event) => void event.type); // as EventTarget allows

async function iterate(): Promise<void> {
  for await (const event of client) {
    const any: SseMessageOf<Events> = event;
    void any;
    switch (event.type) {
      case "price":
        void event.data.price;
        break;
      case "message":
        void event.data.toUpperCase();
        break;
      case "reset":
        void event.data.oldestId;
        break;
      default: {
        const never: never = event;
        void never;
      }
    }
  }
}
void iterate;

// Without a map, any event name, data unknown.
const untyped = new SseClient("http://127.0.0.1/anything");
untyped.on("whatever", (data) => {
  // @ts-expect-error unknown data must be narrowed first
  void data.field;
});

// Options are typed.
// @ts-expect-error retry is a number of ms
void new SseClient("http://127.0.0.1/", { retry: "1s" });
// @ts-expect-error not an option
void new SseClient("http://127.0.0.1/", { reconnect: true });
void new SseClient(() => `http://127.0.0.1/?token=${Math.random()}`, {
  headers: async () => ({ Authorization: "Bearer x" }),
  onUnauthorized: async () => true,
});
