/**
 * One sharded pub/sub connection to one Redis node, spoken directly (RESP3 over `net`/`tls`):
 * `HELLO 3` (with `AUTH` and the client name), then `SSUBSCRIBE`, `SUNSUBSCRIBE` and `PING`. Every
 * message goes to one callback with its channel's name (resp.ts says why not node-redis's pub/sub).
 *
 * It never reconnects: once closed it stays closed and says why, once. The standalone subscriber
 * (subscriber.ts) opens a new one with backoff; the cluster subscriber (cluster-subscriber.ts)
 * hands the channels back to the live feed, which places them again by a fresh slot map.
 *
 * Replies come in command order. A subscription command is answered by one confirmation push per
 * channel (or one error, e.g. MOVED, and no push); a `sunsubscribe` push for a channel that no
 * pending `SUNSUBSCRIBE` names is Redis taking the subscription away (its slot moved).
 */
import net from "node:net";
import tls from "node:tls";
import type { Endpoint } from "./endpoint";
import { RespError, RespReader, type Push } from "./resp";

export interface PubSubConnectionEvents {
  onMessage(message: string, channel: string): void;
  /** Redis ended a subscription by itself (a cluster slot moved away from this node). */
  onTakenAway(channel: string): void;
  /** The connection is closed (a socket error, Redis closed it, a protocol error): once. */
  onClose(error: Error): void;
}

interface Pending {
  readonly kind: "hello" | "ping" | "ssubscribe" | "sunsubscribe";
  /** Confirmation pushes still due (subscription commands). */
  remaining: number;
  /** The channels a `SUNSUBSCRIBE` names, to tell its confirmations from a slot moving. */
  readonly channels: ReadonlySet<string> | undefined;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** Channels per subscription command, at most (one command per slot on a cluster anyway). */
const CHANNELS_PER_COMMAND = 10_000;

export class PubSubConnection {
  /** @internal */
  private readonly _socket: net.Socket;
  /** @internal */
  private readonly _reader: RespReader;
  /** @internal */
  private readonly _pending: Pending[] = [];
  /** @internal */
  private _ready = false;
  /** @internal */
  private _closed = false;
  /** Settles once `HELLO` is answered, or the connection closes before. */
  readonly connected: Promise<void>;

  constructor(
    endpoint: Endpoint,
    private readonly _events: PubSubConnectionEvents,
  ) {
    this._reader = new RespReader({
      onMessage: (message, channel) => {
        if (!this._closed) _events.onMessage(message, channel);
      },
      onPush: (push) => this._onPush(push),
      onReply: (reply) => this._onReply(reply),
    });
    const socket = endpoint.connect();
    this._socket = socket;
    socket.setNoDelay(true);
    socket.setTimeout(endpoint.connectTimeout, () =>
      this._close(new Error(`not connected within ${endpoint.connectTimeout} ms`)),
    );
    socket.on("data", (chunk: Buffer) => {
      this._chunks.push(chunk);
      if (this._chunks.length === 1) setImmediate(this._drain);
    });
    socket.on("error", (error) => this._close(error));
    socket.on("close", () => this._close(new Error("connection closed")));
    this.connected = new Promise<void>((resolve, reject) => {
      socket.once(socket instanceof tls.TLSSocket ? "secureConnect" : "connect", () => {
        endpoint.credentials().then(
          (credentials) => {
            const hello = ["HELLO", "3"];
            // A user without a password (ACL `nopass`) still logs in as that user, as node-redis does.
            if (credentials.password || credentials.username) {
              hello.push("AUTH", credentials.username ?? "default", credentials.password ?? "");
            }
            hello.push("SETNAME", endpoint.name);
            this._send(
              hello,
              "hello",
              0,
              undefined,
              () => {
                socket.setTimeout(0);
                this._ready = true;
                resolve();
              },
              reject,
            );
          },
          (error: unknown) => {
            const failure = new Error(`Getting Redis credentials failed: ${String(error)}`, {
              cause: error,
            });
            reject(failure);
            this._close(failure);
          },
        );
      });
      // Closed before HELLO was answered: the same error.
      this._failConnect = reject;
    });
    this.connected.catch(() => undefined); // the owner hears of it through onClose too
  }

  /** @internal */
  private _failConnect: ((error: Error) => void) | undefined;
  /**
   * @internal
   * Input read in this turn of the event loop, parsed together once the loop has read every socket
   * (`setImmediate`): messages that came in several reads reach a channel in one synchronous run,
   * so it writes them to each client in one write. Under a flood that is what keeps the number of
   * socket writes per client below one per event; at a steady rate it costs nothing (one read).
   */
  private _chunks: Buffer[] = [];
  /** @internal */
  private readonly _drain = (): void => {
    const chunks = this._chunks;
    this._chunks = [];
    if (this._closed) return;
    try {
      for (const chunk of chunks) this._reader.write(chunk);
    } catch (error) {
      this._close(error instanceof Error ? error : new Error(String(error)));
    }
  };

