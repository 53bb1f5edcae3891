-- Rhythm schema, version 7: trace context of the producer, for OpenTelemetry traces.
--
-- executions.trace_context: the propagation fields (W3C traceparent, tracestate) of the span
--             that enqueued the execution, as a small JSON object, so the span of each attempt
--             can join the producer's trace. NULL when the producer traced nothing (no
--             OpenTelemetry SDK registered, or the span was not sampled): a NULL costs no space.

ALTER TABLE executions ADD COLUMN trace_context jsonb;
