/**
 * Progress on stderr: a cli-progress bar per measurement on a terminal; one line per
 * measurement otherwise (CI logs, the smoke test).
 */
import cliProgress from 'cli-progress';
import type { StepProgress } from './common.js';

export class Progress implements StepProgress {
  private bar: cliProgress.SingleBar | undefined;
  private step = 0;
  private prefix = '';
  private readonly tty: boolean;
  private readonly t0 = Date.now();
  private stepStart = Date.now();
  private title = '';
  /** Wall time of every step, for the JSON report. */
  readonly timings: { step: string; seconds: number }[] = [];

  constructor(
    private readonly steps: number,
    private readonly enabled: boolean,
  ) {
    this.tty = enabled && Boolean(process.stderr.isTTY);
  }

  /** A new top-level measurement (one system in one scenario). */
  next(title: string): void {
    this.closeStep();
    this.step++;
    this.title = title;
    this.stepStart = Date.now();
    this.prefix = `[${this.step}/${this.steps}] ${title}`;
    if (this.enabled && !this.tty) process.stderr.write(`${this.prefix} (at ${((Date.now() - this.t0) / 1000).toFixed(1)} s)\n`);
  }

  /** Records the running step's duration. */
  closeStep(): void {
    if (this.title) this.timings.push({ step: this.title, seconds: (Date.now() - this.stepStart) / 1000 });
    this.title = '';
  }

  begin(label: string, total: number): void {
    if (!this.tty) return;
    this.bar?.stop();
    this.bar = new cliProgress.SingleBar(
      {
        format: `${this.prefix.padEnd(48).slice(0, 48)} {bar} {percentage}% | {value}/{total} | ${label}`,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: true,
        fps: 8,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(Math.max(1, total), 0);
  }

  update(value: number): void {
    this.bar?.update(value);
  }

  note(text: string): void {
    if (!this.enabled) return;
    if (this.bar) {
      this.bar.stop();
      this.bar = undefined;
    }
    process.stderr.write(`${text}\n`);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
