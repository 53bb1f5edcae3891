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

  constructor(private readonly steps: number, private readonly enabled: boolean) {
    this.tty = enabled && Boolean(process.stderr.isTTY);
  }

  /** A new top-level measurement (one system in one scenario). */
  next(title: string): void {
    this.step++;
    this.prefix = `[${this.step}/${this.steps}] ${title}`;
    if (this.enabled && !this.tty) process.stderr.write(`${this.prefix}\n`);
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
