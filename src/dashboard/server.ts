/**
 * The web dashboard: a node (req, res) handler to mount in an existing HTTP server
 * (dashboardHandler) and a standalone server (startDashboard, `rhythm dashboard`, `npm start
 * -- --dashboard`). It serves one page, its script and style, Chart.js, and the JSON API of
 * api.ts, with the defences of security.ts:
 *
 * - With a token (options.token or RHYTHM_DASHBOARD_TOKEN), every API request must carry it;
 *   the page asks for it (or takes it from the URL's #token=...) and never has it embedded.
 * - Without one, the dashboard answers this machine only, and makes a random token at start
 *   that its own page carries, so actions still need a token a cross-site page cannot know.
 * - Actions are POSTs with the token in a header; any API request is refused when Origin or
 *   Sec-Fetch-Site name another site. The database URL never leaves the server; errors other than validation
 *   errors reach the page as "internal error" only.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Rhythm } from '../rhythm.js';
import { RhythmValidationError } from '../errors.js';
import { checkKnownKeys, describe } from '../validate.js';
import { asset, checkAssets } from './assets.js';
import { handleApi, NotFound } from './api.js';
import {
  SECURITY_HEADERS,
  TOKEN_ENV,
  TOKEN_HEADER,
  checkDashboardToken,
  crossSiteRefusal,
  isLoopback,
  localOnlyRefusal,
  newToken,
  tokenMatches,
} from './security.js';

export interface DashboardOptions {
  /**
   * Required from every API request when set (default: RHYTHM_DASHBOARD_TOKEN). Without one,
   * the dashboard answers local requests only and makes a token for its own page's actions.
   */
  token?: string;
  /** Path the handler is mounted under, such as '/rhythm' (default: the root). */
  basePath?: string;
  /** How often the Queues page refreshes, in milliseconds (default 3000). */
  pollMs?: number;
}

export type DashboardHandler = ((req: IncomingMessage, res: ServerResponse, next?: () => void) => void) & {
  /** The token actions need: the configured one, or the one made for this handler. */
  readonly token: string;
  /** Whether the token was configured (then reads need it too) rather than made here. */
  readonly tokenConfigured: boolean;
};

export interface StartDashboardOptions extends DashboardOptions {
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. Any other address requires a token. */
  host?: string;
}

