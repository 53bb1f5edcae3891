/** The seed's example task: an I/O-style handler, run on the main thread by the demo. */
import type { TaskContext } from '../src/index.js';

export interface SubmitReportPayload {
  reportId: number;
}

export default async function submitReport(payload: SubmitReportPayload, ctx: TaskContext): Promise<{ status: string; reportId: number }> {
  if (typeof payload?.reportId !== 'number') throw new TypeError('payload.reportId must be a number');
  // Stand-in for a network call: yields to the event loop and honours cancellation.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, 2);
    ctx.signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      },
      { once: true },
    );
  });
  return { status: 'success', reportId: payload.reportId };
}
