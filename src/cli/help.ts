/** Help texts of the `rhythm` command (printed on stdout by --help, exit code 0). */

const CONNECTION = `Connection and logging (every command except help):
  --database-url <url>   Postgres URL              env RHYTHM_DATABASE_URL, then DATABASE_URL
                         (none: the embedded Postgres on ./.rhythm/pgdata, as \`npm start\`)
  --data-dir <dir>       embedded Postgres data folder          env RHYTHM_DATA_DIR
  --schema <name>        schema of Rhythm's tables (rhythm)     env RHYTHM_SCHEMA
  --pool-size <n>        database connections of this process   env RHYTHM_POOL_SIZE
                         (10 for worker/start/scheduler/migrate, 2 for the others)
  --db-timeout <d>       most time to connect, and for each statement, before the command
                         gives up on the database (10s to connect, 30s a statement)
                                                                env RHYTHM_DB_TIMEOUT
  --log-level <level>    fatal|error|warn|info|debug|trace|silent   env RHYTHM_LOG_LEVEL
                         (info for long-running commands, warn for one-shot ones)
  --config <file>        config file                             env RHYTHM_CONFIG
                         (default: rhythm.config.{json,mjs,js,cjs,ts} in the working folder)
  -h, --help             this help`;

const RUNTIME = `Workers:
  --queue <name[:threads]>   a queue to serve, with its own thread count; repeat for several
                         queues (default: default)              env RHYTHM_QUEUES=a,b:4
                         a queue whose name ends in ":<digits>" needs an explicit count
  --threads <n>          threads per queue without ":threads" (default: CPU count);
                         0 runs the modules on the main thread (I/O-bound tasks)
                                                                env RHYTHM_THREADS
  --tasks <dir>          folder of task modules, one per task (default ./tasks)  env RHYTHM_TASKS
                         task name: the module's \`name\` export, else its file name
  --only <a,b>           register only these tasks              env RHYTHM_ONLY
  --concurrency <n>      most tasks held at once per queue (default: threads*64, or 100
                         on the main thread)                    env RHYTHM_CONCURRENCY
  --batch-size <n>       most tasks per claim (default: min(concurrency, 500))
                                                                env RHYTHM_BATCH_SIZE
  --lease-pool-size <n>  connections for claims and lease extensions, shared by the
                         queues of this process (4)             env RHYTHM_LEASE_POOL_SIZE
  --visibility-timeout <d>  lease of claimed tasks, extended every third of it (30s)
                                                                env RHYTHM_VISIBILITY_TIMEOUT
  --poll-interval <d>    fallback poll when no NOTIFY arrives (2s)  env RHYTHM_POLL_INTERVAL
  --shutdown-timeout <d> on SIGTERM/SIGINT, how long in-flight tasks may finish before
                         they are aborted and handed back (30s) env RHYTHM_SHUTDOWN_TIMEOUT
                         a second signal stops at once (exit 130), even with the
                         database down
  --no-migrate           do not apply pending migrations at startup
                                                                env RHYTHM_AUTO_MIGRATE=false`;

const INTERNAL = `Internal worker (scheduler):
  --tick <d>             time between passes (1s)               env RHYTHM_TICK
  --retention <d>        delete settled history older than this; 0 keeps it (7d)
                                                                env RHYTHM_RETENTION`;

const DURATIONS = `Durations: 500ms, 30s, 5m, 2h, 7d; a bare number is milliseconds.`;

export const GENERAL_HELP = `Usage: rhythm <command> [options]

Rhythm: a durable, multi-threaded task queue on PostgreSQL.

Run work:
  worker      serve queues with the task modules of a folder (add --internal-worker to also schedule)
  scheduler   run only the internal worker: delays, retries, lease recovery, pruning
  start       one process for everything: internal worker + workers (the unified pattern)

Operate:
  migrate     apply pending migrations (--status lists applied and pending)
  enqueue     enqueue a task:           rhythm enqueue <task> [json-payload]
  get         show an execution:        rhythm get <id>
  cancel      cancel an execution:      rhythm cancel <id>
  status      per-queue figures (--json for scripts, --watch to refresh)
  config      print the effective configuration and where each value came from

Options for every command: rhythm <command> --help
Configuration precedence: flags > environment > config file > defaults.
Exit codes: 0 ok, 1 runtime error, 2 usage error.
Version: rhythm --version`;

