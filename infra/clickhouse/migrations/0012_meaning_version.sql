-- A processor version fixes the meaning model too (what a tip's text is read to say: category,
-- urgency, not a tip), so every replica reads text alike and `binhyen reprocess --meaning`
-- can try a new model on the history. Versions recorded before hold '': the model from files.
ALTER TABLE {private}.processor_versions ADD COLUMN meaning String DEFAULT '';
