/**
 * The dashboard's server without a browser: its refusals (no token beyond this machine,
 * actions without the token or from another site, another Host), its headers, that the
 * database URL never reaches a response, mounting under a path, and the admin reads it added
 * (queueActivity, listWorkflows).
 */
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Rhythm, RhythmValidationError, Worker, dashboardHandler, startDashboard, type DashboardServer } from 'rhythm';
import { freshRhythm, type TestDatabase } from './helpers.js';
import { killAll, removeScratch, runCli, spawnCli } from './fixtures/cli-tasks/harness/cli.js';

let db: TestDatabase;
let r: Rhythm;
let dash: DashboardServer;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
  dash = await startDashboard(r, { port: 0 });
  stops.push(() => dash.close());
});

afterAll(async () => {
  await killAll();
  removeScratch();
  for (const stop of stops.reverse()) await stop();
  await r?.shutdown();
  await db?.drop();
});

/** A raw request, so Host, Origin and Sec-Fetch-Site can be anything. */
function request(port: number, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const post = (port: number, path: string, headers: Record<string, string>, body = '{}') =>
  request(port, path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

describe('dashboard server', () => {
  it('refuses to bind beyond this machine without a token, and refuses a short token', async () => {
    const saved = process.env.RHYTHM_DASHBOARD_TOKEN;
    delete process.env.RHYTHM_DASHBOARD_TOKEN;
    try {
      await expect(startDashboard(r, { port: 0, host: '0.0.0.0' })).rejects.toThrow(/set a token \(RHYTHM_DASHBOARD_TOKEN/);
      await expect(startDashboard(r, { port: 0, host: '0.0.0.0', token: 'short' })).rejects.toThrow(RhythmValidationError);
    } finally {
      if (saved !== undefined) process.env.RHYTHM_DASHBOARD_TOKEN = saved;
    }
  });

  it('serves the page with its made token and a strict CSP, and never the database URL', async () => {
    const page = await request(dash.port, '/?from=bookmark', { headers: { host: `127.0.0.1:${dash.port}` } });
    expect(page.status).toBe(200);
    expect(page.body).toContain(`content="${dash.token}"`);
    expect(page.headers['content-security-policy']).toMatch(/script-src 'self'/);
    expect(page.headers['content-security-policy']).not.toMatch(/unsafe-inline/);
    expect(page.headers['x-frame-options']).toBe('DENY');
    const id = await r.enqueue('t', { x: 1 }, { queue: 'api-q' });
    const secret = new URL(db.url);
    for (const path of ['/', '/api/overview', `/api/executions/${id}`, '/api/executions?queue=api-q', '/api/schedules', '/api/workflows']) {
      const res = await request(dash.port, path, { headers: { host: `localhost:${dash.port}` } });
      expect(res.status, path).toBe(200);
      expect(res.body).not.toContain(db.url);
      expect(res.body).not.toContain(`${secret.hostname}:${secret.port}`);
      if (secret.password) expect(res.body).not.toContain(secret.password);
    }
  });

  it('without a configured token, refuses requests a reverse proxy forwards (and never shows them the page)', async () => {
    for (const header of ['x-forwarded-for', 'forwarded', 'x-real-ip']) {
      const res = await request(dash.port, '/', { headers: { host: `127.0.0.1:${dash.port}`, [header]: '203.0.113.9' } });
      expect(res.status, header).toBe(403);
      expect(res.body, header).not.toContain(dash.token);
      expect(res.body, header).toContain('RHYTHM_DASHBOARD_TOKEN');
    }
  });

  it('refuses actions without the token, with a wrong one, or from another site', async () => {
    const host = { host: `127.0.0.1:${dash.port}` };
    expect((await post(dash.port, '/api/queues/api-q/pause', host)).status).toBe(403);
    expect((await post(dash.port, '/api/queues/api-q/pause', { ...host, 'x-rhythm-token': 'x'.repeat(32) })).status).toBe(403);
    const token = { ...host, 'x-rhythm-token': dash.token };
    expect((await post(dash.port, '/api/queues/api-q/pause', { ...token, origin: 'http://evil.example' })).status).toBe(403);
    expect((await post(dash.port, '/api/queues/api-q/pause', { ...token, 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    // A form post cannot set the JSON content type (or the header): refused as well.
    expect(
      (
        await request(dash.port, '/api/queues/api-q/pause', {
          method: 'POST',
          headers: { ...token, 'content-type': 'text/plain' },
          body: '{}',
        })
      ).status,
    ).toBe(415);
    expect((await request(dash.port, '/api/queues/api-q/pause', { method: 'GET', headers: token })).status).toBe(404);
    expect((await r.queueControls()).queues.find((q) => q.queue === 'api-q')).toBeUndefined();

    const ok = await post(dash.port, '/api/queues/api-q/pause', {
      ...token,
      origin: `http://127.0.0.1:${dash.port}`,
      'sec-fetch-site': 'same-origin',
    });
    expect(ok.status).toBe(200);
    expect((await r.queueControls()).queues.find((q) => q.queue === 'api-q')?.paused).toBe(true);
    expect((await post(dash.port, '/api/queues/api-q/resume', token)).status).toBe(200);
    expect((await r.queueControls()).queues.find((q) => q.queue === 'api-q')).toBeUndefined();
  });

  it('shares one overview read between quick refreshes, and shows an action in the next one', async () => {
    const headers = { host: `127.0.0.1:${dash.port}`, 'x-rhythm-token': dash.token };
    const overview = async () => JSON.parse((await request(dash.port, '/api/overview', { headers })).body);
    const paused = (o: { queues: { queue: string; paused: boolean }[] }) => o.queues.find((q) => q.queue === 'cache-q')?.paused ?? false;
    const [a, b] = await Promise.all([overview(), overview()]);
    expect(b.at).toBe(a.at);
    expect(paused(a)).toBe(false);
    expect((await post(dash.port, '/api/queues/cache-q/pause', headers)).status).toBe(200);
    expect(paused(await overview())).toBe(true);
    expect((await post(dash.port, '/api/queues/cache-q/resume', headers)).status).toBe(200);
    expect(paused(await overview())).toBe(false);
  });

  it('answers validation errors with their message, and a request under another host name with 403', async () => {
    const bad = await request(dash.port, '/api/executions?status=nope', { headers: { host: `localhost:${dash.port}` } });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toMatch(/unknown status "nope"/);
    const crossRead = await request(dash.port, '/api/overview', {
      headers: { host: `localhost:${dash.port}`, 'sec-fetch-site': 'cross-site' },
    });
    expect(crossRead.status).toBe(403);
    const rebound = await request(dash.port, '/', { headers: { host: `attacker.example:${dash.port}` } });
    expect(rebound.status).toBe(403);
    expect(rebound.body).not.toContain(dash.token);
  });

  it('with a configured token, reads need it too and the page does not carry it', async () => {
    const token = 'configured-token-0123456789';
    const guarded = await startDashboard(r, { port: 0, token });
    stops.push(() => guarded.close());
    const host = { host: `127.0.0.1:${guarded.port}` };
    const page = await request(guarded.port, '/', { headers: host });
    expect(page.status).toBe(200);
    expect(page.body).not.toContain(token);
    expect((await request(guarded.port, '/api/overview', { headers: host })).status).toBe(403);
    expect((await request(guarded.port, '/api/overview', { headers: { ...host, 'x-rhythm-token': token } })).status).toBe(200);
  });

  it('mounts under a path in an existing server, passing other requests on', async () => {
    const handler = dashboardHandler(r, { basePath: '/rhythm' });
    const server = http.createServer((req, res) =>
      handler(req, res, () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('app');
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    stops.push(() => new Promise((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;
    const host = { host: `127.0.0.1:${port}` };
    expect((await request(port, '/other', { headers: host })).body).toBe('app');
    expect((await request(port, '/rhythm', { headers: host })).status).toBe(308);
    const page = await request(port, '/rhythm/', { headers: host });
    expect(page.body).toContain('static/app.js');
    expect((await request(port, '/rhythm/static/chart.umd.min.js', { headers: host })).body).toMatch(/Chart/);
    expect(JSON.parse((await request(port, '/rhythm/api/overview', { headers: host })).body).queues).toBeInstanceOf(Array);
  });
});

describe('rhythm dashboard', () => {
  it('refuses to bind beyond this machine without a token, before connecting', async () => {
    const res = await runCli(['dashboard', '--database-url', 'postgres://nobody@127.0.0.1:1/none', '--host', '0.0.0.0']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/refusing to serve the dashboard on 0\.0\.0\.0 without a token: set RHYTHM_DASHBOARD_TOKEN/);
  });

  it('serves the dashboard, prints its address, and stops on SIGTERM', async () => {
    const p = spawnCli(['dashboard', '--database-url', db.url, '--port', '0']);
    const line = await p.waitForLine('stdout', (l) => l.startsWith('Rhythm dashboard: '));
    const url = line.slice('Rhythm dashboard: '.length).trim();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const res = await fetch(`${url}api/overview`);
    expect(res.status).toBe(200);
    expect(await res.text()).not.toContain(db.url);
    expect((await p.stop('SIGTERM')).code).toBe(0);
  });
});

describe('admin reads for the dashboard', () => {
  it('queueActivity counts completions and failures per minute, with waits', async () => {
    const w = new Worker(r, { queue: 'metrics-q', concurrency: 4 });
    w.task('ok', async () => 'fine');
    w.task('bad', async () => {
      throw new Error('no');
    });
    const started = w.start();
    stops.push(async () => {
      await w.stop();
      await started;
    });
    const ids = [
      ...(await r.enqueueMany(Array.from({ length: 5 }, () => ({ name: 'ok', payload: null, options: { queue: 'metrics-q' } })))),
      await r.enqueue('bad', null, { queue: 'metrics-q', maxAttempts: 1 }),
    ];
    await r.waitMany(ids);
    const m = (await r.queueActivity()).find((q) => q.queue === 'metrics-q')!;
    expect(m.minutes.reduce((s, x) => s + x.completed, 0)).toBe(5);
    expect(m.minutes.reduce((s, x) => s + x.failed, 0)).toBe(1);
    expect(m.waitP50Ms).toBeGreaterThanOrEqual(0);
    expect(m.waitP99Ms).toBeGreaterThanOrEqual(m.waitP50Ms!);
    await expect(r.queueActivity({ windowMs: 5 })).rejects.toThrow(/windowMs/);
  });

  it('listWorkflows pages workflows newest first by cursor, each with what it waits for', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rhythm-dash-'));
    const file = path.join(dir, 'inbox.flow');
    writeFileSync(file, 'const m = await Signal.next("go");\nreturn m;\n');
    const w = new Worker(r, { queue: 'wf-q' });
    w.workflow('inbox', file);
    const started = w.start();
    stops.push(async () => {
      await w.stop();
      await started;
      rmSync(dir, { recursive: true, force: true });
    });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await r.startWorkflow('inbox', { i }, { queue: 'wf-q' }));
    await vi.waitFor(async () => {
      const d = await r.workflowDetails(ids[0]!);
      expect(d?.waitingOn.signals).toEqual(['go']);
    });
    const first = await r.listWorkflows({ limit: 2 });
    expect(first.items.map((w) => w.execution.id)).toEqual([ids[2], ids[1]]);
    expect(first.nextCursor).not.toBeNull();
    const second = await r.listWorkflows({ limit: 2, cursor: first.nextCursor });
    expect(second.items.map((w) => w.execution.id)).toEqual([ids[0]]);
    expect(second.nextCursor).toBeNull();
    expect(second.items[0]!.waitingOn.signals).toEqual(['go']);
    expect(await r.workflowDetails(ids[0]!)).toMatchObject({ activations: 1, children: [] });
    expect(await r.workflowDetails(first.items[0]!.execution.id)).not.toBeNull();
    await expect(r.listWorkflows({ cursor: 'garbage!' })).rejects.toThrow(/invalid cursor/);
  });
});
