#!/bin/bash
# One-shot job of deploy/compose.yaml: registers schemas/*.avsc as `cargo xtask schemas` does:
# `<file stem>-value`, and the output schema also under `<output topic>-value` for every output
# topic (the TopicNameStrategy of the prototype). The input schema goes first, so a fresh registry
# gives it id 1 and the output schema id 2. Runs in the cp-schema-registry image (bash, curl).
set -euo pipefail
registry="${REGISTRY_URL:-http://schema-registry:8081}"
output_topics=(processor.to.finance processor.to.marketing processor.to.logistics)

register() { # subject, file
  # The schema as one JSON string: backslashes and quotes escaped, line breaks dropped.
  local schema
  schema=$(sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' "$2" | tr -d '\n\r')
  printf '{"schemaType":"AVRO","schema":"%s"}' "$schema" >/tmp/body.json
  echo "registering $2 as $1"
  curl -fsS -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
    --data @/tmp/body.json "$registry/subjects/$1/versions"
  echo
}

register producer.to.processor-value /schemas/producer.to.processor.avsc
register processor.to.consumer-value /schemas/processor.to.consumer.avsc
for topic in "${output_topics[@]}"; do
  register "$topic-value" /schemas/processor.to.consumer.avsc
done