  /** Connected, and not closed. */
  get ready(): boolean {
    return this._ready && !this._closed;
  }

  /** `SSUBSCRIBE` (several commands for many channels); resolves once Redis confirmed all. */
  subscribe(channels: readonly string[]): Promise<void> {
    return this._command("ssubscribe", "SSUBSCRIBE", channels);
  }

  /** `SUNSUBSCRIBE`; resolves once Redis confirmed all. */
  unsubscribe(channels: readonly string[]): Promise<void> {
    return this._command("sunsubscribe", "SUNSUBSCRIBE", channels);
  }

  ping(): Promise<void> {
    if (!this.ready) return Promise.reject(new Error("The pub/sub connection is not connected"));
    return new Promise((resolve, reject) =>
      this._send(["PING"], "ping", 0, undefined, resolve, reject),
    );
  }

  /** Closes the connection at once. Safe twice; `onClose` is not called for it. */
  destroy(): void {
    if (this._closed) return;
    this._closed = true;
    this._ready = false;
    this._rejectAll(new Error("The pub/sub connection was closed"));
    this._socket.destroy();
    this._reader.reset();
  }

  /** @internal */
  private _command(
    kind: "ssubscribe" | "sunsubscribe",
    name: string,
    channels: readonly string[],
  ): Promise<void> {
    if (channels.length === 0) return Promise.resolve();
    if (!this.ready) return Promise.reject(new Error("The pub/sub connection is not connected"));
    const sent: Array<Promise<void>> = [];
    for (let i = 0; i < channels.length; i += CHANNELS_PER_COMMAND) {
      const batch = channels.slice(i, i + CHANNELS_PER_COMMAND);
      const named = kind === "sunsubscribe" ? new Set(batch) : undefined;
      sent.push(
        new Promise((resolve, reject) =>
          this._send([name, ...batch], kind, batch.length, named, resolve, reject),
        ),
      );
    }
    return sent.length === 1 ? sent[0]! : Promise.all(sent).then(() => undefined);
  }

  /** @internal */
  private _send(
    args: readonly string[],
    kind: Pending["kind"],
    remaining: number,
    channels: ReadonlySet<string> | undefined,
    resolve: () => void,
    reject: (error: Error) => void,
  ): void {
    this._pending.push({ kind, remaining, channels, resolve, reject });
    this._socket.write(encodeCommand(args));
  }

  /** @internal */
  private _onPush(push: Push): void {
    const kind = typeof push[0] === "string" ? push[0] : "";
    if (kind !== "ssubscribe" && kind !== "sunsubscribe") return; // nothing else is ours
    const channel = String(push[1]);
    const head = this._pending[0];
    if (
      head !== undefined &&
      head.kind === kind &&
      (kind === "ssubscribe" || head.channels!.has(channel))
    ) {
      if (--head.remaining === 0) {
        this._pending.shift();
        head.resolve();
      }
      return;
    }
    if (kind === "sunsubscribe") this._events.onTakenAway(channel);
  }

  /** @internal */
  private _onReply(reply: unknown): void {
    const head = this._pending.shift();
    if (head === undefined) {
      this._close(
        new Error(`Unexpected reply from Redis on the pub/sub connection: ${String(reply)}`),
      );
      return;
    }
    if (reply instanceof RespError) {
      const error =
        head.kind === "hello" && /unknown command/i.test(reply.message)
          ? new Error(
              `Redis does not speak RESP3 (HELLO: ${reply.message}); sharded pub/sub needs Redis 7 or later`,
            )
          : reply;
      head.reject(error);
      if (head.kind === "hello") this._close(error);
      return;
    }
    head.resolve();
  }

  /** @internal */
  private _close(error: Error): void {
    if (this._closed) return;
    this._closed = true;
    this._ready = false;
    this._failConnect?.(error);
    this._rejectAll(error);
    this._socket.destroy();
    this._reader.reset();
    this._events.onClose(error);
  }

  /** @internal */
  private _rejectAll(error: Error): void {
    const pending = this._pending.splice(0);
    for (const entry of pending) entry.reject(error);
  }
}

/** A command in RESP (an array of bulk strings). */
export function encodeCommand(args: readonly string[]): string {
  let out = `*${args.length}\r\n`;
  for (const arg of args) out += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
  return out;
}
