-- Seats a dapil elects (registry.v1 `seats`, required for legislative ballots; 0 for PPWP). Added by
-- ALTER so that a database made before seats existed takes it too; idempotent like every file here.
ALTER TABLE registry_contests ADD COLUMN IF NOT EXISTS seats UInt16 DEFAULT 0;
