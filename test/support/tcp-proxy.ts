/**
 * A TCP proxy between Rhythm and Postgres that can fail like a network: blackhole() cuts the
 * server side of every open connection without telling the clients (their sockets stay open
 * and silent: what they send is dropped, nothing ever comes back), and holds new connections
 * the same way; restore() forwards new connections again. Connections silenced by a
 * blackhole stay silent: only a client's own timeouts can free it from them. down() is a
 * server that is gone: open connections are closed and new ones refused, until up().
 */
import net from 'node:net';

export class TcpProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private dark = false;
  /** Connections accepted so far. */
  accepted = 0;

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(targetUrl: string): Promise<TcpProxy> {
    const u = new URL(targetUrl);
    const proxy = new TcpProxy({ host: u.hostname, port: Number(u.port || 5432) });
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.listeningPort = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  private listeningPort = 0;

  get port(): number {
    return this.listeningPort;
  }

  /** `url` with its host and port replaced by the proxy's. */
  via(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  blackhole(): void {
    this.dark = true;
    for (const s of this.sockets) {
      if ((s as Silenced).upstream) this.silence(s);
    }
  }

  restore(): void {
    this.dark = false;
  }

  async down(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) {
      (s as Silenced).upstream?.destroy();
      s.destroy();
    }
    await closed;
  }

  async up(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(this.listeningPort, '127.0.0.1', resolve));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) {
      (s as Silenced).upstream?.destroy();
      s.destroy();
    }
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Silenced): void {
    this.accepted++;
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => undefined);
    if (this.dark) {
      client.resume(); // read and drop: the client sees an open, silent socket
      return;
    }
    const upstream = net.connect(this.target.port, this.target.host);
    client.upstream = upstream;
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => {
      if (client.upstream === upstream) client.destroy();
    });
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private silence(client: Silenced): void {
    const upstream = client.upstream!;
    client.upstream = undefined;
    client.unpipe(upstream);
    upstream.unpipe(client);
    upstream.destroy();
    client.resume();
  }
}

type Silenced = net.Socket & { upstream?: net.Socket };
