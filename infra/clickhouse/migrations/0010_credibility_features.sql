-- What each credibility score was computed from: the signals' raw values before weights
-- (incident.v2 `features`, here JSON {"signal": value}; base_rate is the base rate's log-odds),
-- so that `binhyen credibility fit` learns from what the scorer saw and `report` re-scores it.
ALTER TABLE incidents ADD COLUMN features String DEFAULT '';

-- Each tip's score as its incident stood when the tip joined it, once per scorer version.
-- Writer-only: a tip's reporter_reputation value would tell an analyst about its reporter.
CREATE TABLE IF NOT EXISTS {private}.tip_scores
(
    event_id String,
    incident_id String,
    commune_code UInt32,
    occurred_at DateTime('Asia/Ho_Chi_Minh'),
    scorer_version LowCardinality(String),
    credibility Float32,
    features String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (scorer_version, event_id);
