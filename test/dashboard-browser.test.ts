/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core): the Queues
 * page's counts and their live update, filtering and paging executions, a failure's stack,
 * retry, cancel, pause and bulk actions through the page's confirmation dialog, workflows and
 * schedules, and that markup in payloads, names and errors stays text. Skipped, saying so,
 * where no Chromium is installed. With RHYTHM_SCREENSHOTS=1 it also writes the screenshots of
 * docs/dashboard/.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Page } from 'playwright-core';
import { type Rhythm, Worker, startDashboard, type DashboardServer, type TaskContext } from 'rhythm';
import { deferred, freshRhythm, type TestDatabase } from './helpers.js';
import { CHROMIUM, hasChromium, launchChromium } from './support/browser.js';

if (!hasChromium)
  console.log(`dashboard browser tests SKIPPED: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set RHYTHM_CHROMIUM)`);

const SCREENSHOTS = process.env.RHYTHM_SCREENSHOTS === '1';
const SHOTS_DIR = new URL('../docs/dashboard/', import.meta.url);
const XSS_NAME = '<img src=x onerror="window.__xss=5">';
const XSS_PAYLOAD = { html: '<img src=x onerror="window.__xss=1">', script: '<script>window.__xss=2</script>' };
const XSS_ERROR = '<img src=x onerror="window.__xss=3"><script>window.__xss=4</script>';

class FlakyError extends Error {
  override name = 'FlakyError';
}

let db: TestDatabase;
let r: Rhythm;
let dash: DashboardServer;
let page: Page;
let closeBrowser: (() => Promise<void>) | undefined;
let tmp: string;
const stops: (() => Promise<void>)[] = [];
const gates = new Map<string, () => void>();
let flakyFails = true;
/** Native dialogs (alert, confirm) the page opened: an injected script would open one. */
const nativeDialogs: string[] = [];
const pageErrors: string[] = [];

async function hold(p: { key: string }, ctx: TaskContext) {
  const g = deferred();
  gates.set(p.key, () => g.resolve());
  ctx.progress({ waitingFor: p.key });
  await new Promise<void>((resolve, reject) => {
    g.promise.then(resolve);
    ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
  });
  return { released: p.key };
}

async function shot(name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  mkdirSync(SHOTS_DIR, { recursive: true });
  await page.screenshot({ path: new URL(`${name}.png`, SHOTS_DIR).pathname });
}

/**
 * Shows the page at `hash` and waits until it has rendered. Already on the dashboard, it
 * follows the address as a link would (a full load parses Chart.js again: about a second a
 * page on this machine); otherwise, or for the address already shown, it loads the page afresh.
 */
async function open(hash: string): Promise<void> {
  const target = `#${hash}`;
  const here = page.url();
  if (here.startsWith(dash.url) && new URL(here).hash !== target) {
    // Let a render still under way (after a click) finish first: it would mark the new
    // address as rendered when it ends.
    await page.waitForFunction(() => document.body.dataset.route === location.hash);
    await page.evaluate((h) => {
      delete document.body.dataset.route;
      location.hash = h;
    }, target);
  } else {
    await page.goto('about:blank');
    await page.goto(`${dash.url}${target}`);
  }
  await page.waitForFunction((h) => document.body.dataset.route === h, target);
}

/** Clicks the button, checks the confirmation dialog asks `question`, and confirms (or not). */
async function confirmVia(selector: string, question: RegExp, answer: 'yes' | 'no' = 'yes'): Promise<void> {
  await page.click(selector);
  await page.waitForSelector('#confirm[open]');
  expect(await page.textContent('#confirm-text')).toMatch(question);
  await page.click(answer === 'yes' ? '#confirm-yes' : '#confirm-no');
  await page.waitForSelector('#confirm:not([open])', { state: 'attached' });
}

const count = (queue: string, what: string) => page.textContent(`[data-queue="${queue}"] [data-count="${what}"]`);
const headingStatus = () => page.getAttribute('h1 .badge', 'data-status');

