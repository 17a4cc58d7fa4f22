-- Each event's encoded ItsmEvent, as scoring received it, so stored history can be replayed under
-- another catalog (`herald rescore --dry-run`). NULL for events recorded before it was kept.
ALTER TABLE events ADD COLUMN payload BLOB;
