/**
 * `rhythm dashboard`: serves the web dashboard (queues, executions, schedules, workflows, and
 * their actions) until SIGINT/SIGTERM. Bound beyond this machine it refuses to start without
 * a token; see src/dashboard/server.ts for what the token guards.
 */
import { openSession, requireMigrated } from '../runtime.js';
import { CliError } from '../errors.js';
import { RhythmValidationError } from '../../errors.js';
import { CONNECTION_SETTINGS, type Command } from '../command.js';

export const dashboardCommand: Command = {
  name: 'dashboard',
  summary: 'serve the web dashboard (default http://127.0.0.1:8080) until SIGINT/SIGTERM',
  description: `Serves the web dashboard: queues with their counts, throughput and waits, executions with filters and details, schedules and workflows, and the actions retry, cancel, pause and resume (each confirmed in the page). It binds 127.0.0.1 by default; bound to another address it requires a token (RHYTHM_DASHBOARD_TOKEN) and refuses to start without one. Without a token it answers this machine only.`,
  settings: [...CONNECTION_SETTINGS, 'dashboardPort', 'dashboardHost', 'dashboardToken'],
  defaults: { poolSize: 4 },
  epilog: 'Examples:\n  rhythm dashboard\n  RHYTHM_DASHBOARD_TOKEN=$(openssl rand -hex 24) rhythm dashboard --host 0.0.0.0 --port 9000',
  async run(ctx) {
    const { dashboardPort: port, dashboardHost: host, dashboardToken: token } = ctx.settings;
    const { isLoopback } = await import('../../dashboard/security.js');
    // Checked before the database is opened: a refusal should not wait for Postgres.
    if (!isLoopback(host) && token === undefined) {
      throw new CliError(
        `refusing to serve the dashboard on ${host} without a token: set RHYTHM_DASHBOARD_TOKEN (or --token), or bind 127.0.0.1`,
      );
    }
    const session = await openSession(ctx.settings, ctx.log, { autoMigrate: false });
    let stop: (() => void) | undefined;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const onSignal = () => stop?.();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      await requireMigrated(session.r);
      const { startDashboard } = await import('../../dashboard/server.js');
      let server: Awaited<ReturnType<typeof startDashboard>>;
      try {
        server = await startDashboard(session.r, { port, host, token });
      } catch (err) {
        if (err instanceof RhythmValidationError) throw err;
        throw new CliError(`could not serve the dashboard on ${host}:${port}: ${(err as Error).message}`, { cause: err });
      }
      await ctx.print(
        `Rhythm dashboard: ${server.url}${token === undefined ? '' : ' (the page asks for the token, or open it with #token=<token> after the address)'}`,
      );
      await stopped;
      await server.close();
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await session.close();
    }
  },
};
