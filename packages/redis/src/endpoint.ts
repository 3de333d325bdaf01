/**
 * Where and how the pub/sub connection (pubsub-connection.ts) connects: taken from a node-redis
 * client's options, so that it reaches the same server with the same credentials and TLS as the
 * command connection, whichever way the app configured it (a URL, `socket` options, `username`
 * and `password`, a credentials provider; a cluster's node connections carry its `defaults`).
 */
import net from "node:net";
import tls from "node:tls";

export interface Credentials {
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

export interface Endpoint {
  /** Opens the socket (TCP, TLS or a Unix socket). */
  connect(): net.Socket;
  /** Asked on every connection, so that rotated credentials are used. */
  credentials(): Promise<Credentials>;
  readonly connectTimeout: number;
  /** The client name (`CLIENT LIST` shows it). */
  readonly name: string;
  /** `host:port` or the socket path, for error messages. */
  readonly address: string;
}

/** node-redis's client options, as far as a connection's address and credentials go. */
interface ClientOptions {
  readonly socket?: Record<string, unknown> & {
    readonly host?: string;
    readonly port?: number;
    readonly path?: string;
    readonly tls?: boolean;
    readonly connectTimeout?: number;
  };
  readonly username?: string;
  readonly password?: string;
  readonly credentialsProvider?: CredentialsProvider;
}

type CredentialsProvider =
  | { readonly type: "async-credentials-provider"; credentials(): Promise<Credentials> }
  | {
      readonly type: "streaming-credentials-provider";
      subscribe(listener: object): Promise<[Credentials, { dispose(): void }]>;
    };

/** node-redis socket options that are its own, not `net`/`tls` connect options. */
const CLIENT_SOCKET_OPTIONS = [
  "tls",
  "reconnectStrategy",
  "connectTimeout",
  "socketTimeout",
  "keepAliveInitialDelay",
];

/**
 * The endpoint of a node-redis client (`client.options`), at `address` instead of the client's own
 * when given (a cluster node).
 */
export function endpointOf(
  options: ClientOptions | undefined,
  name: string,
  address?: { readonly host: string; readonly port: number },
): Endpoint {
  const socket = options?.socket ?? {};
  const connectOptions: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(socket)) {
    if (!CLIENT_SOCKET_OPTIONS.includes(key) && value !== undefined) connectOptions[key] = value;
  }
  const useTls = socket.tls === true;
  const path = address === undefined ? socket.path : undefined;
  const host = address?.host ?? socket.host ?? "localhost";
  const port = address?.port ?? socket.port ?? 6379;
  if (address !== undefined) delete connectOptions["path"];
  const keepAlive = {
    keepAlive: socket["keepAlive"] ?? true,
    keepAliveInitialDelay: (socket["keepAliveInitialDelay"] as number | undefined) ?? 5000,
  };
  const connect = (): net.Socket => {
    if (path !== undefined)
      return net.connect({ ...connectOptions, path } as net.IpcNetConnectOpts);
    const target = { ...connectOptions, ...keepAlive, host, port };
    if (useTls) {
      // As node-redis does it: the host as SNI server name unless given (never for an IP address).
      const servername =
        (connectOptions["servername"] as string | undefined) ??
        (net.isIP(host) === 0 ? host : undefined);
      return tls.connect({ ...target, servername } as tls.ConnectionOptions);
    }
    return net.connect(target as net.TcpNetConnectOpts);
  };
  return {
    connect,
    credentials: () => credentialsOf(options),
    connectTimeout: socket.connectTimeout ?? 5000,
    name,
    address: path ?? `${host}:${port}`,
  };
}

async function credentialsOf(options: ClientOptions | undefined): Promise<Credentials> {
  const provider = options?.credentialsProvider;
  if (provider === undefined) return { username: options?.username, password: options?.password };
  if (provider.type === "async-credentials-provider") return provider.credentials();
  // A streaming provider (token rotation): the current credentials; a new connection asks again.
  const [credentials, subscription] = await provider.subscribe({
    onNext: () => undefined,
    onError: () => undefined,
  });
  subscription.dispose();
  return credentials;
}
