//! What each send of a run is: which tenant, which destination, which bytes. Pure.

use anyhow::{Result, bail};
use router_core::ProducerToProcessor;
use uuid::Uuid;

/// Prefix of every payload; the uuid after it identifies the event end to end.
pub(crate) const PAYLOAD_PREFIX: &str = "dummy-payload ";

/// A tenant service instance: its service type and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tenant {
    pub(crate) service_type: String,
    pub(crate) service_id: String,
}

impl Tenant {
    pub(crate) fn new(service_type: &str, service_id: &str) -> Result<Self> {
        let (service_type, service_id) = (service_type.trim(), service_id.trim());
        if service_type.is_empty() || service_id.is_empty() {
            bail!(
                "tenant `{service_type}:{service_id}` needs a non-empty service type and id, e.g. FINANCE:producer-1"
            );
        }
        Ok(Self {
            service_type: service_type.to_owned(),
            service_id: service_id.to_owned(),
        })
    }

    /// `TYPE:ID`; the id may itself contain colons.
    pub(crate) fn parse(raw: &str) -> Result<Self> {
        match raw.split_once(':') {
            Some((service_type, service_id)) => Self::new(service_type, service_id),
            None => bail!("tenant `{raw}` is not TYPE:ID, e.g. --tenant FINANCE:producer-1"),
        }
    }

    /// The record key of this tenant's events for `destination`, as the prototype wrote it.
    pub(crate) fn key_for(&self, destination: &str) -> String {
        format!("{}:{destination}", self.service_id)
    }
}

/// One send of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The tenant's (index) event for the destination (index).
    Event { tenant: usize, destination: usize },
    /// An undecodable value, numbered from 0.
    Poison { number: u64 },
}

/// The sends of a run in order: tenants take turns, each tenant's i-th event goes to
/// destination i mod the number of destinations, and poison values are spread evenly among
/// the events.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    tenants: u64,
    destinations: u64,
    events: u64,
    poison: u64,
    next: u64,
}

impl Schedule {
    pub(crate) fn new(tenants: usize, destinations: usize, per_tenant: u64, poison: u64) -> Self {
        let tenants = u64::try_from(tenants.max(1)).unwrap_or(u64::MAX);
        Self {
            tenants,
            destinations: u64::try_from(destinations.max(1)).unwrap_or(u64::MAX),
            events: per_tenant.saturating_mul(tenants),
            poison,
            next: 0,
        }
    }

    /// Sends in the whole run.
    pub(crate) fn len(&self) -> u64 {
        self.events.saturating_add(self.poison)
    }

    fn slot(&self, position: u64) -> Slot {
        let total = u128::from(self.len());
        let (position, poison) = (u128::from(position), u128::from(self.poison));
        // Bresenham-style: position p is poison when the count of poison values due by p + 1
        // grows, so exactly `poison` of `total` positions are poison, evenly spread.
        let poison_before = position * poison / total;
        let poison_through = (position + 1) * poison / total;
        if poison_through > poison_before {
            return Slot::Poison {
                number: u64::try_from(poison_before).unwrap_or(u64::MAX),
            };
        }
        let event = u64::try_from(position - poison_before).unwrap_or(u64::MAX);
        let round = event / self.tenants;
        Slot::Event {
            tenant: usize::try_from(event % self.tenants).unwrap_or(0),
            destination: usize::try_from(round % self.destinations).unwrap_or(0),
        }
    }
}

impl Iterator for Schedule {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        if self.next >= self.len() {
            return None;
        }
        let slot = self.slot(self.next);
        self.next += 1;
        Some(slot)
    }
}

/// Whether the `event_number`-th event (from 0, all tenants together) of a run with
/// `spoof_percent` spoofed events is spoofed: exactly `percent` of every 100 events, spread
/// evenly (the same Bresenham rule as poison values).
pub(crate) fn is_spoofed(event_number: u64, spoof_percent: u8) -> bool {
    let percent = u64::from(spoof_percent.min(100));
    let within = event_number % 100;
    (within + 1) * percent / 100 > within * percent / 100
}

/// The input record of one event; its id is the uuid at the end of the payload.
pub(crate) fn event_record(
    tenant: &Tenant,
    destination: &str,
    id: Uuid,
    now_ms: i64,
) -> ProducerToProcessor {
    ProducerToProcessor {
        origin_service_id: tenant.service_id.clone(),
        origin_service_type: tenant.service_type.clone(),
        destination_service_type: destination.to_owned(),
        event_timestamp: now_ms,
        payload: format!("{PAYLOAD_PREFIX}{id}"),
    }
}

