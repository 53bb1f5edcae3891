/**
 * Resolves wait() calls from `done` notifications, without polling: one listener for all
 * waiters, each notification checked against a map of waited ids. After a reconnect (when
 * notifications may have been missed) every waiter re-reads its execution. A read that fails
 * because the database is unreachable is retried: only the caller's timeout ends a wait.
 */

const RETRY_READ_MS = 500;
import type { Listener } from './db/listener.js';
import { isConnectionError } from './db/errors.js';
import { RhythmError } from './errors.js';
import type { Execution } from './types.js';
import { FINAL_STATUSES } from './types.js';

interface Waiter {
  resolve: (e: Execution) => void;
  reject: (err: unknown) => void;
}

export class Waiters {
  private readonly byId = new Map<string, Set<Waiter>>();
  private closedWith: Error | undefined;

  constructor(listener: Listener, private readonly read: (ids: string[]) => Promise<Map<string, Execution>>) {
    listener.on('done', (ids) => {
      const hit = ids.filter((id) => this.byId.has(id));
      if (hit.length > 0) void this.check(hit);
    });
    listener.on('reconnect', () => void this.check([...this.byId.keys()]));
  }

  /** Registers before reading, so a completion between the two cannot be missed. */
  wait(id: string, timeoutMs: number, onTimeout: () => Error): Promise<Execution> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise<Execution>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        resolve: (e) => done(() => resolve(e)),
        reject: (err) => done(() => reject(err)),
      };
      const done = (settle: () => void) => {
        clearTimeout(timer);
        const set = this.byId.get(id);
        set?.delete(waiter);
        if (set?.size === 0) this.byId.delete(id);
        settle();
      };
      let set = this.byId.get(id);
      if (!set) this.byId.set(id, (set = new Set()));
      set.add(waiter);
      // The timeout runs from the first read, so a finished execution resolves even with timeoutMs 0.
      void this.check([id], true).then(() => {
        if (set.has(waiter)) timer = setTimeout(() => done(() => reject(onTimeout())), timeoutMs);
      });
    });
  }

  /** Rejects every pending wait (shutdown): nothing would resolve them any more. */
  close(err: Error): void {
    this.closedWith = err;
    for (const set of [...this.byId.values()]) for (const w of [...set]) w.reject(err);
  }

  private async check(ids: string[], mustExist = false): Promise<void> {
    let found: Map<string, Execution>;
    try {
      found = await this.read(ids);
    } catch (err) {
      if (isConnectionError(err) && !this.closedWith) {
        setTimeout(() => {
          const pending = ids.filter((id) => this.byId.has(id));
          if (pending.length > 0) void this.check(pending, mustExist);
        }, RETRY_READ_MS).unref();
        return;
      }
      for (const id of ids) for (const w of this.byId.get(id) ?? []) w.reject(err);
      return;
    }
    for (const id of ids) {
      const e = found.get(id);
      const waiters = [...(this.byId.get(id) ?? [])];
      if (e === undefined) {
        if (mustExist) for (const w of waiters) w.reject(new RhythmError(`no execution with id ${id}`));
      } else if (FINAL_STATUSES.includes(e.status)) {
        for (const w of waiters) w.resolve(e);
      }
    }
  }
}
