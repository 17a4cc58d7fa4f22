-- The W3C trace context of the message that queued a delivery, so its attempts join the trace that
-- began at the webhook. Empty when tracing export is off.
ALTER TABLE deliveries ADD COLUMN traceparent TEXT;
