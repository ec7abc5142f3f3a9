//! The bench workload: seed-sized events from 3 tenants to 3 destinations, each carrying its id
//! and send time in the payload so the drain can verify and time it without a registry.
//!
//! The payload has the seed's shape and size, `"dummy-payload "` followed by 36 characters (the
//! seed puts a UUID there): `<id, 12 digits>-<send time in µs since the epoch, 23 digits>`.
//! The payload is the last field of the input record, of the output record and of the
//! dead-letter copy (which keeps the input bytes), and a 50-byte string has a one-byte length,
//! so the drain reads the last 50 bytes of any value it finds.

use router_core::ProducerToProcessor;

pub(crate) const TENANTS: [&str; 3] = ["FINANCE", "MARKETING", "LOGISTICS"];
pub(crate) const DESTINATIONS: [&str; 3] = ["FINANCE", "MARKETING", "LOGISTICS"];
/// Instances per tenant: spreads keys (and so partitions) more evenly than one id per tenant.
const INSTANCES_PER_TENANT: u64 = 4;

const PAYLOAD_PREFIX: &[u8] = b"dummy-payload ";
const ID_DIGITS: usize = 12;
const TIME_DIGITS: usize = 23;
/// Length of the payload string: the seed's `"dummy-payload " + uuid4`.
pub(crate) const PAYLOAD_LEN: usize = PAYLOAD_PREFIX.len() + ID_DIGITS + 1 + TIME_DIGITS;

/// Event number `id` of a run, stamped with `sent_at_us`.
pub(crate) fn event(id: u64, sent_at_us: i64) -> ProducerToProcessor {
    let tenant = TENANTS[(id % 3) as usize];
    let destination = DESTINATIONS[((id / 3) % 3) as usize];
    ProducerToProcessor {
        origin_service_id: format!(
            "{}-{}",
            tenant.to_lowercase(),
            (id / 9) % INSTANCES_PER_TENANT
        ),
        origin_service_type: tenant.to_owned(),
        destination_service_type: destination.to_owned(),
        event_timestamp: sent_at_us / 1000,
        payload: payload(id, sent_at_us),
    }
}

/// The producers' key convention: `"<origin_service_id>:<DESTINATION>"`.
pub(crate) fn key_of(event: &ProducerToProcessor) -> Vec<u8> {
    format!(
        "{}:{}",
        event.origin_service_id, event.destination_service_type
    )
    .into_bytes()
}

fn payload(id: u64, sent_at_us: i64) -> String {
    format!("dummy-payload {id:0ID_DIGITS$}-{sent_at_us:0TIME_DIGITS$}")
}

/// Whether event `id` is one of the `percent` % poison events (spread evenly over the run).
pub(crate) fn is_poison(id: u64, percent: u64) -> bool {
    percent > 0 && (id * percent) / 100 != ((id + 1) * percent) / 100
}

/// Turns a valid framed value into poison the processor must dead-letter: a wrong magic byte
/// (undecodable framing), the rest of the bytes, payload included, unchanged.
pub(crate) fn poison(value: &mut [u8]) {
    if let Some(magic) = value.first_mut() {
        *magic = 0x01;
    }
}

/// The id and send time carried by any value of the bench (input, output or dead-letter copy).
pub(crate) fn parse_tail(value: &[u8]) -> Option<(u64, i64)> {
    let tail = value.get(value.len().checked_sub(PAYLOAD_LEN)?..)?;
    let rest = tail.strip_prefix(PAYLOAD_PREFIX)?;
    let (id, rest) = rest.split_at(ID_DIGITS);
    let time = rest.strip_prefix(b"-")?;
    Some((digits(id)?, i64::try_from(digits(time)?).ok()?))
}

fn digits(bytes: &[u8]) -> Option<u64> {
    bytes.iter().try_fold(0u64, |value, byte| {
        byte.is_ascii_digit()
            .then(|| value.checked_mul(10)?.checked_add(u64::from(byte - b'0')))
            .flatten()
    })
}

pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use avro_codec::{InputEncoder, OutputEncoder, SchemaId};
    use router_core::map_into_output;

    #[test]
    fn payload_has_the_seed_size() {
        let event = event(7, 1_760_000_000_123_456);
        assert_eq!(event.payload.len(), PAYLOAD_LEN);
        assert_eq!(
            PAYLOAD_LEN,
            "dummy-payload 00000000-0000-0000-0000-000000000000".len()
        );
    }

    #[test]
    fn id_and_send_time_read_back_from_input_and_output_values() {
        let event = event(123_456, 1_760_000_000_123_456);
        let input = InputEncoder::new(SchemaId(1)).encode_to_vec(&event);
        assert_eq!(parse_tail(&input), Some((123_456, 1_760_000_000_123_456)));
        let output = OutputEncoder::new(SchemaId(2)).encode_to_vec(&map_into_output(
            event,
            "event-processor-1",
            0,
        ));
        assert_eq!(parse_tail(&output), Some((123_456, 1_760_000_000_123_456)));
    }

    #[test]
    fn foreign_values_are_not_mistaken_for_bench_events() {
        assert_eq!(parse_tail(b"short"), None);
        let mut value = vec![b'x'; 10];
        value.extend_from_slice(b"dummy-payload 00000000000a-00000000000000000000001");
        assert_eq!(parse_tail(&value), None);
    }

    #[test]
    fn poison_share_is_the_requested_percentage() {
        let poison = (0..1000).filter(|id| is_poison(*id, 10)).count();
        assert_eq!(poison, 100);
        assert_eq!((0..1000).filter(|id| is_poison(*id, 0)).count(), 0);
    }

    #[test]
    fn every_tenant_reaches_every_destination() {
        let pairs: std::collections::BTreeSet<(String, String)> = (0..9)
            .map(|id| {
                let event = event(id, 0);
                (event.origin_service_type, event.destination_service_type)
            })
            .collect();
        assert_eq!(pairs.len(), 9);
    }
}
