-- The moment a device key's revocation was judged by for each decision: when a worker read the
-- record, or its Kafka timestamp if later (streams/core/pipeline.py, Message.judged_at). The Kafka
-- timestamp is the producer's to set; this one is not, so a record backdated before a revocation is
-- refused and the audit trail shows by which moment.
ALTER TABLE tally_decisions ADD COLUMN IF NOT EXISTS judged_at DateTime64(3);

-- Ballots KPU allocated to a TPS where that is more than its DPT plus 2% (a documented exception,
-- the registry's `ballots`); 0: the law's DPT plus 2%, rounded up (streams/core/registry.py).
ALTER TABLE registry_tps ADD COLUMN IF NOT EXISTS ballots UInt32 DEFAULT 0;
