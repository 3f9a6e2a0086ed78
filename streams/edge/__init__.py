"""Where events enter Kafka (the publisher, the only holder of the pseudonym key) and the
Kafka clients and topics every other part uses."""
