/**
 * Task modules from a folder: one module per task. A module's task name is its `name` export
 * (a string) or else its file name without the extension; its handler is its default export
 * (or a `handler` export), `(payload, ctx) => result`, as the thread runner expects.
 *
 * Only the folder's top level is read. Files whose names start with "_" or "." are skipped
 * (shared helpers), as are *.d.ts, *.map and *.test.* / *.spec.* files.
 *
 * Every module is imported once in the main process: to learn its name, to refuse a module
 * without a handler before any task is claimed, and to run it there when --threads is 0.
 * A module's top-level code therefore runs in the main process too, not only on its threads.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkTaskName } from '../validate.js';
import type { TaskHandler } from '../types.js';
import { CliError, UsageError } from './errors.js';

export interface TaskModule {
  name: string;
  file: string;
  url: string;
  handler: TaskHandler;
}

const MODULE_EXT = /\.(m|c)?js$/;
const SKIPPED = /(^[_.])|(\.d\.[mc]?ts$)|(\.map$)|(\.(test|spec)\.[mc]?js$)/;

export async function loadTaskFolder(dir: string, where: string): Promise<TaskModule[]> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${where}: task folder ${dir} does not exist`);
  const entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && !SKIPPED.test(e.name));
  const files = entries.filter((e) => MODULE_EXT.test(e.name)).map((e) => e.name).sort();
  if (files.length === 0) {
    const ts = entries.filter((e) => /\.[mc]?ts$/.test(e.name));
    throw new UsageError(
      ts.length > 0
        ? `${where}: ${dir} holds TypeScript (${ts[0]!.name}) but no JavaScript modules; point ${where} at the compiled folder (e.g. dist/tasks)`
        : `${where}: no task modules (.js, .mjs, .cjs) in ${dir}`,
    );
  }
  const modules: TaskModule[] = [];
  for (const file of files) {
    const full = path.join(dir, file);
    const url = pathToFileURL(full).href;
    let mod: Record<string, unknown>;
    try {
      mod = await import(url);
    } catch (err) {
      throw new CliError(`task module ${full} failed to load: ${(err as Error)?.message ?? err}`, { cause: err });
    }
    const handler = typeof mod.default === 'function' ? mod.default : mod.handler;
    if (typeof handler !== 'function') {
      throw new CliError(`task module ${full} has no handler: export a function as default or as "handler"`);
    }
    const exported = mod.name;
    if (exported !== undefined && typeof exported !== 'string') {
      throw new CliError(`task module ${full}: its "name" export must be a string, got ${typeof exported}`);
    }
    const name = exported ?? file.replace(MODULE_EXT, '');
    try {
      checkTaskName(name);
    } catch (err) {
      throw new CliError(`task module ${full}: ${(err as Error).message}`);
    }
    const twin = modules.find((m) => m.name === name);
    if (twin) throw new CliError(`task name ${JSON.stringify(name)} is used by both ${twin.file} and ${full}`);
    modules.push({ name, file: full, url, handler: handler as TaskHandler });
  }
  return modules;
}

/** The named subset (in the order given), or all; unknown names are usage errors. */
export function selectTasks(modules: TaskModule[], only: string[] | undefined, where: string, dir: string): TaskModule[] {
  if (only === undefined) return modules;
  return only.map((name) => {
    const m = modules.find((t) => t.name === name);
    if (!m) {
      throw new UsageError(`${where}: no task named ${JSON.stringify(name)} in ${dir} (found: ${modules.map((t) => t.name).join(', ')})`);
    }
    return m;
  });
}
