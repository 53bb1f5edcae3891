/**
 * The dashboard's defences, kept apart from its routes so each can be read and checked alone:
 * the token (configured, or made at start for a local-only dashboard), which requests may act
 * (POST, the token in a header, not cross-site), where a tokenless dashboard may be reached
 * from (this machine only, under a local host name, against DNS rebinding), and the response
 * headers that keep the page's own scripts the only ones that run.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { RhythmValidationError } from '../errors.js';
import { describe } from '../validate.js';

/** The header the page sends its token in (a custom header also forces a CORS preflight cross-site). */
export const TOKEN_HEADER = 'x-rhythm-token';

/** The environment variable holding the dashboard's token. */
export const TOKEN_ENV = 'RHYTHM_DASHBOARD_TOKEN';

const LOCAL_NAMES = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** Whether a bind address or host name stays on this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h === '::1') return true;
  return h.startsWith('::ffff:127.');
}

export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Compares digests, so neither the time taken nor a length mismatch tells anything about the token. */
export function tokenMatches(given: unknown, token: string): boolean {
  if (typeof given !== 'string' || given === '') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/** Headers a reverse proxy adds to say whom it forwards. */
const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip'] as const;

/** The host name of the Host header, without its port. */
function hostName(req: IncomingMessage): string {
  const host = req.headers.host ?? '';
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  return host.split(':')[0]!;
}

/**
 * A dashboard without a configured token answers only its own machine, addressed by a local
 * name: another machine cannot reach it, and a page whose own host name resolves to 127.0.0.1
 * (DNS rebinding) is refused for its Host header, so it can never read the page's token.
 */
export function localOnlyRefusal(req: IncomingMessage): string | null {
  const remote = req.socket.remoteAddress ?? '';
  if (!isLoopback(remote)) return 'this dashboard has no token configured and answers only this machine';
  // A reverse proxy on this machine connects from loopback on behalf of anyone: behind one,
  // the dashboard needs a token of its own.
  for (const header of PROXY_HEADERS) {
    if (req.headers[header] !== undefined)
      return `this dashboard has no token configured and refuses proxied requests (${header}): set RHYTHM_DASHBOARD_TOKEN`;
  }
  if (!LOCAL_NAMES.has(hostName(req).toLowerCase()) && !hostName(req).toLowerCase().endsWith('.localhost')) {
    return 'unexpected Host header: open the dashboard as localhost or 127.0.0.1';
  }
  return null;
}

/**
 * Why a state-changing request looks cross-site, or null. Browsers send Sec-Fetch-Site and
 * Origin on a POST; either naming another site refuses it (the token check comes on top).
 */
export function crossSiteRefusal(req: IncomingMessage): string | null {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `cross-site request refused (Sec-Fetch-Site: ${site})`;
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      return 'cross-site request refused (unreadable Origin)';
    }
    if (host !== req.headers.host) return 'cross-site request refused (Origin is another site)';
  }
  return null;
}

/** Scripts, styles and fetches from the dashboard itself only; no inline script, no framing. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** A dashboard token: at least 16 printable characters without spaces; empty means none. */
export function checkDashboardToken(token: unknown, where: string): string | undefined {
  if (token === undefined || token === '') return undefined;
  if (typeof token !== 'string' || token.length < 16 || !/^[\x21-\x7e]+$/.test(token)) {
    throw new RhythmValidationError(
      `${where} must be at least 16 printable characters without spaces, got ${typeof token === 'string' ? `${token.length} characters` : describe(token)}`,
    );
  }
  return token;
}
