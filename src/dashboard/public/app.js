// The dashboard page: a hash-routed view over the JSON API (see src/dashboard/api.ts). Every
// value from the database reaches the page as text (textContent and text nodes, never HTML),
// so a payload or error holding markup shows as that markup and never runs. Actions ask for
// confirmation in a dialog, then POST with the token.

const TOKEN_KEY = 'rhythm-dashboard-token';
const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.getAttribute('content') ?? '';
const POLL_MS = Number(meta('rhythm-poll-ms')) || 3000;
const FINAL = ['completed', 'failed', 'cancelled'];
const STATUSES = ['scheduled', 'queued', 'running', 'completed', 'failed', 'cancelled'];

let token = meta('rhythm-token') || sessionStorage.getItem(TOKEN_KEY) || '';
/** Timers of the page on screen, cleared when another page is shown. */
let timers = [];
/** Charts of the Queues page, by queue, so a refresh updates them in place. */
let charts = new Map();

/** An element with attributes and children; strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const pad = (n) => String(n).padStart(2, '0');
function when(v) {
  if (!v) return '-';
  const d = new Date(v);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function duration(ms) {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
const json = (v) => (v === undefined ? '' : JSON.stringify(v, null, 2));
const badge = (status) => h('span', { class: `badge ${status}`, 'data-status': status }, status);
const executionLink = (id) => h('a', { href: `#/execution/${encodeURIComponent(id)}` }, `#${id}`);

function notice(text, isError = false) {
  const el = document.getElementById('notice');
  el.textContent = text;
  el.className = isError ? 'error' : '';
  el.hidden = !text;
}

async function askToken() {
  const dialog = document.getElementById('login');
  if (dialog.open) return;
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener('close', resolve, { once: true }));
  token = document.getElementById('login-token').value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  route();
}

async function api(path, options = {}) {
  const res = await fetch(`api/${path}`, {
    method: options.method ?? 'GET',
    headers: { 'x-rhythm-token': token, ...(options.method === 'POST' ? { 'content-type': 'application/json' } : {}) },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    credentials: 'omit',
  });
  const data = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (res.status === 403 && !meta('rhythm-token')) void askToken();
  if (!res.ok) throw new Error(data.error ?? `HTTP ${res.status}`);
  return data;
}

/** Shows the confirmation dialog; resolves true if the user confirmed. */
function confirmAction(text) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }));
}

/** Confirms, POSTs, reports the outcome, then refreshes the page. */
async function act(question, path, body, done) {
  if (!(await confirmAction(question))) return;
  try {
    const result = await api(path, { method: 'POST', body: body ?? {} });
    notice(summary(result));
  } catch (err) {
    notice(err.message, true);
  }
  await done?.();
}

function summary(result) {
  if (result.retried) return `retried ${result.retried.length}${result.skipped.length ? `, skipped ${result.skipped.length}` : ''}`;
  if (result.cancelled) return `cancelled ${result.cancelled.length}${result.skipped.length ? `, skipped ${result.skipped.length}` : ''}`;
  if (result.pausedAt) return `queue ${result.queue} paused`;
  if ('resumed' in result) return result.resumed ? `queue ${result.queue} resumed` : `queue ${result.queue} was not paused`;
  return 'done';
}

function stamp() {
  document.getElementById('updated').textContent = `updated ${when(new Date())}`;
}

// ---- Queues -------------------------------------------------------------------------------

function minuteSeries(minutes) {
  const now = Math.floor(Date.now() / 60_000) * 60_000;
  const labels = [];
  const completed = [];
  const failed = [];
  const byMinute = new Map(minutes.map((m) => [new Date(m.at).getTime(), m]));
  for (let t = now - 59 * 60_000; t <= now; t += 60_000) {
    const d = new Date(t);
    labels.push(`${pad(d.getHours())}:${pad(d.getMinutes())}`);
    completed.push(byMinute.get(t)?.completed ?? 0);
    failed.push(byMinute.get(t)?.failed ?? 0);
  }
  return { labels, completed, failed };
}

