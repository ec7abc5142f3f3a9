//! What one input record turns into: the synchronous heart of the pipeline, with no I/O, no
//! clock and no runtime (the loop hands it the time), so it is tested on its own.

use crate::authentication::AuthenticationMode;
use crate::config::{PipelineConfig, record_bytes};
use crate::dead_letter::dead_letter_record;
use crate::routing::RoutingSnapshot;
use avro_codec::{CodecError, InputDecoder, OutputEncoder, SchemaId};
use ports::{InboundRecord, OutboundRecord};
use router_core::{
    DeadLetterCode, DeadLetterReason, Decision, ProcessorToConsumerRef, map_borrowed,
};
use std::sync::Arc;
use tracing::debug;

/// One planned output, with its dead-letter code when it is a dead letter.
pub(crate) type PlannedOutput = (OutboundRecord, Option<DeadLetterCode>);

/// The outputs one input record causes: one per target of its destination, or one dead letter.
pub(crate) struct Plan {
    pub(crate) outputs: Vec<PlannedOutput>,
    /// The event's own timestamp when it is routed (for the end-to-end latency); `None` for a
    /// dead letter.
    pub(crate) event_timestamp_ms: Option<i64>,
    /// Why the event's signature did not verify ([`tenant_auth::AuthFailure::kind`]), when
    /// tenant authentication is on and it did not.
    pub(crate) authentication_failure: Option<&'static str>,
}

/// A record's writer schema is not in the decoder's cache yet: load it, then plan again.
pub(crate) struct NotLoaded(pub(crate) SchemaId);

/// Decodes, routes, maps and encodes records against the routing snapshot in force.
pub(crate) struct Planner {
    decoder: InputDecoder,
    snapshot: Arc<RoutingSnapshot>,
    /// Topic and encoder of each of the snapshot's outputs: a short list scanned by name is
    /// cheaper per record than the snapshot's hash map (SipHash of the topic).
    output_encoders: Vec<(Arc<str>, OutputEncoder)>,
    /// The output list of the last plan, handed back by the loop, so planning allocates none.
    spare_outputs: Vec<PlannedOutput>,
    processor_id: String,
    dead_letter_topic: Arc<str>,
    max_record_bytes: usize,
}

impl Planner {
    pub(crate) fn new(
        config: &PipelineConfig,
        decoder: InputDecoder,
        snapshot: Arc<RoutingSnapshot>,
    ) -> Self {
        let mut planner = Self {
            decoder,
            snapshot: Arc::clone(&snapshot),
            output_encoders: Vec::new(),
            spare_outputs: Vec::new(),
            processor_id: config.processor_id.clone(),
            dead_letter_topic: Arc::clone(&config.dead_letter_topic),
            max_record_bytes: config.max_record_bytes,
        };
        planner.install(snapshot);
        planner
    }

    /// Plans with `snapshot` from now on.
    pub(crate) fn install(&mut self, snapshot: Arc<RoutingSnapshot>) {
        self.output_encoders = snapshot
            .output_topics()
            .filter_map(|topic| snapshot.output(topic))
            .map(|prepared| (Arc::clone(&prepared.topic), prepared.encoder))
            .collect();
        self.snapshot = snapshot;
    }

    /// The routing snapshot in force.
    pub(crate) fn snapshot(&self) -> &Arc<RoutingSnapshot> {
        &self.snapshot
    }

    /// The decoder, for the loop to load a writer schema into.
    pub(crate) fn decoder(&self) -> &InputDecoder {
        &self.decoder
    }

