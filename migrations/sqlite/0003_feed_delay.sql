-- The delay the feed document itself last asked for (<ttl>, sy:updatePeriod), in seconds, so that
-- fetches answered by 304 keep honouring it; 0 when it asked for none.
ALTER TABLE sources ADD COLUMN feed_delay_secs INTEGER;
