#!/usr/bin/env node
/**
 * The `rhythm` command: worker, scheduler, start, migrate, enqueue, get, cancel, status,
 * config; `rhythm <command> --help` for each. See program.ts.
 */
import { runCli } from './program.js';

runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`rhythm: internal error: ${(err as Error)?.stack ?? err}\n`);
    process.exit(1);
  },
);