    /// Decides what `record` turns into: routed outputs stamped with `now_ms`, or one
    /// dead-letter copy. A routed record's key and headers move into its output (cloned only
    /// for fan-out); a dead-lettered record's headers move into its dead-letter copy. A record
    /// whose writer schema is not loaded yet comes back as [`NotLoaded`].
    pub(crate) fn plan(
        &mut self,
        record: &mut InboundRecord,
        now_ms: i64,
    ) -> Result<Plan, NotLoaded> {
        let Some(value) = record.payload.as_deref() else {
            return Ok(self.dead_letter_plan(record, &DeadLetterReason::MissingValue, None));
        };
        // One size rule for everything the outputs carry: key, headers and value.
        let size = record_bytes(record.key.as_deref(), &record.headers, value.len());
        if size > self.max_record_bytes {
            let reason = DeadLetterReason::TooLarge {
                size,
                limit: self.max_record_bytes,
            };
            return Ok(self.dead_letter_plan(record, &reason, None));
        }
        let decoded = match self.decoder.decode_borrowed(value) {
            Ok(decoded) => decoded,
            Err(CodecError::UnknownSchemaId { schema_id }) => return Err(NotLoaded(schema_id)),
            Err(error) => return Ok(self.plan_undecodable(record, &error)),
        };
        let event = decoded.view();
        let snapshot = Arc::clone(&self.snapshot);
        // The identity the event claims is what the policy judges: check it first.
        let mut authentication_failure = None;
        if let Some(authentication) = snapshot.authentication()
            && let Err(failure) = authentication.verify(
                &event,
                record.key.as_deref(),
                value,
                &record.headers,
                record.timestamp_ms,
                now_ms,
            )
        {
            debug!(%failure, topic = %record.topic, partition = record.partition, offset = record.offset, "Tenant signature did not verify.");
            authentication_failure = Some(failure.kind());
            if authentication.mode == AuthenticationMode::Enforce {
                let reason = DeadLetterReason::Unauthenticated {
                    detail: failure.to_string(),
                };
                let schema_id = input_schema_id(record);
                let mut plan = self.dead_letter_plan(record, &reason, schema_id);
                plan.authentication_failure = authentication_failure;
                return Ok(plan);
            }
        }
        let decision = snapshot.router().decide_for(
            event.origin_service_type,
            event.origin_service_id,
            event.destination_service_type,
        );
        let targets = match decision {
            Decision::Route(targets) => targets,
            Decision::DeadLetter(reason) => {
                let schema_id = input_schema_id(record);
                let mut plan = self.dead_letter_plan(record, &reason, schema_id);
                plan.authentication_failure = authentication_failure;
                return Ok(plan);
            }
        };
        if snapshot.authentication().is_some() {
            // The signature is over the input record, not the output: it stays with the input
            // and its dead letters (so a replay verifies again) and is not passed on.
            record
                .headers
                .retain(|(name, _)| !tenant_auth::HEADERS.contains(&name.as_str()));
        }
        let mut outputs = self.take_spare_outputs();
        // Borrowed end to end: the output's strings are the input's bytes and the processor id,
        // copied once, into the encoded value.
        let output = map_borrowed(&event, &self.processor_id, now_ms);
        // Key and headers are cloned for all targets but the last, which takes them (headers
        // cost nothing when the input has none).
        if let Some((last, others)) = targets.split_last() {
            for target in others {
                let key = record.key.clone();
                let headers = record.headers.clone();
                outputs.push((self.encode_for(&target.topic, &output, key, headers), None));
            }
            let key = record.key.take();
            let headers = std::mem::take(&mut record.headers);
            outputs.push((self.encode_for(&last.topic, &output, key, headers), None));
        }
        Ok(Plan {
            outputs,
            event_timestamp_ms: Some(event.event_timestamp),
            authentication_failure,
        })
    }

    /// The dead-letter plan of a record whose bytes cannot be decoded.
    pub(crate) fn plan_undecodable(
        &mut self,
        record: &mut InboundRecord,
        error: &CodecError,
    ) -> Plan {
        let schema_id = input_schema_id(record);
        let reason = poison_reason(error, schema_id);
        self.dead_letter_plan(record, &reason, schema_id)
    }

    /// Takes back the (drained) output list of a plan, for the next one.
    pub(crate) fn recycle(&mut self, outputs: Vec<PlannedOutput>) {
        self.spare_outputs = outputs;
    }

    fn take_spare_outputs(&mut self) -> Vec<PlannedOutput> {
        let mut outputs = std::mem::take(&mut self.spare_outputs);
        outputs.clear();
        outputs
    }