describe.skipIf(!hasChromium)('dashboard in Chromium', () => {
  beforeAll(async () => {
    ({ db, r } = await freshRhythm());
    await r.startInternalWorker({ tickMs: 50 });
    tmp = mkdtempSync(path.join(tmpdir(), 'rhythm-dash-'));
    const flow = path.join(tmp, 'approval.flow');
    writeFileSync(
      flow,
      'const made = await Task.run("ok", { step: 1 });\nconst answer = await Signal.next("approve");\nreturn { made, answer };\n',
    );
    const w = new Worker(r, { queue: 'web', concurrency: 8 });
    w.task('ok', async (p: unknown) => ({ ok: true, p }));
    w.task('hold', hold);
    w.task('flaky', async (_p, ctx) => {
      if (flakyFails) throw new FlakyError(`payment service down (attempt ${ctx.attempt})`);
      return { charged: true };
    });
    w.task('boom', async () => {
      throw new Error('the report generator crashed');
    });
    w.task('xss-fail', async () => {
      throw new Error(XSS_ERROR);
    });
    w.workflow('approval', flow);
    const started = w.start();
    stops.push(async () => {
      await w.stop();
      await started;
    });
    await r.schedule('nightly-report', { cron: '0 3 * * *', task: 'ok', queue: 'web', payload: { report: 'daily' } });
    await r.schedule('every-5-minutes', { cron: '*/5 * * * *', task: 'ok', queue: 'web' });
    // Some history for the charts and counts.
    const done = await r.enqueueMany([
      ...Array.from({ length: 30 }, (_, i) => ({ name: 'ok', payload: { i }, options: { queue: 'web' } })),
      ...Array.from({ length: 3 }, (_, i) => ({ name: 'boom', payload: { i }, options: { queue: 'web', maxAttempts: 1 } })),
    ]);
    await r.waitMany(done);
    dash = await startDashboard(r, { port: 0, pollMs: 300 });
    stops.push(() => dash.close());
    const browser = await launchChromium();
    closeBrowser = browser.close;
    page = await browser.context.newPage();
    page.on('dialog', (d) => {
      nativeDialogs.push(d.message());
      void d.dismiss();
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(m.text());
    });
  });

  afterAll(async () => {
    await closeBrowser?.();
    for (const g of gates.values()) g();
    for (const stop of stops.reverse()) await stop();
    await r?.shutdown();
    await db?.drop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('Queues shows the counts of seeded work and updates when a task completes', async () => {
    await r.enqueueMany(Array.from({ length: 3 }, (_, i) => ({ name: 'report', payload: { i }, options: { queue: 'idle' } })));
    const held = await r.enqueue('hold', { key: 'q1' }, { queue: 'web' });
    await vi.waitFor(async () => expect((await r.get(held))?.status).toBe('running'));
    await open('/queues');
    await expect.poll(() => count('idle', 'queued')).toBe('3');
    await expect.poll(() => count('web', 'running')).toBe('1');
    const before = Number(await count('web', 'completed'));
    expect(before).toBeGreaterThanOrEqual(30);
    await shot('queues');
    gates.get('q1')!();
    await r.wait(held);
    // The page polls: no reload.
    await expect.poll(() => count('web', 'completed')).toBe(String(before + 1));
    await expect.poll(() => count('web', 'running')).toBe('0');
    const charted = await page.evaluate(() => {
      const canvas = document.querySelector('[data-queue="web"] canvas') as HTMLCanvasElement;
      const chart = (
        window as unknown as { Chart: { getChart(c: HTMLCanvasElement): { data: { datasets: { data: number[] }[] } } } }
      ).Chart.getChart(canvas);
      return chart.data.datasets[0]!.data.reduce((a, b) => a + b, 0);
    });
    expect(charted).toBe(before + 1);
    expect(await page.textContent('[data-queue="web"] .waits')).toMatch(/wait p50 \d/);
  });

  it('Executions filters by queue, task and status, and pages by cursor', async () => {
    await r.enqueueMany(
      Array.from({ length: 55 }, (_, i) => ({ name: i % 2 ? 'odd' : 'even', payload: { i }, options: { queue: 'paged' } })),
    );
    await open('/executions');
    await page.fill('input[name=queue]', 'paged');
    await page.click('#filters button[type=submit]');
    await expect.poll(() => page.locator('#executions tr[data-id]').count()).toBe(50);
    const queues = await page.locator('#executions tr[data-id] td:nth-child(3)').allTextContents();
    expect(new Set(queues)).toEqual(new Set(['paged']));
    await shot('executions');
    await page.click('#next-page');
    await expect.poll(() => page.locator('#executions tr[data-id]').count()).toBe(5);

    await page.fill('input[name=queue]', 'paged');
    await page.fill('input[name=name]', 'odd');
    await page.selectOption('select[name=status]', 'queued');
    await page.click('#filters button[type=submit]');
    await expect.poll(() => page.locator('#executions tr[data-id]').count()).toBe(27);
    expect(new Set(await page.locator('#executions tr[data-id] td:nth-child(2)').allTextContents())).toEqual(new Set(['odd']));

    await page.selectOption('select[name=status]', 'completed');
    await page.click('#filters button[type=submit]');
    await expect.poll(() => page.locator('#executions tr[data-id]').count()).toBe(0);
  });

  it('a failed execution shows its error with the stack and its attempts; retry from the page completes it', async () => {
    const id = await r.enqueue('flaky', { order: 42 }, { queue: 'web', maxAttempts: 2 });
    await vi.waitFor(async () => expect((await r.get(id))?.status).toBe('failed'), { timeout: 20_000 });
    await open(`/execution/${id}`);
    expect(await headingStatus()).toBe('failed');
    const stack = (await page.textContent('#error-stack'))!;
    expect(stack).toMatch(/^FlakyError: payment service down \(attempt 2\)/);
    expect(stack).toMatch(/\n\s+at /);
    expect(await page.locator('#attempts tr').count()).toBeGreaterThanOrEqual(2);
    expect(JSON.parse((await page.textContent('#payload'))!)).toEqual({ order: 42 });
    await shot('execution-failed');

    flakyFails = false;
    await confirmVia('#retry', new RegExp(`Retry execution #${id}`));
    await expect.poll(headingStatus, { timeout: 20_000 }).toBe('completed');
    expect(JSON.parse((await page.textContent('#result'))!)).toEqual({ charged: true });
    expect((await r.get(id))?.status).toBe('completed');
  });

  it('a running execution shows its progress, and its page follows it until it completes', async () => {
    const id = await r.enqueue('hold', { key: 'q2' }, { queue: 'web' });
    await vi.waitFor(async () => expect((await r.get(id))?.progress).toEqual({ waitingFor: 'q2' }));
    await open(`/execution/${id}`);
    expect(await headingStatus()).toBe('running');
    expect(JSON.parse((await page.textContent('#progress'))!)).toEqual({ waitingFor: 'q2' });
    gates.get('q2')!();
    await expect.poll(headingStatus).toBe('completed');
    expect(JSON.parse((await page.textContent('#result'))!)).toEqual({ released: 'q2' });
  });

  it('cancel asks first: declining keeps the execution, confirming cancels it', async () => {
    const id = await r.enqueue('report', { n: 1 }, { queue: 'idle' });
    await open(`/execution/${id}`);
    await confirmVia('#cancel', /Cancel execution/, 'no');
    expect((await r.get(id))?.status).toBe('queued');
    await confirmVia('#cancel', /Cancel execution/);
    await expect.poll(headingStatus).toBe('cancelled');
    expect((await r.get(id))?.status).toBe('cancelled');
  });

  it('pauses and resumes a queue from the Queues page', async () => {
    await open('/queues');
    await page.waitForSelector('[data-queue="web"] button.pause');
    await confirmVia('[data-queue="web"] button.pause', /Pause queue "web"/);
    await page.waitForSelector('[data-queue="web"] [data-badge="paused"]');
    expect((await r.queueControls()).queues.find((q) => q.queue === 'web')?.paused).toBe(true);
    // A paused queue starts nothing: this one waits until the resume below.
    const id = await r.enqueue('ok', { after: 'resume' }, { queue: 'web' });
    await expect.poll(() => count('web', 'queued')).toBe('1');
    await confirmVia('[data-queue="web"] button.pause', /Resume queue "web"/);
    await page.waitForSelector('[data-queue="web"] [data-badge="paused"]', { state: 'detached' });
    expect((await r.wait(id)).status).toBe('completed');
  });

  it('bulk cancel and bulk retry act on the filtered executions', async () => {
    await open('/executions?queue=idle&status=queued');
    const before = await page.locator('#executions tr[data-id]').count();
    expect(before).toBe(3);
    await confirmVia('#bulk-cancel', /Cancel every unfinished execution matching queue = idle, status = queued/);
    await expect.poll(() => page.textContent('#notice')).toBe('cancelled 3');
    expect((await r.list({ queue: 'idle', status: 'queued' })).items).toHaveLength(0);
    await open('/executions?queue=idle&status=cancelled');
    await confirmVia('#bulk-retry', /Retry every failed or cancelled execution matching queue = idle/);
    await expect.poll(() => page.textContent('#notice')).toBe('retried 4');
    expect((await r.list({ queue: 'idle', status: 'queued' })).items).toHaveLength(4);
  });

  it('markup in names, payloads and errors stays text', async () => {
    const shown = await r.enqueue(XSS_NAME, XSS_PAYLOAD, { queue: 'idle' });
    const failed = await r.enqueue('xss-fail', XSS_PAYLOAD, { queue: 'web', maxAttempts: 1 });
    await r.wait(failed);
    for (const hash of ['/queues', '/executions?queue=idle', `/execution/${shown}`, `/execution/${failed}`]) {
      await open(hash);
      // On the Queues page, let its next poll render (it stamps #updated); and let any injected
      // image try to load.
      if (hash === '/queues')
        await page.evaluate(
          () =>
            new Promise<void>((resolve) =>
              new MutationObserver((_, observer) => {
                observer.disconnect();
                resolve();
              }).observe(document.getElementById('updated')!, { childList: true, characterData: true, subtree: true }),
            ),
        );
      await page.waitForTimeout(100);
      expect(await page.locator('#main img, #main script, #main iframe').count(), hash).toBe(0);
      expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), hash).toBeUndefined();
    }
    expect(await page.textContent('#error-stack')).toContain(XSS_ERROR);
    await open(`/execution/${shown}`);
    expect(await page.textContent('[data-field="task"]')).toBe(XSS_NAME);
    expect(JSON.parse((await page.textContent('#payload'))!)).toEqual(XSS_PAYLOAD);
    expect(nativeDialogs).toEqual([]);
  });

  it('an action without the token is refused, the same request with it is not', async () => {
    await open('/queues');
    const statuses = await page.evaluate(async () => {
      const token = document.querySelector('meta[name="rhythm-token"]')!.getAttribute('content')!;
      const send = (headers: Record<string, string>) =>
        fetch('api/queues/idle/pause', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' }).then(
          (res) => res.status,
        );
      return {
        without: await send({}),
        wrong: await send({ 'x-rhythm-token': 'not-the-token-at-all' }),
        with: await send({ 'x-rhythm-token': token }),
      };
    });
    expect(statuses).toEqual({ without: 403, wrong: 403, with: 200 });
    expect((await r.queueControls()).queues.find((q) => q.queue === 'idle')?.paused).toBe(true);
    await r.resume('idle');
  });

  it('Workflows lists workflow executions; the detail shows children and where it waits', async () => {
    const id = await r.startWorkflow('approval', { order: 7 }, { queue: 'web' });
    await vi.waitFor(async () => expect((await r.workflowDetails(id))?.waitingOn.signals).toEqual(['approve']), { timeout: 20_000 });
    await open('/workflows');
    const row = page.locator(`#workflows tr[data-id="${id}"]`);
    await expect.poll(() => row.textContent()).toMatch(/approval.*signals approve/);
    await shot('workflows');
    await row.locator('a').click();
    await page.waitForSelector('#children');
    expect(await page.textContent('[data-field="waiting on"]')).toBe('signals approve');
    expect(await page.locator('#children tr[data-seq]').allTextContents()).toEqual([expect.stringMatching(/ok.*completed/)]);
    await shot('workflow');
    // The child's page links back to its parent.
    const childId = (await page.locator('#children tr[data-seq] a').textContent())!.slice(1);
    await open(`/execution/${childId}`);
    expect(await page.textContent('[data-field="parent"]')).toMatch(new RegExp(`^#${id} approval`));
    await r.signal(id, 'approve', { by: 'test' });
    expect((await r.wait(id)).status).toBe('completed');
  });

  it('with a configured token, the page asks for it (or takes it from #token=) and never holds it in its markup', async () => {
    const token = 'browser-test-token-0123456789';
    const guarded = await startDashboard(r, { port: 0, token, pollMs: 300 });
    stops.push(() => guarded.close());
    await page.goto('about:blank');
    await page.goto(guarded.url);
    await page.waitForSelector('#login[open]');
    expect(await page.getAttribute('meta[name="rhythm-token"]', 'content')).toBe('');
    await page.fill('#login-token', token);
    await page.click('#login-ok');
    await page.waitForSelector('[data-queue="web"]');
    await page.goto('about:blank');
    await page.goto(`${guarded.url}#token=${token}`);
    await page.waitForSelector('[data-queue="web"]');
    expect(new URL(page.url()).hash).toBe('#/queues');
  });

  it('Schedules shows the next fire times', async () => {
    await open('/schedules');
    const row = page.locator('#schedules tr[data-schedule="nightly-report"]');
    expect(await row.textContent()).toMatch(/0 3 \* \* \*/);
    const next = (await r.schedules()).find((s) => s.name === 'nightly-report')!.nextRunAt!;
    expect(await row.locator('td:nth-child(6)').textContent()).toContain(`${String(next.getHours()).padStart(2, '0')}:00:00`);
    await shot('schedules');
    // Nothing the page did broke its own Content Security Policy or threw.
    expect(pageErrors).toEqual([]);
  });
});
