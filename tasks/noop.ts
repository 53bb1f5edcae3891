/** Does nothing: measures the runtime's own overhead per task. */
export default function noop(payload: unknown): unknown {
  return payload ?? null;
}