function queueCard(q, refresh) {
  const canvas = h('canvas', { 'aria-label': `throughput of ${q.queue}` });
  const card = h(
    'section',
    { class: 'card', 'data-queue': q.queue },
    h(
      'h2',
      {},
      h('span', { class: 'queue-name' }, q.queue),
      h('span', { class: 'badges' }),
      h('span', { style: null, class: 'spacer' }),
      h('button', { class: 'pause' }),
    ),
    h(
      'div',
      { class: 'counts' },
      ...['queued', 'scheduled', 'running', 'completed', 'failed', 'cancelled'].map((k) =>
        h(
          'div',
          {},
          h('b', { 'data-count': k }, '0'),
          h('span', {}, k === 'completed' || k === 'failed' || k === 'cancelled' ? `${k} 1h` : k),
        ),
      ),
    ),
    h('div', { class: 'muted waits' }),
    h('div', { class: 'chart' }, canvas),
    h('table', { class: 'tasks' }),
  );
  card.querySelector('button.pause').addEventListener('click', () => {
    const paused = card.dataset.paused === 'true';
    const verb = paused ? 'resume' : 'pause';
    act(
      paused
        ? `Resume queue "${q.queue}"? Workers start its tasks again.`
        : `Pause queue "${q.queue}"? No worker starts its tasks until it is resumed.`,
      `queues/${encodeURIComponent(q.queue)}/${verb}`,
      {},
      refresh,
    );
  });
  const chart = new window.Chart(canvas, {
    type: 'bar',
    data: {
      labels: [],
      datasets: [
        { label: 'completed', data: [], backgroundColor: '#2b8a4b', stack: 's' },
        { label: 'failed', data: [], backgroundColor: '#c73535', stack: 's' },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      responsive: true,
      scales: { x: { stacked: true, ticks: { maxTicksLimit: 8 } }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { position: 'bottom', labels: { boxWidth: 10 } } },
    },
  });
  return { card, chart };
}

function updateCard(entry, q) {
  const { card, chart } = entry;
  card.dataset.paused = String(q.paused);
  for (const k of ['queued', 'scheduled', 'running', 'completed', 'failed', 'cancelled'])
    card.querySelector(`[data-count="${k}"]`).textContent = String(q[k]);
  const badges = card.querySelector('.badges');
  badges.replaceChildren(
    ...(q.paused ? [h('span', { class: 'badge paused', 'data-badge': 'paused' }, 'paused')] : []),
    ...(q.rateLimit
      ? [
          h(
            'span',
            { class: 'badge limited', 'data-badge': 'rate-limited' },
            `rate-limited ${q.rateLimit.max}/${duration(q.rateLimit.intervalMs)}`,
          ),
        ]
      : []),
  );
  card.querySelector('button.pause').textContent = q.paused ? 'Resume' : 'Pause';
  card.querySelector('.waits').textContent =
    `wait p50 ${duration(q.waitP50Ms)} · p99 ${duration(q.waitP99Ms)} (last hour) · oldest waiting ${duration(q.oldestWaitingMs)}`;
  const s = minuteSeries(q.minutes);
  chart.data.labels = s.labels;
  chart.data.datasets[0].data = s.completed;
  chart.data.datasets[1].data = s.failed;
  chart.update('none');
  card
    .querySelector('table.tasks')
    .replaceChildren(
      h(
        'tr',
        {},
        h('th', {}, 'task'),
        ...['queued', 'scheduled', 'running', 'completed', 'failed', 'cancelled'].map((k) => h('th', { class: 'num' }, k)),
      ),
      ...q.tasks.map((t) =>
        h(
          'tr',
          { 'data-task': t.name },
          h('td', {}, h('a', { href: `#/executions?queue=${encodeURIComponent(q.queue)}&name=${encodeURIComponent(t.name)}` }, t.name)),
          ...['queued', 'scheduled', 'running', 'completed', 'failed', 'cancelled'].map((k) => h('td', { class: 'num' }, String(t[k]))),
        ),
      ),
    );
}

async function showQueues(main) {
  charts = new Map();
  const cards = h('div', { class: 'cards' });
  const empty = h('p', { class: 'muted' }, 'No queue has anything queued, running or recently finished.');
  main.replaceChildren(h('h1', {}, 'Queues'), cards);
  const refresh = async () => {
    const data = await api('overview');
    const seen = new Set();
    for (const q of data.queues) {
      seen.add(q.queue);
      let entry = charts.get(q.queue);
      if (!entry) {
        entry = queueCard(q, refresh);
        charts.set(q.queue, entry);
        cards.append(entry.card);
      }
      updateCard(entry, q);
    }
    for (const [name, entry] of charts) {
      if (!seen.has(name)) {
        entry.chart.destroy();
        entry.card.remove();
        charts.delete(name);
      }
    }
    if (data.queues.length === 0) cards.replaceChildren(empty);
    else empty.remove();
    stamp();
  };
  await refresh();
  poll(refresh);
}

function poll(refresh) {
  const id = setInterval(() => refresh().catch((err) => notice(err.message, true)), POLL_MS);
  timers.push(id);
}

// ---- Executions ---------------------------------------------------------------------------

function filterFromQuery(params) {
  const f = {};
  for (const k of ['queue', 'name', 'status', 'since']) if (params.get(k)) f[k] = params.get(k);
  return f;
}

async function showExecutions(main, params) {
  const f = filterFromQuery(params);
  const field = (label, input) => h('label', {}, label, input);
  const form = h(
    'form',
    { class: 'filters', id: 'filters' },
    field('queue', h('input', { name: 'queue', value: f.queue ?? '' })),
    field('task', h('input', { name: 'name', value: f.name ?? '' })),
    field(
      'status',
      h(
        'select',
        { name: 'status' },
        h('option', { value: '' }, 'any'),
        ...STATUSES.map((s) => h('option', { value: s, selected: f.status === s ? 'selected' : null }, s)),
      ),
    ),
    field('created since', h('input', { name: 'since', type: 'datetime-local', step: '1', value: f.since ? toLocalInput(f.since) : '' })),
    h('button', { type: 'submit' }, 'Filter'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) {
      if (!v) continue;
      q.set(k, k === 'since' ? new Date(v).toISOString() : v);
    }
    location.hash = `#/executions?${q}`;
  });
  const query = new URLSearchParams(f);
  if (params.get('cursor')) query.set('cursor', params.get('cursor'));
  const page = await api(`executions?${query}`);
  const rows = page.items.map((e) =>
    h(
      'tr',
      { 'data-id': e.id },
      h('td', {}, executionLink(e.id)),
      h('td', {}, e.name),
      h('td', {}, e.queue),
      h('td', {}, badge(e.status)),
      h('td', { class: 'num' }, `${e.attempts}/${e.maxAttempts}`),
      h('td', {}, when(e.createdAt)),
      h('td', {}, when(e.finishedAt)),
    ),
  );
  const filtered = Object.keys(f).length > 0;
  const describeFilter = Object.entries(f)
    .map(([k, v]) => `${k} = ${v}`)
    .join(', ');
  const refresh = () => showExecutions(main, params);
  const bulk = h(
    'div',
    { class: 'actions' },
    h(
      'button',
      {
        id: 'bulk-retry',
        disabled: filtered ? null : 'disabled',
        onclick: () =>
          act(
            `Retry every failed or cancelled execution matching ${describeFilter}?`,
            'executions/retry',
            f.status ? f : { ...f, status: 'failed,cancelled' },
            refresh,
          ),
      },
      'Retry all matching',
    ),
    h(
      'button',
      {
        id: 'bulk-cancel',
        class: 'danger',
        disabled: filtered ? null : 'disabled',
        onclick: () =>
          act(
            `Cancel every unfinished execution matching ${describeFilter}?`,
            'executions/cancel',
            f.status ? f : { ...f, status: 'scheduled,queued,running' },
            refresh,
          ),
      },
      'Cancel all matching',
    ),
  );
  const pager = h(
    'div',
    { class: 'pager' },
    params.get('cursor') ? h('a', { href: `#/executions?${new URLSearchParams(f)}` }, 'First page') : null,
    page.nextCursor
      ? h('a', { id: 'next-page', href: `#/executions?${new URLSearchParams({ ...f, cursor: page.nextCursor })}` }, 'Next page')
      : null,
  );
  main.replaceChildren(
    h('h1', {}, 'Executions'),
    form,
    bulk,
    h(
      'table',
      { id: 'executions' },
      h('tr', {}, ...['id', 'task', 'queue', 'status', 'attempts', 'created', 'finished'].map((c) => h('th', {}, c))),
      ...rows,
    ),
    page.items.length === 0 ? h('p', { class: 'muted' }, 'No executions match.') : null,
    pager,
  );
  stamp();
}

