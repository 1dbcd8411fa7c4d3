-- Turnout over the TPS that reported: each TPS's DPT, counted once on its first count, in the
-- summary rows of the written levels and in its change row (summed like tps_reported), so that a
-- region's registered voters of the TPS that reported are exact now and as of any moment. Rows
-- written before this column read 0.
ALTER TABLE region_totals ADD COLUMN IF NOT EXISTS registered Int64 DEFAULT 0;