export const HELP: Record<string, string> = {
  worker: `Usage: rhythm worker [--queue <name[:threads]>]... [--tasks <dir>] [--only <a,b>] [--internal-worker]

Serves one or more queues with the task modules of a folder until SIGTERM or SIGINT, then
shuts down gracefully: no new claims, in-flight tasks finish (up to --shutdown-timeout),
the rest are handed back. A second signal forces a fast stop (exit code 130).

Each queue has its own thread pool: \`--queue default:2 --queue high-cpu:8\`.

${RUNTIME}
  --internal-worker      also run the internal worker in this process
                                                                env RHYTHM_INTERNAL_WORKER

${INTERNAL}

${CONNECTION}

${DURATIONS}

Examples:
  rhythm worker --tasks dist/tasks --queue default:4
  rhythm worker --tasks dist/tasks --queue high-cpu:8 --only sha256-chain
  rhythm worker --tasks dist/tasks --queue ml-tasks:1 --queue default:2 --internal-worker`,

  scheduler: `Usage: rhythm scheduler [--tick <d>] [--retention <d>]

Runs the internal worker alone (the split-scheduler pattern): moves due delayed tasks and
retries into their queues, recovers tasks whose worker died (expired leases), and prunes old
history. Safe to run in several processes at once (every statement uses SKIP LOCKED).
Runs until SIGTERM or SIGINT.

${INTERNAL}
  --no-migrate           do not apply pending migrations at startup

${CONNECTION}

${DURATIONS}`,

  start: `Usage: rhythm start [--queue <name[:threads]>]... [--tasks <dir>] [--only <a,b>]

The unified process: the internal worker plus workers for the configured queues, in one
process (same as \`rhythm worker --internal-worker\`). Runs until SIGTERM or SIGINT.

${RUNTIME}

${INTERNAL}

${CONNECTION}

${DURATIONS}

Example:
  rhythm start --tasks dist/tasks --queue default:2 --queue high-cpu:2`,

  migrate: `Usage: rhythm migrate [--status] [--json]

Applies pending migrations to the schema (one transaction, under an advisory lock: safe to
run while other processes start). Workers also migrate at startup unless --no-migrate.

  --status               list applied and pending migrations, apply nothing
  --json                 with --status: print JSON

${CONNECTION}`,

  enqueue: `Usage: rhythm enqueue <task> [json-payload] [options]

Enqueues one task and prints its execution id. The payload is JSON (default null); "-"
reads it from stdin. A payload that does not parse is refused with the position of the error.
Quote it for the shell: rhythm enqueue submit-report '{"reportId": 7}'

  --queue <name>         queue (default: default)
  --delay <d>            run no earlier than this from now
  --run-at <iso-date>    run no earlier than this time (exclusive with --delay)
  --priority <n>         higher runs first (default 0); negative: --priority=-5
  --max-attempts <n>     attempts before the execution fails (default 3)
  --timeout <d>          time limit of each attempt
  --wait                 wait until the execution finishes and print it; exit code 1
                         unless it completed
  --wait-timeout <d>     give up waiting after this (default 60s; exit code 1)
  --json                 print JSON ({"id": ...}, or the execution with --wait)
  --no-migrate           do not apply pending migrations first

${CONNECTION}

${DURATIONS}`,

  get: `Usage: rhythm get <id> [--json]

Prints an execution: status, attempts, payload, result or error, timestamps.
Exit code 1 if there is no execution with this id (or it was pruned).

  --json                 print JSON

${CONNECTION}`,

  cancel: `Usage: rhythm cancel <id> [--json]

Cancels an execution: a queued or delayed one never runs; a running one's handler sees its
abort signal. Exit code 0 if it is cancelled (now or before), 1 if it does not exist or had
already completed or failed.

  --json                 print JSON ({"id", "cancelled", "status"})

${CONNECTION}`,

  status: `Usage: rhythm status [--json] [--watch [--interval <d>]] [--window <d>]

Per queue: tasks queued (ready), scheduled (delayed or waiting to retry), running, failed
and completed within the window, and the age of the oldest ready task.

  --json                 print JSON (with --watch: one JSON document per line)
  --watch                refresh until SIGINT/SIGTERM
  --interval <d>         refresh interval of --watch (default 2s)
  --window <d>           window of the failed and completed counts (default 1h)

${CONNECTION}

${DURATIONS}`,

  config: `Usage: rhythm config [--json] [options of rhythm worker]

Prints the effective configuration of a worker started with the same flags, environment and
config file, and where each value came from. Secrets are masked. Connects to nothing.

Config file: rhythm.config.json (or .mjs/.js/.cjs exporting the object as default, or a
function returning it). Keys: databaseUrl, schema, logLevel, poolSize, dbTimeout, leasePoolSize, autoMigrate, dataDir,
queues, threads, tasks, only, concurrency, batchSize, visibilityTimeout, pollInterval, shutdownTimeout, internalWorker, tick, retention.
"queues" may list "name:threads" strings or { "name", "threads", "only" } objects. Paths are
relative to the file. rhythm.config.ts needs a Node.js that can import TypeScript (22.18+ /
23.6+, or a loader such as NODE_OPTIONS="--import tsx"); on Node 20 use .json or .mjs.

  --json                 print JSON

${RUNTIME}
  --internal-worker      also run the internal worker

${INTERNAL}

${CONNECTION}`,
};
