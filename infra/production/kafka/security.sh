#!/bin/sh
# Kafka users (SCRAM-SHA-512) and ACLs for the production reference. Run once by the
# `kafka-security` service inside the broker's network namespace, over the broker's
# loopback-only PLAINTEXT listener (the only listener without SASL, reachable from no other
# host). Idempotent: re-running it re-sets passwords and re-adds the same ACLs.
#
# Principals, and what each may do (nothing else: allow.everyone.if.no.acl.found=false):
#   publisher  upstream systems and `binhyen publish` / `binhyen alert`: WRITE the input topics only
#   worker     the stream workers: READ inputs and the control topic, WRITE outputs, the control
#              topic and their state changelogs, create binhyen's topics, their consumer group
#   replayer   `binhyen replay`: READ the log topics (no group, no writes)
#   dpo        the data-protection officer: READ the dead-letter topic (raw originals)
set -eu
B=localhost:9094
T=binhyen
INPUTS="$T.tips.v1 $T.device-signals.v1 $T.model-changes.v1 $T.feedback.v1 $T.alert-actions.v1"
OUTPUTS="$T.incidents.v1 $T.alerts.v1 $T.dead-letter.v1 $T.commune-control.v1"
GROUP="${BINHYEN_WORKER_GROUP:-binhyen-worker}"

user() {  # user NAME PASSWORD
  /opt/kafka/bin/kafka-configs.sh --bootstrap-server "$B" --alter --entity-type users --entity-name "$1" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$2]"
}
acl() {  # acl PRINCIPAL OPERATION RESOURCE-OPTIONS...
  principal=$1; operation=$2; shift 2
  /opt/kafka/bin/kafka-acls.sh --bootstrap-server "$B" --add --allow-principal "User:$principal" \
    --operation "$operation" "$@"
}

user publisher "$KAFKA_PUBLISHER_PASSWORD"
user worker "$KAFKA_WORKER_PASSWORD"
user replayer "$KAFKA_REPLAYER_PASSWORD"
user dpo "$KAFKA_DPO_PASSWORD"

for topic in $INPUTS; do
  acl publisher Write --topic "$topic"
  acl publisher Describe --topic "$topic"
  acl worker Read --topic "$topic"
  acl replayer Read --topic "$topic"
done
acl publisher IdempotentWrite --cluster
for topic in $OUTPUTS; do
  acl worker Write --topic "$topic"
done
acl worker Read --topic "$T.commune-control.v1"
acl worker Read --topic "$T.alerts.v1"        # the delivery agent pages from it
acl replayer Read --topic "$T.incidents.v1"
acl replayer Read --topic "$T.alerts.v1"
acl worker Describe --topic "$T." --resource-pattern-type prefixed
acl worker Create --topic "$T." --resource-pattern-type prefixed
acl worker All --topic "$GROUP" --resource-pattern-type prefixed   # state changelogs, faust's own topics
acl worker Read --group "$GROUP" --resource-pattern-type prefixed
acl worker IdempotentWrite --cluster
acl replayer Describe --topic "$T." --resource-pattern-type prefixed
acl dpo Read --topic "$T.dead-letter.v1"
acl dpo Describe --topic "$T.dead-letter.v1"
acl dpo Read --group dpo --resource-pattern-type prefixed
echo "kafka users and ACLs set"
