/**
 * One LISTEN connection per Rhythm instance (pg-listen, which reconnects), shared by the
 * dispatchers (work wake-ups, cancellations) and wait() (done). Notifications sent while the
 * connection was down are lost, so after a reconnect every subscriber is told to re-check
 * the database (`onReconnect`).
 */
import { EventEmitter } from 'node:events';
import pgListen, { type Subscriber } from 'pg-listen';
import type { Logger } from 'pino';
import type { SchemaNames } from './schema.js';
import { retryDelayMs } from '../backoff.js';
import { parseHandoff, type Handoff } from '../sql/handoff.js';
import { clientConfig, readTimeoutMs, type ConnectionTimeouts } from './connections.js';

const HEALTH_CHECK_MS = 5_000;
/** Reconnects wait at most 2 s: notifications are lost while the connection is down. */
const RECONNECT = { baseMs: 100, maxMs: 2_000 };

export interface ListenerEvents {
  /** A queue has new ready work. */
  work: [queue: string];
  /** An enqueue took an idle worker's offer and leased it this task (see sql/handoff.ts). */
  handoff: [handoff: Handoff];
  /** These executions reached a final status. */
  done: [ids: string[]];
  /** The running attempts with these lease tokens were cancelled. */
  cancel: [leaseTokens: string[]];
  /** A cron schedule was created or changed (only after listenSchedules()). */
  schedule: [name: string];
  /** The connection was re-established: notifications may have been missed. */
  reconnect: [];
}

export class Listener extends EventEmitter<ListenerEvents> {
  private readonly subscriber: Subscriber;
  private connecting: Promise<void> | undefined;
  private closed = false;
  private connectedOnce = false;
  private listeningDone: Promise<void> | undefined;
  private listeningSchedules: Promise<void> | undefined;

  constructor(
    connectionString: string,
    private readonly names: SchemaNames,
    private readonly log: Logger,
    timeouts: ConnectionTimeouts,
  ) {
    super();
    this.setMaxListeners(0);
    // The health check (a trivial query every HEALTH_CHECK_MS, or every connect timeout if
    // that is shorter: who expects connections within 1 s expects a dead one noticed as soon)
    // must fail, not hang, on a connection that went silent: its statements get the connect
    // timeout as their limit, as a healthy server answers them at once. A failed check reconnects.
    const quick = Math.min(timeouts.connectMs, timeouts.queryMs);
    // pg-listen is CommonJS: its factory is the `default` export of module.exports.
    this.subscriber = pgListen.default(
      { ...clientConfig(connectionString, timeouts), statement_timeout: quick, query_timeout: readTimeoutMs(quick) },
      {
        parse: (s: string) => s,
        paranoidChecking: Math.min(HEALTH_CHECK_MS, timeouts.connectMs),
        retryInterval: (attempt: number) => retryDelayMs(attempt, RECONNECT),
        retryTimeout: Number.POSITIVE_INFINITY,
      },
    );
    this.subscriber.notifications.on(names.workChannel, (text: string) => {
      const handoff = parseHandoff(text);
      if (handoff === undefined) this.emit('work', text);
      else this.emit('handoff', handoff);
    });
    this.subscriber.notifications.on(names.doneChannel, (ids: string) => this.emit('done', ids.split(',')));
    this.subscriber.notifications.on(names.cancelChannel, (tokens: string) => this.emit('cancel', tokens.split(',')));
    this.subscriber.notifications.on(names.scheduleChannel, (name: string) => this.emit('schedule', name));
    this.subscriber.events.on('error', (err) => this.log.error({ err }, 'LISTEN connection failed'));
    this.subscriber.events.on('reconnect', (attempt) => this.log.warn({ attempt }, 'LISTEN connection lost; reconnecting'));
    this.subscriber.events.on('connected', () => {
      if (this.closed) {
        // pg-listen's reconnect loop does not check for close(): end what it reopened.
        void this.subscriber.close().catch(() => undefined);
        return;
      }
      if (!this.connectedOnce) {
        this.connectedOnce = true;
        return;
      }
      this.log.info('LISTEN connection re-established');
      this.emit('reconnect');
    });
  }

  /** Connects and subscribes once; later calls wait for the same connection. */
  start(): Promise<void> {
    this.connecting ??= (async () => {
      await this.subscriber.connect();
      // One at a time: pg queues queries on a client but warns when they overlap.
      await this.subscriber.listenTo(this.names.workChannel);
      await this.subscriber.listenTo(this.names.cancelChannel);
    })();
    return this.connecting;
  }

  /**
   * Subscribes to `done` too, on the first wait(): every batch of completions is announced
   * there, and a process that never waits need not receive and parse them.
   */
  listenDone(): Promise<void> {
    this.listeningDone ??= this.start()
      .then(() => this.subscriber.listenTo(this.names.doneChannel))
      .then(
        () => undefined,
        (err) => {
          this.listeningDone = undefined;
          throw err;
        },
      );
    return this.listeningDone;
  }

  /** Subscribes to schedule changes too: only a process running the internal worker needs them. */
  listenSchedules(): Promise<void> {
    this.listeningSchedules ??= this.start()
      .then(() => this.subscriber.listenTo(this.names.scheduleChannel))
      .then(
        () => undefined,
        (err) => {
          this.listeningSchedules = undefined;
          throw err;
        },
      );
    return this.listeningSchedules;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.connecting === undefined) return;
    await this.connecting.catch(() => undefined);
    await this.subscriber.close();
  }
}