function toLocalInput(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// ---- Execution detail ---------------------------------------------------------------------

function fields(pairs) {
  return h('dl', { class: 'fields' }, ...pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', { 'data-field': k }, v)]));
}

function errorBlock(error, id) {
  if (!error) return null;
  return h(
    'div',
    {},
    h('p', {}, h('strong', {}, error.name ?? 'Error'), ': ', error.message ?? ''),
    error.stack ? h('pre', { id }, error.stack) : null,
  );
}

async function showExecution(main, id) {
  const { execution: e, workflow, parent } = await api(`executions/${encodeURIComponent(id)}`);
  clearTimers();
  const refresh = () => showExecution(main, id);
  const actions = h(
    'div',
    { class: 'actions' },
    ['failed', 'cancelled'].includes(e.status)
      ? h(
          'button',
          { id: 'retry', onclick: () => act(`Retry execution #${e.id} (${e.name})?`, `executions/${e.id}/retry`, {}, refresh) },
          'Retry',
        )
      : null,
    FINAL.includes(e.status)
      ? null
      : h(
          'button',
          {
            id: 'cancel',
            class: 'danger',
            onclick: () => act(`Cancel execution #${e.id} (${e.name})?`, `executions/${e.id}/cancel`, {}, refresh),
          },
          'Cancel',
        ),
  );
  const parts = [
    h('h1', {}, `${e.kind === 'workflow' ? 'Workflow' : 'Execution'} #${e.id} `, badge(e.status)),
    actions,
    fields([
      ['task', e.name],
      ['kind', e.kind],
      ['queue', e.queue],
      ['attempts', `${e.attempts} of ${e.maxAttempts}`],
      ['priority', String(e.priority)],
      ['group', e.group ?? '-'],
      ['created', when(e.createdAt)],
      ['due', when(e.runAt)],
      ['started', when(e.startedAt)],
      ['finished', when(e.finishedAt)],
      ['parent', parent ? h('span', {}, executionLink(parent.id), ` ${parent.name} `, badge(parent.status)) : '-'],
    ]),
    h('h2', {}, 'Payload'),
    h('pre', { id: 'payload' }, json(e.payload)),
  ];
  if (e.progress !== null && e.progress !== undefined) parts.push(h('h2', {}, 'Progress'), h('pre', { id: 'progress' }, json(e.progress)));
  if (e.status === 'completed') parts.push(h('h2', {}, 'Result'), h('pre', { id: 'result' }, json(e.result)));
  if (e.error) parts.push(h('h2', {}, 'Error'), errorBlock(e.error, 'error-stack'));
  if (e.attemptLog.length > 0) {
    parts.push(
      h('h2', {}, 'Attempts that did not succeed'),
      h(
        'table',
        { id: 'attempts' },
        h('tr', {}, ...['attempt', 'started', 'finished', 'worker', 'outcome', 'error'].map((c) => h('th', {}, c))),
        ...e.attemptLog.map((a) =>
          h(
            'tr',
            {},
            h('td', { class: 'num' }, String(a.attempt)),
            h('td', {}, when(a.startedAt)),
            h('td', {}, when(a.finishedAt)),
            h('td', {}, a.workerId ?? '-'),
            h('td', {}, badge(a.outcome)),
            h(
              'td',
              {},
              a.error
                ? h(
                    'details',
                    {},
                    h('summary', {}, `${a.error.name}: ${a.error.message}`),
                    a.error.stack ? h('pre', {}, a.error.stack) : null,
                  )
                : '-',
            ),
          ),
        ),
      ),
    );
  }
  if (workflow) {
    const w = workflow.waitingOn;
    const waits = [
      w.children.length ? `children ${w.children.join(', ')} (${w.mode}, ${w.pending} pending)` : null,
      w.signals.length ? `signals ${w.signals.join(', ')}` : null,
      w.wakeAt ? `timer at ${when(w.wakeAt)}` : null,
    ].filter(Boolean);
    parts.push(
      h('h2', {}, 'Workflow'),
      fields([
        ['waiting on', FINAL.includes(e.status) ? '- (finished)' : waits.join('; ') || '- (running)'],
        ['activations', String(workflow.activations)],
        ['version', workflow.flowHash ?? '-'],
      ]),
      h('h2', {}, 'Children'),
      h(
        'table',
        { id: 'children' },
        h('tr', {}, ...['seq', 'id', 'kind', 'name', 'queue', 'status'].map((c) => h('th', {}, c))),
        ...workflow.children.map((c) =>
          h(
            'tr',
            { 'data-seq': c.seq, class: w.children.includes(c.seq) ? 'awaited' : null },
            h('td', { class: 'num' }, String(c.seq)),
            h('td', {}, executionLink(c.id)),
            h('td', {}, c.kind),
            h('td', {}, c.name),
            h('td', {}, c.queue),
            h('td', {}, badge(c.status)),
          ),
        ),
      ),
      workflow.signals.length
        ? h('p', { class: 'muted' }, `Signals not taken yet: ${workflow.signals.map((s) => s.name).join(', ')}`)
        : null,
    );
  }
  main.replaceChildren(...parts.filter(Boolean));
  stamp();
  // While it is unfinished, follow it: the page shows it settle.
  if (!FINAL.includes(e.status)) timers.push(setTimeout(() => refresh().catch((err) => notice(err.message, true)), POLL_MS));
}

// ---- Schedules and workflows ----------------------------------------------------------------

async function showSchedules(main) {
  const { schedules } = await api('schedules');
  main.replaceChildren(
    h('h1', {}, 'Schedules'),
    schedules.length === 0
      ? h('p', { class: 'muted' }, 'No schedules.')
      : h(
          'table',
          { id: 'schedules' },
          h('tr', {}, ...['name', 'cron', 'time zone', 'task', 'queue', 'next fires', 'last fired'].map((c) => h('th', {}, c))),
          ...schedules.map((s) =>
            h(
              'tr',
              { 'data-schedule': s.name },
              h('td', {}, s.name),
              h('td', {}, h('code', {}, s.cron)),
              h('td', {}, s.timezone),
              h('td', {}, s.task),
              h('td', {}, s.queue),
              h('td', {}, s.nextRuns.slice(0, 3).map(when).join(' · ') || '-'),
              h('td', {}, when(s.lastFiredAt)),
            ),
          ),
        ),
  );
  stamp();
}

async function showWorkflows(main, params) {
  const query = new URLSearchParams();
  if (params.get('cursor')) query.set('cursor', params.get('cursor'));
  const page = await api(`workflows?${query}`);
  const waiting = (wf) => {
    if (FINAL.includes(wf.execution.status)) return '-';
    const w = wf.waitingOn;
    return (
      [
        w.children.length ? `children ${w.children.join(', ')} (${w.mode})` : null,
        w.signals.length ? `signals ${w.signals.join(', ')}` : null,
        w.wakeAt ? `timer ${when(w.wakeAt)}` : null,
      ]
        .filter(Boolean)
        .join('; ') || '-'
    );
  };
  main.replaceChildren(
    h('h1', {}, 'Workflows'),
    h(
      'table',
      { id: 'workflows' },
      h('tr', {}, ...['id', 'workflow', 'queue', 'status', 'created', 'waiting on'].map((c) => h('th', {}, c))),
      ...page.items.map((wf) =>
        h(
          'tr',
          { 'data-id': wf.execution.id },
          h('td', {}, executionLink(wf.execution.id)),
          h('td', {}, wf.execution.name),
          h('td', {}, wf.execution.queue),
          h('td', {}, badge(wf.execution.status)),
          h('td', {}, when(wf.execution.createdAt)),
          h('td', {}, waiting(wf)),
        ),
      ),
    ),
    page.items.length === 0 ? h('p', { class: 'muted' }, 'No workflows.') : null,
    h(
      'div',
      { class: 'pager' },
      page.nextCursor ? h('a', { href: `#/workflows?cursor=${encodeURIComponent(page.nextCursor)}` }, 'Next page') : null,
    ),
  );
  stamp();
}

// ---- Routing ------------------------------------------------------------------------------

function clearTimers() {
  for (const t of timers) {
    clearInterval(t);
    clearTimeout(t);
  }
  timers = [];
}

async function route() {
  clearTimers();
  for (const entry of charts.values()) entry.chart.destroy();
  charts = new Map();
  const hash = location.hash.replace(/^#/, '');
  if (hash.startsWith('token=')) {
    // A token handed over in the address: kept for this tab, then dropped from the address bar.
    token = decodeURIComponent(hash.slice('token='.length));
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, '', '#/queues');
    return route();
  }
  const [path, search] = (hash || '/queues').split('?');
  const params = new URLSearchParams(search ?? '');
  const [, pageName, id] = path.split('/');
  for (const a of document.querySelectorAll('nav a'))
    a.classList.toggle('active', a.dataset.page === pageName || (pageName === 'execution' && a.dataset.page === 'executions'));
  const main = document.getElementById('main');
  try {
    if (pageName === 'executions') await showExecutions(main, params);
    else if (pageName === 'execution' && id) await showExecution(main, decodeURIComponent(id));
    else if (pageName === 'schedules') await showSchedules(main);
    else if (pageName === 'workflows') await showWorkflows(main, params);
    else await showQueues(main);
  } catch (err) {
    main.replaceChildren(h('p', { class: 'error', id: 'page-error' }, err.message));
  }
  // Which address the page on screen shows (tests wait for it after navigating).
  document.body.dataset.route = location.hash;
}

window.addEventListener('hashchange', () => {
  notice('');
  void route();
});
document.body.dataset.ready = 'true';
void route();