    fn encode_for(
        &self,
        topic: &str,
        output: &ProcessorToConsumerRef<'_>,
        key: Option<Vec<u8>>,
        headers: Vec<(String, Vec<u8>)>,
    ) -> OutboundRecord {
        let mut payload = Vec::new();
        let prepared = self
            .output_encoders
            .iter()
            .find(|(name, _)| **name == *topic);
        let topic = match prepared {
            Some((name, encoder)) => {
                encoder.encode_borrowed(output, &mut payload);
                Arc::clone(name)
            }
            // Unreachable by construction: snapshots prepare every target of their router.
            None => Arc::from(topic),
        };
        OutboundRecord {
            topic,
            key,
            payload,
            headers,
        }
    }

    fn dead_letter_plan(
        &mut self,
        record: &mut InboundRecord,
        reason: &DeadLetterReason,
        schema_id: Option<u32>,
    ) -> Plan {
        debug!(
            reason = reason.code().as_str(),
            topic = %record.topic,
            partition = record.partition,
            offset = record.offset,
            "Dead-lettering record."
        );
        let output = dead_letter_record(
            &self.dead_letter_topic,
            record,
            reason,
            schema_id,
            &self.processor_id,
        );
        let mut outputs = self.take_spare_outputs();
        outputs.push((output, Some(reason.code())));
        Plan {
            outputs,
            event_timestamp_ms: None,
            authentication_failure: None,
        }
    }
}

/// The schema id in the header of `record`'s value, for the dead-letter headers.
fn input_schema_id(record: &InboundRecord) -> Option<u32> {
    let value = record.payload.as_deref()?;
    InputDecoder::schema_id_of(value).ok().map(|id| id.0)
}

