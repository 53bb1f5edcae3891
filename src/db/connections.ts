/**
 * How every connection Rhythm opens is configured (the pools and the LISTEN connection), so
 * that none can hang forever on a dead network:
 * - TCP keepalive, so the kernel notices a peer that vanished (a host that went away);
 * - a connect timeout, for a server that accepts connections but never answers;
 * - statement_timeout on the server, so a slow statement is cancelled and rolled back there;
 * - a client-side read timeout a little longer than that, for a connection that went silent
 *   (a blackholed network, a frozen server): keepalive cannot see it when something between
 *   us and the server (a proxy, a NAT) still answers for the peer. A timed-out client is
 *   discarded, and the next statement gets a fresh connection.
 */
import pg from 'pg';

export interface ConnectionTimeouts {
  /** Most time to open a connection (TCP, TLS, authentication). */
  connectMs: number;
  /** Most time one statement may run. */
  queryMs: number;
}

export const DEFAULT_TIMEOUTS: ConnectionTimeouts = { connectMs: 10_000, queryMs: 30_000 };
const KEEPALIVE_IDLE_MS = 10_000;

/** The client-side wait for an answer: the statement's own limit, plus time for it to arrive. */
export function readTimeoutMs(queryMs: number): number {
  return queryMs + Math.min(queryMs, 5_000);
}

export function clientConfig(connectionString: string, t: ConnectionTimeouts): pg.ClientConfig {
  return {
    connectionString,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
    connectionTimeoutMillis: t.connectMs,
    statement_timeout: t.queryMs,
    query_timeout: readTimeoutMs(t.queryMs),
  };
}

/**
 * A pool whose connections time out as above. The connect timeout is the client's own, not
 * the pool's: pg-pool would also apply its timeout to waiting for a free connection, which
 * under a burst of calls is a queue, not a fault.
 */
export function createPool(connectionString: string, t: ConnectionTimeouts, options: pg.PoolConfig): pg.Pool {
  const config = clientConfig(connectionString, t);
  class TimedClient extends pg.Client {
    constructor(c?: pg.ClientConfig) {
      super({ ...c, connectionTimeoutMillis: t.connectMs });
    }
  }
  return new pg.Pool({ ...config, ...options, connectionTimeoutMillis: 0, Client: TimedClient });
}
