#!/bin/bash
# One-shot job of deploy/compose.yaml: creates the stack's topics (idempotent), as a deployment
# would before the processor starts. Runs in the apache/kafka image.
set -euo pipefail
bootstrap="${BOOTSTRAP:-kafka:9092}"
for topic in producer.to.processor processor.to.finance processor.to.marketing \
             processor.to.logistics producer.to.processor.dlq; do
  /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$bootstrap" --create --if-not-exists \
    --topic "$topic" --partitions 3 --replication-factor 1
done
/opt/kafka/bin/kafka-topics.sh --bootstrap-server "$bootstrap" --list
