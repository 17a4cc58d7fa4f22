-- One delivery per (announcement, route, channel): a route may name several channels. Existing rows
-- keep their ids; each was already the only delivery of its (announcement, route).
ALTER TABLE deliveries DROP CONSTRAINT deliveries_announcement_id_route_key;
ALTER TABLE deliveries
    ADD CONSTRAINT deliveries_announcement_id_route_channel_key UNIQUE (announcement_id, route, channel);
