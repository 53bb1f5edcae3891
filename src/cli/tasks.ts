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
 *
 * The folder's `*.flow` files are workflows, named after the file (`order.flow` is "order").
 * Each is compiled here, before the command connects, so a script with a syntax error stops
 * the start with every problem as file:line:col, as a broken task module does. Tasks and
 * workflows share one set of names, as they do on a Worker.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { readFileSync } from 'node:fs';
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

/** A `.flow` script of the folder, compiled once to check it. */
export interface FlowFile {
  name: string;
  file: string;
}

export interface TaskFolder {
  tasks: TaskModule[];
  workflows: FlowFile[];
}

const MODULE_EXT = /\.(m|c)?js$/;
const SKIPPED = /(^[_.])|(\.d\.[mc]?ts$)|(\.map$)|(\.(test|spec)\.[mc]?js$)/;

export async function loadTaskFolder(dir: string, where: string): Promise<TaskFolder> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${where}: task folder ${dir} does not exist`);
  const entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && !SKIPPED.test(e.name));
  const files = entries
    .filter((e) => MODULE_EXT.test(e.name))
    .map((e) => e.name)
    .sort();
  const flowFiles = entries
    .filter((e) => e.name.endsWith('.flow'))
    .map((e) => e.name)
    .sort();
  if (files.length === 0 && flowFiles.length === 0) {
    const ts = entries.filter((e) => /\.[mc]?ts$/.test(e.name));
    throw new UsageError(
      ts.length > 0
        ? `${where}: ${dir} holds TypeScript (${ts[0]!.name}) but no JavaScript modules; point ${where} at the compiled folder (e.g. dist/tasks)`
        : `${where}: no task modules (.js, .mjs, .cjs) nor workflows (.flow) in ${dir}`,
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
  return { tasks: modules, workflows: flowFiles.length === 0 ? [] : await loadFlows(dir, flowFiles, modules) };
}

/** Compiles every .flow file; the syntax errors of all of them are reported together (exit code 2). */
async function loadFlows(dir: string, files: string[], tasks: TaskModule[]): Promise<FlowFile[]> {
  // Loaded here, not at the top: the compiler (and its parser) is for folders that hold .flow files.
  const [{ compileFlow }, { FlowSyntaxError }] = await Promise.all([import('../workflows/index.js'), import('../workflows/errors.js')]);
  const flows: FlowFile[] = [];
  const problems: string[] = [];
  for (const file of files) {
    const full = path.join(dir, file);
    const name = file.slice(0, -'.flow'.length);
    try {
      checkTaskName(name);
    } catch (err) {
      throw new CliError(`workflow ${full}: ${(err as Error).message}`);
    }
    const twin = tasks.find((m) => m.name === name);
    if (twin)
      throw new CliError(
        `name ${JSON.stringify(name)} is used by both task module ${twin.file} and workflow ${full} (tasks and workflows share one set of names)`,
      );
    try {
      // The full path, so each problem reads as a location an editor or terminal can open.
      compileFlow(readFileSync(full, 'utf8'), full);
    } catch (err) {
      if (!(err instanceof FlowSyntaxError))
        throw new CliError(`workflow ${full} failed to load: ${(err as Error)?.message ?? err}`, { cause: err });
      problems.push(err.message);
      continue;
    }
    flows.push({ name, file: full });
  }
  if (problems.length > 0) {
    const what = problems.length === 1 ? 'a workflow does not compile' : `${problems.length} workflows do not compile`;
    throw new UsageError(`${what}:\n${problems.join('\n')}`);
  }
  return flows;
}

/** The named subset (in the order given), or all; unknown names are usage errors. */
export function selectTasks<T extends { name: string }>(modules: T[], only: string[] | undefined, where: string, dir: string): T[] {
  if (only === undefined) return modules;
  return only.map((name) => {
    const m = modules.find((t) => t.name === name);
    if (!m) {
      throw new UsageError(
        `${where}: no task or workflow named ${JSON.stringify(name)} in ${dir} (found: ${modules.map((t) => t.name).join(', ')})`,
      );
    }
    return m;
  });
}
