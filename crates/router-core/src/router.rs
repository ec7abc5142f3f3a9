//! The router: routing table + policy → a decision per event.

use crate::RouterConfigError;
use crate::config::RouterConfig;
use crate::dead_letter::DeadLetterReason;
use crate::name::DestinationName;
use crate::policy::Policy;
use crate::records::ProducerToProcessor;
use crate::table::{OutputTarget, RoutingTable};
use std::collections::BTreeSet;

/// Decides, per event, which outputs it goes to or why it is dead-lettered.
///
/// Immutable and `Send + Sync`: build one per configuration and share it (`Arc<Router>`);
/// a reload builds a new one and swaps the `Arc`. Pure: no I/O and no clock.
#[derive(Debug, Clone)]
pub struct Router {
    config: RouterConfig,
}

/// What to do with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Decision<'a> {
    /// Write the event to each of these outputs (one or more, in configuration order); commit
    /// its input offset only once all are acknowledged.
    Route(&'a [OutputTarget]),
    /// Write the event to the dead-letter topic, with `reason.code()` as the `reason` header.
    DeadLetter(DeadLetterReason),
}

impl<'a> Decision<'a> {
    /// The outputs, if the event is routed.
    pub fn targets(&self) -> Option<&'a [OutputTarget]> {
        match self {
            Self::Route(targets) => Some(*targets),
            Self::DeadLetter(_) => None,
        }
    }

    /// Whether the event is routed.
    pub fn is_route(&self) -> bool {
        matches!(self, Self::Route(_))
    }
}

impl Router {
    /// A router over `table` with `policy`.
    ///
    /// # Errors
    /// Those of [`RouterConfig::new`].
    pub fn new(table: RoutingTable, policy: Policy) -> Result<Self, RouterConfigError> {
        RouterConfig::new(table, policy).map(Self::from_config)
    }

    /// A router over an already validated configuration.
    pub fn from_config(config: RouterConfig) -> Self {
        Self { config }
    }

    /// A router from the routing TOML (see [`RouterConfig::from_toml_str`]).
    ///
    /// # Errors
    /// Those of [`RouterConfig::from_toml_str`].
    pub fn from_toml_str(toml: &str) -> Result<Self, RouterConfigError> {
        RouterConfig::from_toml_str(toml).map(Self::from_config)
    }

    /// A prototype-compatible router (allow-all) from the prototype's
    /// `-destination_configurations` JSON (see [`RoutingTable::from_prototype_json`]).
    ///
    /// # Errors
    /// Those of [`RoutingTable::from_prototype_json`].
    pub fn from_prototype_json(json: &str) -> Result<Self, RouterConfigError> {
        RouterConfig::from_prototype_json(json).map(Self::from_config)
    }

    /// Where `event` goes. See [`Router::decide_for`].
    pub fn decide(&self, event: &ProducerToProcessor) -> Decision<'_> {
        self.decide_for(
            &event.origin_service_type,
            &event.origin_service_id,
            &event.destination_service_type,
        )
    }

    /// Where an event from `origin_service_id` of type `origin_service_type` to `destination`
    /// goes.
    ///
    /// The destination is looked up first, so an unknown destination is reported as
    /// [`DeadLetterReason::UnknownDestination`] whoever sent it; then the policy decides.
    /// Routing allocates nothing; only dead-letter reasons copy the names they report.
    pub fn decide_for(
        &self,
        origin_service_type: &str,
        origin_service_id: &str,
        destination: &str,
    ) -> Decision<'_> {
        let table = self.config.table();
        let Some(position) = table.position(destination) else {
            return Decision::DeadLetter(DeadLetterReason::UnknownDestination {
                destination: destination.to_owned(),
            });
        };
        let (name, outputs) = table.entry(position);
        if self
            .config
            .access
            .permits(position, origin_service_type, origin_service_id)
        {
            Decision::Route(outputs)
        } else {
            Decision::DeadLetter(DeadLetterReason::Unauthorized {
                origin_service_type: origin_service_type.to_owned(),
                origin_service_id: origin_service_id.to_owned(),
                destination: name.as_str().to_owned(),
            })
        }
    }

    /// Fingerprint of the configuration, for logs and metrics during hot reload: equal for
    /// configurations that route identically up to order, case and repetition, different when
    /// any destination, output, subject or rule differs. Stable across builds and instances
    /// (FNV-1a over a canonical encoding; not cryptographic). Shown as hex, e.g.
    /// `format!("{:016x}", router.version())`.
    pub fn version(&self) -> u64 {
        self.config.version()
    }

    /// The validated configuration.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// The routing table.
    pub fn table(&self) -> &RoutingTable {
        self.config.table()
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        self.config.policy()
    }

    /// Destination names, in configuration order.
    pub fn destinations(&self) -> impl ExactSizeIterator<Item = &DestinationName> {
        self.table().destination_names()
    }

    /// The outputs of a destination, named in any case (see [`RoutingTable::outputs`]).
    pub fn outputs(&self, destination: &str) -> Option<&[OutputTarget]> {
        self.table().outputs(destination)
    }

    /// Every output of every destination (see [`RoutingTable::output_targets`]).
    pub fn output_targets(&self) -> impl Iterator<Item = &OutputTarget> {
        self.table().output_targets()
    }

    /// The distinct output topics, sorted: check they exist before routing starts.
    pub fn output_topics(&self) -> BTreeSet<&str> {
        self.table().output_topics()
    }
}

impl From<RouterConfig> for Router {
    fn from(config: RouterConfig) -> Self {
        Self::from_config(config)
    }
}
