-- Nothing looks an event up by its win: an event's win is read by joining from the event to the
-- win's key, and a link is cleared by the event's key. The index was written for every event
-- scored (one more entry in a random place of a b-tree, and its log record) and never read.
DROP INDEX IF EXISTS events_by_win;