/// A value no Confluent deserializer accepts: it does not start with the magic byte 0.
pub(crate) fn poison_value(number: u64) -> Vec<u8> {
    format!("poison {number}: not a Confluent-framed Avro value").into_bytes()
}

/// Key of a poison value, so it is easy to spot on the dead-letter topic.
pub(crate) fn poison_key(number: u64) -> String {
    format!("poison:{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(schedule: Schedule) -> Vec<(usize, usize)> {
        schedule
            .filter_map(|slot| match slot {
                Slot::Event {
                    tenant,
                    destination,
                } => Some((tenant, destination)),
                Slot::Poison { .. } => None,
            })
            .collect()
    }

    #[test]
    fn one_tenant_sends_round_robin_over_destinations() {
        let sends = events(Schedule::new(1, 2, 5, 0));
        assert_eq!(sends, [(0, 0), (0, 1), (0, 0), (0, 1), (0, 0)]);
    }

    #[test]
    fn tenants_take_turns_and_each_goes_round_robin() {
        let sends = events(Schedule::new(2, 3, 4, 0));
        assert_eq!(
            sends,
            [
                (0, 0),
                (1, 0),
                (0, 1),
                (1, 1),
                (0, 2),
                (1, 2),
                (0, 0),
                (1, 0)
            ]
        );
    }

    #[test]
    fn poison_values_are_spread_among_the_events() {
        let slots: Vec<Slot> = Schedule::new(1, 1, 8, 2).collect();
        assert_eq!(slots.len(), 10);
        let poison_positions: Vec<usize> = slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| matches!(slot, Slot::Poison { .. }))
            .map(|(position, _)| position)
            .collect();
        assert_eq!(poison_positions, [4, 9]);
        assert_eq!(
            slots
                .iter()
                .filter(|slot| matches!(slot, Slot::Event { .. }))
                .count(),
            8
        );
        let numbers: Vec<u64> = slots
            .iter()
            .filter_map(|slot| match slot {
                Slot::Poison { number } => Some(*number),
                Slot::Event { .. } => None,
            })
            .collect();
        assert_eq!(numbers, [0, 1]);
    }

    #[test]
    fn poison_alone_is_a_valid_run() {
        let slots: Vec<Slot> = Schedule::new(1, 1, 0, 3).collect();
        assert_eq!(
            slots,
            [
                Slot::Poison { number: 0 },
                Slot::Poison { number: 1 },
                Slot::Poison { number: 2 }
            ]
        );
    }

    #[test]
    fn empty_run_has_no_sends() {
        assert_eq!(Schedule::new(3, 3, 0, 0).count(), 0);
    }

    #[test]
    fn event_record_carries_the_id_in_the_payload_and_the_prototype_key() {
        let tenant = Tenant::parse("FINANCE:producer-1").expect("tenant");
        let id = Uuid::nil();
        let record = event_record(&tenant, "MARKETING", id, 1_650_000_000_000);
        assert_eq!(
            record,
            ProducerToProcessor {
                origin_service_id: "producer-1".to_owned(),
                origin_service_type: "FINANCE".to_owned(),
                destination_service_type: "MARKETING".to_owned(),
                event_timestamp: 1_650_000_000_000,
                payload: "dummy-payload 00000000-0000-0000-0000-000000000000".to_owned(),
            }
        );
        assert_eq!(tenant.key_for("MARKETING"), "producer-1:MARKETING");
    }

    #[test]
    fn tenant_id_may_contain_colons() {
        let tenant = Tenant::parse("LOGISTICS:eu:7").expect("tenant");
        assert_eq!(tenant.service_type, "LOGISTICS");
        assert_eq!(tenant.service_id, "eu:7");
    }

    #[test]
    fn blank_tenant_parts_are_rejected() {
        assert!(Tenant::parse(":id").is_err());
        assert!(Tenant::parse("TYPE: ").is_err());
    }

    #[test]
    fn the_spoof_percentage_is_exact_per_hundred_events_and_spread() {
        for percent in [0_u8, 1, 10, 33, 50, 100] {
            let spoofed = (0..1_000).filter(|n| is_spoofed(*n, percent)).count();
            assert_eq!(spoofed, usize::from(percent) * 10, "{percent}%");
        }
        let quarter: Vec<u64> = (0..8).filter(|n| is_spoofed(*n, 25)).collect();
        assert_eq!(quarter, [3, 7]);
    }

    #[test]
    fn poison_values_lack_the_confluent_magic_byte() {
        let value = poison_value(3);
        assert!(matches!(
            avro_codec::split_frame(&value),
            Err(avro_codec::CodecError::BadMagicByte { .. })
        ));
    }
}
