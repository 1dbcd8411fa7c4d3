#!/bin/bash
# One-shot Kafka setup (the `kafka-setup` service): SCRAM users, topics and ACLs. It shares the
# broker's network namespace and talks to the loopback-only ADMIN listener, the one place where the
# unauthenticated principal is a super user. Idempotent: safe to run again.
set -euo pipefail
BIN=/opt/kafka/bin
ADMIN=127.0.0.1:9092
PARTITIONS=${TALLY_PARTITIONS:-8}

for user in gateway worker; do
  var="TALLY_KAFKA_${user^^}_PASSWORD"
  "$BIN/kafka-configs.sh" --bootstrap-server "$ADMIN" --alter --entity-type users --entity-name "$user" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=${!var}]"
done

for topic in tally.submissions tally.rejected; do
  "$BIN/kafka-topics.sh" --bootstrap-server "$ADMIN" --create --if-not-exists --topic "$topic" \
    --partitions "$PARTITIONS" --replication-factor 1
done

acl() { "$BIN/kafka-acls.sh" --bootstrap-server "$ADMIN" --add --force "$@"; }
# Gateways may only write submissions (idempotently). Nothing else: no reads, no other topic.
acl --allow-principal User:gateway --operation Write --operation Describe --topic tally.submissions
acl --allow-principal User:gateway --operation IdempotentWrite --cluster
# Workers read submissions in their consumer group, write rejections, and keep faust's own topics
# (prefixed by the group id, e.g. its assignor topic).
acl --allow-principal User:worker --operation Read --operation Describe --topic tally.submissions
acl --allow-principal User:worker --operation Write --operation Describe --topic tally.rejected
acl --allow-principal User:worker --operation Read --group tally-worker
acl --allow-principal User:worker --operation All --resource-pattern-type prefixed --topic tally-worker-
acl --allow-principal User:worker --operation Describe --operation Create --cluster
# Dashboards and the API get no Kafka user at all: they read ClickHouse.
echo "kafka users, topics and ACLs are in place"