export interface DashboardServer {
  /**
   * The page's address. With a configured token, the page asks for it, or takes it from the
   * address as url + '#token=...' (a fragment: never sent to the server or kept in its logs).
   */
  url: string;
  port: number;
  host: string;
  token: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;

function checkBasePath(base: unknown): string {
  if (base === undefined || base === '' || base === '/') return '';
  if (typeof base !== 'string' || !/^(\/[A-Za-z0-9._~-]+)+$/.test(base)) {
    throw new RhythmValidationError(`basePath must look like /rhythm (letters, digits, . _ ~ -), got ${describe(base)}`);
  }
  return base;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'cache-control': 'no-store', ...extra });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new RhythmValidationError(`request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve(undefined);
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new RhythmValidationError('the request body is not valid JSON'));
      }
    });
    req.on('error', reject);
  });
}

/** The page, with the poll interval and (for a tokenless dashboard only) the made token. */
function page(embeddedToken: string | null, pollMs: number): Buffer {
  const html = asset('index.html')!.body.toString('utf8');
  // Both values are base64url or digits: nothing in them can leave the attribute.
  return Buffer.from(html.replace('__RHYTHM_TOKEN__', embeddedToken ?? '').replace('__RHYTHM_POLL_MS__', String(pollMs)), 'utf8');
}

/** A node (req, res[, next]) handler serving the dashboard for this Rhythm. */
export function dashboardHandler(r: Rhythm, options: DashboardOptions = {}): DashboardHandler {
  checkKnownKeys('dashboardHandler', options, ['token', 'basePath', 'pollMs']);
  const configured = checkDashboardToken(options.token ?? process.env[TOKEN_ENV], options.token !== undefined ? 'option token' : TOKEN_ENV);
  const base = checkBasePath(options.basePath);
  const pollMs = options.pollMs ?? 3_000;
  if (!Number.isInteger(pollMs) || pollMs < 200 || pollMs > 600_000)
    throw new RhythmValidationError(`pollMs must be an integer from 200 to 600000, got ${describe(options.pollMs)}`);
  checkAssets();
  const token = configured ?? newToken();
  const body = page(configured ? null : token, pollMs);

  const serve = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    if (!configured) {
      const refusal = localOnlyRefusal(req);
      if (refusal) return sendJson(res, 403, { error: refusal });
    }
    const pathname = path.split('?')[0]!;
    if (pathname === '/' || pathname === '/index.html') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' });
      return send(res, 200, 'text/html; charset=utf-8', body);
    }
    if (pathname.startsWith('/static/')) {
      const a = asset(pathname.slice('/static/'.length));
      if (!a || req.method !== 'GET') return sendJson(res, 404, { error: 'not found' });
      return send(res, 200, a.type, a.body, { 'cache-control': 'no-cache' });
    }
    if (!pathname.startsWith('/api/')) return sendJson(res, 404, { error: 'not found' });
    const acting = req.method !== 'GET';
    if (acting && req.method !== 'POST') return sendJson(res, 405, { error: 'method not allowed' });
    // Reads too: no other site has any business with this API, even where it could not read the answer.
    const refusal = crossSiteRefusal(req);
    if (refusal) return sendJson(res, 403, { error: refusal });
    if (acting) {
      if (!(req.headers['content-type'] ?? '').startsWith('application/json'))
        return sendJson(res, 415, { error: 'actions take a JSON body (content-type: application/json)' });
    }
    if ((acting || configured) && !tokenMatches(req.headers[TOKEN_HEADER], token)) {
      return sendJson(res, 403, { error: `missing or wrong token (send it in the ${TOKEN_HEADER} header)` });
    }
    const url = new URL(path, 'http://dashboard');
    let parts: string[];
    try {
      parts = url.pathname.slice('/api/'.length).split('/').map(decodeURIComponent);
    } catch {
      return sendJson(res, 400, { error: 'malformed path' });
    }
    const result = await handleApi(r, {
      method: req.method!,
      parts,
      query: url.searchParams,
      body: acting ? await readBody(req) : undefined,
      pollMs,
    });
    sendJson(res, 200, result);
  };

  const handler = (req: IncomingMessage, res: ServerResponse, next?: () => void): void => {
    const raw = req.url ?? '/';
    const pathOnly = raw.split('?')[0]!;
    if (base && pathOnly === base) {
      // Relative links in the page resolve against the folder: /rhythm -> /rhythm/.
      res.writeHead(308, { ...SECURITY_HEADERS, location: `${base}/` });
      res.end();
      return;
    }
    if (base && !raw.startsWith(`${base}/`)) {
      if (next) next();
      else sendJson(res, 404, { error: 'not found' });
      return;
    }
    serve(req, res, raw.slice(base.length)).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (err instanceof RhythmValidationError) return sendJson(res, 400, { error: err.message });
      if (err instanceof NotFound) return sendJson(res, 404, { error: err.message });
      // Anything else may carry connection details: the log has it, the page does not.
      r.log.error({ err }, 'dashboard request failed');
      sendJson(res, 500, { error: 'internal error (see the server log)' });
    });
  };
  return Object.assign(handler, { token, tokenConfigured: configured !== undefined });
}

/**
 * Serves the dashboard on its own HTTP server. Bound to anything but a loopback address it
 * requires a token (option or RHYTHM_DASHBOARD_TOKEN) and refuses to start without one.
 */
export async function startDashboard(r: Rhythm, options: StartDashboardOptions = {}): Promise<DashboardServer> {
  checkKnownKeys('startDashboard', options, ['token', 'basePath', 'pollMs', 'port', 'host']);
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') throw new RhythmValidationError(`host must be an address, got ${describe(options.host)}`);
  const port = options.port ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new RhythmValidationError(`port must be an integer from 0 to 65535, got ${describe(options.port)}`);
  const token = checkDashboardToken(options.token ?? process.env[TOKEN_ENV], options.token !== undefined ? 'option token' : TOKEN_ENV);
  if (!isLoopback(host) && token === undefined) {
    throw new RhythmValidationError(
      `the dashboard binds ${host}, which other machines can reach: set a token (${TOKEN_ENV} or the token option) or bind 127.0.0.1`,
    );
  }
  const handler = dashboardHandler(r, { token, basePath: options.basePath, pollMs: options.pollMs });
  const server = http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const base = checkBasePath(options.basePath);
  return {
    url: `http://${shown}:${bound}${base}/`,
    port: bound,
    host,
    token: handler.token,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