/// The dead-letter reason for a decode error that is a property of the bytes.
fn poison_reason(error: &CodecError, schema_id: Option<u32>) -> DeadLetterReason {
    let mismatch = matches!(
        error,
        CodecError::IncompatibleSchema { .. } | CodecError::Unreadable { .. }
    );
    match (mismatch, schema_id) {
        (true, Some(schema_id)) => DeadLetterReason::SchemaMismatch {
            schema_id,
            detail: error.to_string(),
        },
        _ => DeadLetterReason::Undecodable {
            detail: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use avro_codec::{
        InputEncoder, OutputDecoder, PROCESSOR_TO_CONSUMER_SCHEMA, PRODUCER_TO_PROCESSOR_SCHEMA,
    };
    use router_core::dead_letter_headers as headers;
    use router_core::{ProducerToProcessor, Router};

    const INPUT_SCHEMA: SchemaId = SchemaId(1);
    const OUTPUT_SCHEMA: SchemaId = SchemaId(2);
    const NOW_MS: i64 = 1_700_000_000_123;

    const ROUTING: &str = r#"
        version = 1
        [destinations.FINANCE]
        outputs = [
            { topic = "out.finance", subject = "processor.to.consumer-value" },
            { topic = "out.audit", subject = "processor.to.consumer-value" },
        ]
        [policy]
        mode = "deny-by-default"
        [[policy.allow]]
        origin_service_type = "MARKETING"
        destinations = ["FINANCE"]
    "#;

    fn planner() -> Planner {
        let router = Router::from_toml_str(ROUTING).expect("valid routing");
        let snapshot = RoutingSnapshot::with_output_schema(router, OUTPUT_SCHEMA);
        let decoder = InputDecoder::new();
        decoder
            .add_writer_schema(INPUT_SCHEMA, PRODUCER_TO_PROCESSOR_SCHEMA)
            .expect("the input schema is readable");
        let config = PipelineConfig::new("processor-7", "dead.letters");
        Planner::new(&config, decoder, Arc::new(snapshot))
    }

    fn event(origin: &str, destination: &str) -> ProducerToProcessor {
        ProducerToProcessor {
            origin_service_id: format!("{origin}-1"),
            origin_service_type: origin.to_owned(),
            destination_service_type: destination.to_owned(),
            event_timestamp: 1_650_000_000_000,
            payload: "hello".to_owned(),
        }
    }

    fn record(value: Option<Vec<u8>>) -> InboundRecord {
        InboundRecord {
            topic: Arc::from("in"),
            partition: 2,
            offset: 40,
            key: Some(b"key-1".to_vec()),
            payload: value,
            timestamp_ms: None,
            headers: vec![("trace".to_owned(), b"abc".to_vec())],
        }
    }

    fn framed(event: &ProducerToProcessor) -> Option<Vec<u8>> {
        Some(InputEncoder::new(INPUT_SCHEMA).encode_to_vec(event))
    }

    fn header<'a>(record: &'a OutboundRecord, name: &str) -> Option<&'a [u8]> {
        record
            .headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_slice())
    }

    #[test]
    fn an_allowed_event_goes_to_every_target_with_its_key_headers_and_the_time_given() {
        let mut planner = planner();
        let mut input = record(framed(&event("MARKETING", "finance")));
        let Ok(plan) = planner.plan(&mut input, NOW_MS) else {
            panic!("the schema is loaded");
        };
        assert_eq!(plan.event_timestamp_ms, Some(1_650_000_000_000));
        let topics: Vec<&str> = plan.outputs.iter().map(|(o, _)| &*o.topic).collect();
        assert_eq!(topics, ["out.finance", "out.audit"]);
        let decoder = OutputDecoder::new();
        decoder
            .add_writer_schema(OUTPUT_SCHEMA, PROCESSOR_TO_CONSUMER_SCHEMA)
            .expect("the output schema is readable");
        for (output, dead_letter_code) in &plan.outputs {
            assert_eq!(*dead_letter_code, None);
            assert_eq!(output.key.as_deref(), Some(&b"key-1"[..]));
            assert_eq!(header(output, "trace"), Some(&b"abc"[..]));
            let decoded = decoder.decode(&output.payload).expect("a framed output");
            assert_eq!(decoded.processor_service_id, "processor-7");
            assert_eq!(decoded.processor_event_timestamp, NOW_MS);
            assert_eq!(decoded.producer_service_id, "MARKETING-1");
            assert_eq!(decoded.destination_type, "FINANCE");
            assert_eq!(decoded.payload, "hello");
        }
    }

    #[test]
    fn an_unknown_schema_id_asks_for_a_load_and_plans_nothing() {
        let mut planner = planner();
        let unknown = InputEncoder::new(SchemaId(99)).encode_to_vec(&event("MARKETING", "FINANCE"));
        let mut input = record(Some(unknown));
        assert!(matches!(
            planner.plan(&mut input, NOW_MS),
            Err(NotLoaded(SchemaId(99)))
        ));
        assert!(input.key.is_some(), "the record is left as it was");
    }

    #[test]
    fn what_cannot_be_routed_becomes_one_dead_letter_with_its_reason() {
        let mut planner = planner();
        for (mut input, reason) in [
            (
                record(framed(&event("LOGISTICS", "FINANCE"))),
                "unauthorized",
            ),
            (
                record(framed(&event("MARKETING", "NOWHERE"))),
                "unknown-destination",
            ),
            (record(None), "missing-value"),
            (record(Some(vec![0; 2 * 1024 * 1024])), "too-large"),
            (
                record(Some(b"\x00\x00\x00\x00\x01garbage".to_vec())),
                "undecodable",
            ),
        ] {
            let Ok(plan) = planner.plan(&mut input, NOW_MS) else {
                panic!("{reason}: the schema is loaded");
            };
            assert_eq!(plan.event_timestamp_ms, None, "{reason}");
            assert_eq!(plan.outputs.len(), 1, "{reason}");
            let (dead_letter, code) = &plan.outputs[0];
            assert_eq!(code.map(DeadLetterCode::as_str), Some(reason));
            assert_eq!(&*dead_letter.topic, "dead.letters");
            assert_eq!(
                header(dead_letter, headers::REASON),
                Some(reason.as_bytes())
            );
            assert_eq!(
                header(dead_letter, headers::SOURCE_OFFSET),
                Some(&b"40"[..])
            );
            assert_eq!(dead_letter.key.as_deref(), Some(&b"key-1"[..]));
        }
    }

    const KEYS: &str = r#"
        [[key]]
        id = "marketing-1"
        service_type = "MARKETING"
        secret = "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e"
        [[key]]
        id = "logistics-1"
        service_type = "LOGISTICS"
        secret = "a1c3e5f7092b4d6f8a0c2e4f6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4f"
    "#;

    fn authenticating_planner(mode: crate::AuthenticationMode) -> Planner {
        use tenant_auth::{Freshness, KeyRing, Verifier};
        let ring = KeyRing::from_toml_str(KEYS).expect("valid key file");
        let authentication = crate::TenantAuthentication {
            mode,
            verifier: Arc::new(Verifier::new(ring, Freshness::default())),
            clock: crate::SigningClock::WallClock,
        };
        let mut planner = planner();
        let snapshot = RoutingSnapshot::with_output_schema(
            Router::from_toml_str(ROUTING).expect("valid routing"),
            OUTPUT_SCHEMA,
        )
        .with_authentication(Some(Arc::new(authentication)));
        planner.install(Arc::new(snapshot));
        planner
    }

    /// `input` signed by key `key_id` (secret of `secret_hex`) as `service_type:service_id`.
    fn signed(
        mut input: InboundRecord,
        key_id: &str,
        secret_hex: &str,
        identity: (&str, &str),
    ) -> InboundRecord {
        use tenant_auth::{Secret, Signer, TenantIdentity};
        let signer = Signer::new(
            key_id,
            Secret::from_hex(secret_hex).expect("hex secret"),
            TenantIdentity::new(identity.0, identity.1).expect("valid identity"),
        )
        .expect("valid signer");
        let value = input.payload.clone().expect("a value");
        let headers = signer.sign(input.key.as_deref(), &value, NOW_MS - 1_000);
        input.headers.extend(
            headers
                .into_pairs()
                .map(|(name, value)| (name.to_owned(), value)),
        );
        input
    }

    const MARKETING_SECRET: &str =
        "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e";

    #[test]
    fn enforced_authentication_routes_signed_events_and_dead_letters_the_rest() {
        let mut planner = authenticating_planner(crate::AuthenticationMode::Enforce);
        let genuine = signed(
            record(framed(&event("MARKETING", "FINANCE"))),
            "marketing-1",
            MARKETING_SECRET,
            ("MARKETING", "MARKETING-1"),
        );
        // Signed by MARKETING's key, but the event claims to be LOGISTICS.
        let spoofed = signed(
            record(framed(&event("LOGISTICS", "FINANCE"))),
            "marketing-1",
            MARKETING_SECRET,
            ("MARKETING", "MARKETING-1"),
        );
        // Signed, then the value edited.
        let mut tampered = genuine.clone();
        if let Some(value) = tampered.payload.as_mut() {
            let last = value.len() - 1;
            value[last] ^= 1;
        }
        let unsigned = record(framed(&event("MARKETING", "FINANCE")));

        let Ok(plan) = planner.plan(&mut genuine.clone(), NOW_MS) else {
            panic!("loaded");
        };
        assert_eq!(plan.authentication_failure, None);
        assert_eq!(plan.outputs.len(), 2, "routed to both targets");
        for (output, code) in &plan.outputs {
            assert!(code.is_none());
            assert_eq!(
                header(output, "trace"),
                Some(&b"abc"[..]),
                "other headers travel on"
            );
            for name in tenant_auth::HEADERS {
                assert_eq!(header(output, name), None, "{name} stays with the input");
            }
        }

        for (mut input, kind) in [
            (spoofed, "identity-mismatch"),
            (tampered, "bad-signature"),
            (unsigned, "missing-signature"),
        ] {
            let Ok(plan) = planner.plan(&mut input, NOW_MS) else {
                panic!("{kind}: loaded");
            };
            assert_eq!(plan.authentication_failure, Some(kind));
            assert_eq!(plan.outputs.len(), 1, "{kind}");
            let (dead_letter, code) = &plan.outputs[0];
            assert_eq!(*code, Some(DeadLetterCode::Unauthenticated), "{kind}");
            assert_eq!(
                header(dead_letter, headers::REASON),
                Some(&b"unauthenticated"[..])
            );
        }
    }

    #[test]
    fn observed_authentication_routes_everything_and_reports_failures() {
        let mut planner = authenticating_planner(crate::AuthenticationMode::Observe);
        let mut unsigned = record(framed(&event("MARKETING", "FINANCE")));
        let Ok(plan) = planner.plan(&mut unsigned, NOW_MS) else {
            panic!("loaded");
        };
        assert_eq!(plan.authentication_failure, Some("missing-signature"));
        assert_eq!(plan.outputs.len(), 2, "routed as before");
        assert!(plan.outputs.iter().all(|(_, code)| code.is_none()));
    }
}
