-- latest_readings is rewritten in place all day (a meter's changing values
-- at every poll): leave half of each page free, so the new version of a row
-- lands on its own page (a HOT update: no index entry, and the page prunes
-- its dead versions itself, without waiting for autovacuum). Without it a
-- catch-up burst (a spilled backlog draining) grows the table by one dead
-- row per update until autovacuum comes round, and every ingest batch scans
-- them. Pages already full follow as their rows move.
ALTER TABLE latest_readings SET (fillfactor = 50);
