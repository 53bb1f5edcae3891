/**
 * A small HTTP server for Prometheus to scrape: GET /metrics answers with the registry's text
 * format, anything else gets 404 (405 for another method on /metrics). Plain node:http, so
 * serving metrics adds no framework; it listens on 127.0.0.1 unless told otherwise, since
 * metrics name queues and tasks.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RhythmError, RhythmValidationError } from '../errors.js';
import { checkInt, checkKnownKeys, describe } from '../validate.js';

export interface MetricsServerOptions {
  /** TCP port (default 9464; 0 picks a free one, see MetricsServer.port). */
  port?: number;
  /** Address to listen on (default 127.0.0.1; "0.0.0.0" for every interface). */
  host?: string;
}

export interface MetricsServer {
  /** The port it listens on (the one picked, for port 0). */
  readonly port: number;
  readonly host: string;
  /** http://host:port/metrics */
  readonly url: string;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/** What the server serves: anything with the text and its content type (RhythmMetrics, or a prom-client Registry wrapper). */
export interface MetricsSource {
  text(): Promise<string>;
  readonly contentType: string;
}

export const DEFAULT_METRICS_PORT = 9464;
export const DEFAULT_METRICS_HOST = '127.0.0.1';

/** Starts serving `source` at /metrics; resolves once listening (rejects if the port is taken). */
export async function startMetricsServer(source: MetricsSource, options: MetricsServerOptions = {}): Promise<MetricsServer> {
  if (options === null || typeof options !== 'object')
    throw new RhythmValidationError(`metrics server options must be an object, got ${describe(options)}`);
  checkKnownKeys('startMetricsServer', options, ['port', 'host']);
  const port = checkInt('port', options.port, 0, 65_535) ?? DEFAULT_METRICS_PORT;
  const host = options.host ?? DEFAULT_METRICS_HOST;
  if (typeof host !== 'string' || host.trim() === '')
    throw new RhythmValidationError(`option host must be a non-empty string, got ${describe(host)}`);

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    source.text().then(
      (body) => {
        res.writeHead(200, { 'content-type': source.contentType });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        // The scraper gets no detail (an error message can carry internals); the owner gets it.
        process.emitWarning(`rhythm metrics: could not collect the metrics: ${(err as Error)?.message ?? String(err)}`);
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('could not collect the metrics\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error) => reject(new RhythmError(`cannot serve metrics on ${host}:${port}: ${err.message}`, { cause: err }));
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port: bound,
    host,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
