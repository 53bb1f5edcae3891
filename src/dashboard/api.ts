/**
 * The dashboard's JSON endpoints: each reads or acts through the Rhythm admin API and answers
 * plain JSON, so the page holds no logic the library does not already check. Reads are GETs;
 * actions are POSTs (the caller checks their token and origin before they get here).
 */
import type { Rhythm } from '../rhythm.js';
import type { ExecutionFilter } from '../admin.js';
import type { ExecutionStatus } from '../types.js';
import { RhythmValidationError } from '../errors.js';

export interface ApiRequest {
  method: string;
  /** Path below the API root, split on '/', each part URL-decoded. */
  parts: string[];
  query: URLSearchParams;
  body: unknown;
  /** How often the page refreshes: an overview is shared for at most half of it. */
  pollMs: number;
}

export class NotFound extends Error {}

/** Query-string text, or undefined when absent or empty. */
function text(q: URLSearchParams, key: string): string | undefined {
  const v = q.get(key);
  return v === null || v === '' ? undefined : v;
}

function limit(q: URLSearchParams): number | undefined {
  const v = text(q, 'limit');
  if (v === undefined) return undefined;
  if (!/^\d{1,6}$/.test(v)) throw new RhythmValidationError(`limit must be a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

function since(v: unknown): Date | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const d = typeof v === 'string' ? new Date(v) : undefined;
  if (!d || Number.isNaN(d.getTime())) throw new RhythmValidationError(`since must be a date and time, got ${JSON.stringify(v)}`);
  return d;
}

/** A filter from query parameters or a JSON body (status: one or a comma-separated list). */
function filterFrom(source: Record<string, unknown>): ExecutionFilter {
  const f: ExecutionFilter = {};
  for (const key of Object.keys(source)) {
    if (!['queue', 'name', 'status', 'since'].includes(key))
      throw new RhythmValidationError(`unknown filter ${JSON.stringify(key)} (known: queue, name, status, since)`);
  }
  const str = (k: string) => {
    const v = source[k];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string' && !(k === 'status' && Array.isArray(v)))
      throw new RhythmValidationError(`filter ${k} must be text, got ${typeof v}`);
    return v;
  };
  const queue = str('queue');
  if (queue !== undefined) f.queue = queue as string;
  const name = str('name');
  if (name !== undefined) f.name = name as string;
  const status = str('status');
  if (status !== undefined) f.status = (Array.isArray(status) ? status : status.split(',')) as ExecutionStatus[];
  const s = since(source.since);
  if (s) f.since = s;
  return f;
}

function bodyObject(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new RhythmValidationError('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

/**
 * The Queues page refreshes every pollMs in each open tab, and an overview counts every queue
 * and reads an hour of activity: tabs (and dashboards of several users) share one read for up
 * to half a refresh interval, capped at a second, so the reads stay at most two per interval
 * however many tabs are open, and a page is never more than half an interval behind.
 */
const OVERVIEW_MAX_AGE_MS = 1_000;
const overviews = new WeakMap<Rhythm, { at: number; value: ReturnType<typeof readOverview> }>();

/** An overview read at most maxAgeMs ago, read once for concurrent requests. */
function overview(r: Rhythm, maxAgeMs: number) {
  const cached = overviews.get(r);
  if (cached && performance.now() - cached.at < maxAgeMs) return cached.value;
  const value = readOverview(r);
  overviews.set(r, { at: performance.now(), value });
  // A failed read is not kept: the next request tries again.
  value.catch(() => overviews.get(r)?.value === value && overviews.delete(r));
  return value;
}

/** Everything the Queues page shows, per queue: counts, controls, and the last hour's minutes. */
async function readOverview(r: Rhythm) {
  const [status, controls, metrics] = await Promise.all([r.status(), r.queueControls(), r.queueActivity()]);
  const names = new Set([...status.queues.map((q) => q.queue), ...controls.queues.map((c) => c.queue), ...metrics.map((m) => m.queue)]);
  const queues = [...names].sort().map((queue) => {
    const s = status.queues.find((q) => q.queue === queue);
    const c = controls.queues.find((q) => q.queue === queue);
    const m = metrics.find((q) => q.queue === queue);
    return {
      queue,
      scheduled: s?.scheduled ?? 0,
      queued: s?.queued ?? 0,
      running: s?.running ?? 0,
      completed: s?.completed ?? 0,
      failed: s?.failed ?? 0,
      cancelled: s?.cancelled ?? 0,
      oldestWaitingMs: s?.oldestWaitingMs ?? null,
      tasks: s?.tasks ?? [],
      paused: c?.paused ?? false,
      pausedAt: c?.pausedAt ?? null,
      rateLimit: c?.rateLimit ?? null,
      availableStarts: c?.availableStarts ?? null,
      minutes: m?.minutes ?? [],
      waitP50Ms: m?.waitP50Ms ?? null,
      waitP99Ms: m?.waitP99Ms ?? null,
    };
  });
  return { at: status.at, windowMs: status.windowMs, queues, groupsAtLimit: controls.groupsAtLimit };
}

async function detail(r: Rhythm, id: string) {
  const execution = await r.get(id);
  if (!execution) throw new NotFound(`no execution ${id}`);
  const [workflow, parent] = await Promise.all([
    execution.kind === 'workflow' ? r.workflowDetails(id) : null,
    execution.parentId ? r.get(execution.parentId) : null,
  ]);
  return {
    execution,
    workflow,
    parent: parent && { id: parent.id, kind: parent.kind, name: parent.name, queue: parent.queue, status: parent.status },
  };
}

/** Answers one API request, or throws NotFound / RhythmValidationError. */
export async function handleApi(r: Rhythm, req: ApiRequest): Promise<unknown> {
  const [first, second, third, ...rest] = req.parts;
  const q = req.query;
  if (req.method === 'GET') {
    if (first === 'overview' && second === undefined) return overview(r, Math.min(OVERVIEW_MAX_AGE_MS, req.pollMs / 2));
    if (first === 'executions' && second === undefined) {
      return r.list({
        ...filterFrom(Object.fromEntries([...q].filter(([k]) => !['cursor', 'limit'].includes(k)))),
        limit: limit(q),
        cursor: text(q, 'cursor'),
      });
    }
    if (first === 'executions' && second !== undefined && third === undefined) return detail(r, second);
    if (first === 'schedules' && second === undefined) return { schedules: await r.schedules() };
    if (first === 'workflows' && second === undefined) return r.listWorkflows({ limit: limit(q), cursor: text(q, 'cursor') });
    throw new NotFound('no such endpoint');
  }
  if (req.method === 'POST' && rest.length === 0) {
    try {
      return await act(r, first, second, third, bodyObject(req.body));
    } finally {
      // An action changes what the Queues page shows: its next refresh reads afresh.
      overviews.delete(r);
    }
  }
  throw new NotFound('no such endpoint');
}

/** One action (POST): retry, cancel, pause or resume. */
async function act(r: Rhythm, first?: string, second?: string, third?: string, body: Record<string, unknown> = {}): Promise<unknown> {
  if (first === 'executions' && second !== undefined && third === undefined) {
    // Bulk: /executions/retry or /executions/cancel with a filter body.
    if (second === 'retry') return r.retry(filterFrom(body));
    if (second === 'cancel') return r.cancel(filterFrom(body));
  }
  if (first === 'executions' && second !== undefined && third === 'retry') return r.retry([second]);
  if (first === 'executions' && second !== undefined && third === 'cancel') return r.cancel([second]);
  if (first === 'queues' && second !== undefined && third === 'pause') return { queue: second, pausedAt: await r.pause(second) };
  if (first === 'queues' && second !== undefined && third === 'resume') return { queue: second, resumed: await r.resume(second) };
  throw new NotFound('no such endpoint');
}
