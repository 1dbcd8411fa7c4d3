-- Signed submissions: device keys in the registry, and the key of every decided event.

-- Public keys of the TPS devices that sign tallies. `tally registry revoke` adds a newer row for a key:
-- the row with the latest `updated_at` is the key's state.
CREATE TABLE IF NOT EXISTS registry_keys
(
    key_id      String,
    tps         String,
    public_key  String,                           -- Ed25519, 32 bytes, standard base64
    valid_from  Nullable(DateTime64(3, 'UTC')),   -- bounds on the signed submitted_at
    valid_until Nullable(DateTime64(3, 'UTC')),
    revoked_at  Nullable(DateTime64(3, 'UTC')),   -- events received from then on are rejected
    updated_at  DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY key_id;

-- Which device key signed each decided event ('' when unsigned): the audit trail names it.
ALTER TABLE tally_decisions ADD COLUMN IF NOT EXISTS key_id String DEFAULT '' AFTER gateway;
