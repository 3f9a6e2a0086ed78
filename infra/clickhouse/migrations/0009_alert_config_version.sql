-- Which version of the alert rules decided each alert step (the alert event's config_version,
-- schema alert.v2); empty for steps written before.
ALTER TABLE alerts ADD COLUMN config_version LowCardinality(String) DEFAULT '';
