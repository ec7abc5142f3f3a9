//! Tenant policy: which origin services may send to which destinations.

use crate::RouterConfigError;
use crate::hash::folded_hash;
use crate::name::{DestinationName, WILDCARD, normalize};
use crate::table::RoutingTable;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Who may send where.
///
/// Built by [`Policy::allow_all`] or [`Policy::deny_by_default`], or read from the `[policy]`
/// section of the routing TOML. Validated against a routing table when a
/// [`crate::RouterConfig`] or [`crate::Router`] is built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Policy {
    /// Every origin may send to every destination in the routing table: the prototype's
    /// behaviour, and what the prototype's JSON configuration implies.
    AllowAll,
    /// An event is routed only if at least one rule allows its origin to send to its
    /// destination; everything else is dead-lettered as unauthorized.
    DenyByDefault {
        /// The allow rules, in configuration order (their 1-based position is the rule index
        /// in error messages).
        rules: Vec<AllowRule>,
    },
}

impl Policy {
    /// Every origin may send to every known destination.
    pub fn allow_all() -> Self {
        Self::AllowAll
    }

    /// Only what `rules` allow is routed.
    pub fn deny_by_default(rules: Vec<AllowRule>) -> Self {
        Self::DenyByDefault { rules }
    }

    /// Which mode this policy is in.
    pub fn mode(&self) -> PolicyMode {
        match self {
            Self::AllowAll => PolicyMode::AllowAll,
            Self::DenyByDefault { .. } => PolicyMode::DenyByDefault,
        }
    }

    /// The allow rules; empty in allow-all mode.
    pub fn rules(&self) -> &[AllowRule] {
        match self {
            Self::AllowAll => &[],
            Self::DenyByDefault { rules } => rules,
        }
    }
}

/// The `mode` of the `[policy]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyMode {
    /// `"deny-by-default"`: only what allow rules name is routed. The default.
    #[default]
    DenyByDefault,
    /// `"allow-all"`: every origin may send to every known destination.
    AllowAll,
}

impl PolicyMode {
    /// The spelling used in the routing TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DenyByDefault => "deny-by-default",
            Self::AllowAll => "allow-all",
        }
    }
}

impl fmt::Display for PolicyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Allows services of one type (optionally only some instance ids) to send to some
/// destinations.
///
/// Service types and destinations compare like destination names: trimmed, ASCII
/// case-insensitive. Service ids compare exactly: they are identifiers, not names, and an
/// authorization check must not widen them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowRule {
    /// Service type of the origin, e.g. `FINANCE`, or `*` for any type.
    pub origin_service_type: String,
    /// When set, only these `origin_service_id`s of that type; `None` allows any id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_service_ids: Option<Vec<String>>,
    /// Destinations the origin may send to, or `["*"]` for every destination in the table.
    pub destinations: Vec<String>,
}

impl AllowRule {
    /// Allows any service of `origin_service_type` to send to `destinations`.
    pub fn new<D: Into<String>>(
        origin_service_type: impl Into<String>,
        destinations: impl IntoIterator<Item = D>,
    ) -> Self {
        Self {
            origin_service_type: origin_service_type.into(),
            origin_service_ids: None,
            destinations: destinations.into_iter().map(Into::into).collect(),
        }
    }

    /// Restricts the rule to the services with these ids.
    pub fn only_ids<I: Into<String>>(mut self, ids: impl IntoIterator<Item = I>) -> Self {
        self.origin_service_ids = Some(ids.into_iter().map(Into::into).collect());
        self
    }
}

/// A policy compiled against a table: for each destination, who may send to it.
#[derive(Debug, Clone)]
pub(crate) enum Access {
    Everyone,
    /// Indexed like the table's destinations.
    Granted(Vec<DestinationAccess>),
}

/// A rule's grant, normalised: who it admits, without the destinations it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    /// Normalised service type; `None` for any type.
    pub(crate) origin_service_type: Option<Box<str>>,
    /// Exact ids, sorted, without repeats; `None` for any id.
    pub(crate) origin_service_ids: Option<Box<[Box<str>]>>,
}

/// Who may send to one destination: the union of the grants of every rule naming it.
#[derive(Debug, Clone, Default)]
pub(crate) struct DestinationAccess {
    /// Ids admitted whatever their service type (rules with `origin_service_type = "*"`).
    any_type: Ids,
    /// One entry per service type, sorted by hash: the hot path hashes the event's service type
    /// once and binary-searches, rather than comparing it with every rule.
    by_type: Vec<TypeAccess>,
}

#[derive(Debug, Clone)]
struct TypeAccess {
    hash: u64,
    /// Normalised.
    service_type: Box<str>,
    ids: Ids,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Ids {
    #[default]
    Nobody,
    Any,
    /// Sorted, without repeats.
    Only(Vec<Box<str>>),
}

impl Ids {
    fn admits(&self, id: &str) -> bool {
        match self {
            Self::Nobody => false,
            Self::Any => true,
            Self::Only(ids) => ids.binary_search_by(|granted| (**granted).cmp(id)).is_ok(),
        }
    }

    /// Adds the ids of one more grant (`None` = any id).
    fn widen(&mut self, granted: Option<&[Box<str>]>) {
        match (granted, &mut *self) {
            (_, Self::Any) => {}
            (None, _) => *self = Self::Any,
            (Some(granted), Self::Nobody) => *self = Self::Only(granted.to_vec()),
            (Some(granted), Self::Only(ids)) => {
                ids.extend_from_slice(granted);
                ids.sort_unstable();
                ids.dedup();
            }
        }
    }
}

impl DestinationAccess {
    fn grant(&mut self, grant: &Grant) {
        let ids = grant.origin_service_ids.as_deref();
        let Some(service_type) = &grant.origin_service_type else {
            self.any_type.widen(ids);
            return;
        };
        let hash = folded_hash(service_type);
        let first = self.by_type.partition_point(|entry| entry.hash < hash);
        let existing = self.by_type[first..]
            .iter_mut()
            .take_while(|entry| entry.hash == hash)
            .find(|entry| entry.service_type == *service_type);
        match existing {
            Some(entry) => entry.ids.widen(ids),
            None => {
                let mut entry = TypeAccess {
                    hash,
                    service_type: service_type.clone(),
                    ids: Ids::Nobody,
                };
                entry.ids.widen(ids);
                self.by_type.insert(first, entry);
            }
        }
    }

    fn permits(&self, origin_service_type: &str, origin_service_id: &str) -> bool {
        if self.any_type.admits(origin_service_id) {
            return true;
        }
        if self.by_type.len() <= crate::hash::EXACT_SCAN_MAX
            && let Some(entry) = self
                .by_type
                .iter()
                .find(|entry| *entry.service_type == *origin_service_type)
        {
            return entry.ids.admits(origin_service_id);
        }
        let needle = crate::name::trim(origin_service_type);
        let hash = folded_hash(needle);
        let first = self.by_type.partition_point(|entry| entry.hash < hash);
        self.by_type[first..]
            .iter()
            .take_while(|entry| entry.hash == hash)
            .find(|entry| entry.service_type.eq_ignore_ascii_case(needle))
            .is_some_and(|entry| entry.ids.admits(origin_service_id))
    }
}

/// The destinations one rule names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RuleDestinations {
    All,
    /// Canonical names, sorted and without repeats.
    Named(Vec<DestinationName>),
}

/// A rule checked on its own, before it is tied to a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckedRule {
    pub(crate) grant: Grant,
    pub(crate) destinations: RuleDestinations,
}

impl Access {
    pub(crate) fn compile(
        policy: &Policy,
        table: &RoutingTable,
    ) -> Result<Self, RouterConfigError> {
        let rules = match policy {
            Policy::AllowAll => return Ok(Self::Everyone),
            Policy::DenyByDefault { rules } if rules.is_empty() => {
                return Err(RouterConfigError::NoAllowRules);
            }
            Policy::DenyByDefault { rules } => rules,
        };
        let mut access = vec![DestinationAccess::default(); table.len()];
        for (rule_index, rule) in (1..).zip(rules) {
            let checked = check_rule(rule, rule_index)?;
            let positions = match &checked.destinations {
                RuleDestinations::All => (0..table.len()).collect(),
                RuleDestinations::Named(names) => positions_in(table, names, rule, rule_index)?,
            };
            for position in positions {
                access[position].grant(&checked.grant);
            }
        }
        Ok(Self::Granted(access))
    }

    /// Whether the origin may send to the destination at `destination` in the table.
    pub(crate) fn permits(
        &self,
        destination: usize,
        origin_service_type: &str,
        origin_service_id: &str,
    ) -> bool {
        match self {
            Self::Everyone => true,
            Self::Granted(access) => access
                .get(destination)
                .is_some_and(|access| access.permits(origin_service_type, origin_service_id)),
        }
    }
}

/// Normalises one rule and checks what can be checked without a table. `rule_index` is 1-based.
pub(crate) fn check_rule(
    rule: &AllowRule,
    rule_index: usize,
) -> Result<CheckedRule, RouterConfigError> {
    let invalid = |reason| RouterConfigError::InvalidPolicyRule { rule_index, reason };
    let origin_service_type = match normalize(&rule.origin_service_type) {
        blank if blank.is_empty() => {
            return Err(invalid(
                "origin_service_type is blank; name a service type such as `FINANCE`, or `*` for any",
            ));
        }
        any if any == WILDCARD => None,
        named => Some(named.into_boxed_str()),
    };
    let origin_service_ids = match &rule.origin_service_ids {
        None => None,
        Some(ids) if ids.is_empty() => {
            return Err(invalid(
                "origin_service_ids is empty, so the rule would match nobody; list ids, or omit \
                 the key to allow any id of the type",
            ));
        }
        Some(ids) if ids.iter().any(|id| id.is_empty()) => {
            return Err(invalid(
                "origin_service_ids contains an empty id; remove it",
            ));
        }
        Some(ids) => {
            let mut ids: Vec<Box<str>> = ids.iter().map(|id| id.as_str().into()).collect();
            ids.sort_unstable();
            ids.dedup();
            Some(ids.into_boxed_slice())
        }
    };
    let destinations = check_rule_destinations(&rule.destinations).map_err(invalid)?;
    Ok(CheckedRule {
        grant: Grant {
            origin_service_type,
            origin_service_ids,
        },
        destinations,
    })
}

fn check_rule_destinations(destinations: &[String]) -> Result<RuleDestinations, &'static str> {
    if destinations.is_empty() {
        return Err("destinations is empty; list destinations, or use [\"*\"] for all of them");
    }
    let is_wildcard = |raw: &String| raw.trim() == WILDCARD;
    if destinations.iter().any(is_wildcard) {
        return if destinations.len() == 1 {
            Ok(RuleDestinations::All)
        } else {
            Err(
                "destinations mixes `*` with names; `*` already means every destination, so keep only one",
            )
        };
    }
    let mut names = Vec::with_capacity(destinations.len());
    for raw in destinations {
        names.push(
            DestinationName::new(raw)
                .map_err(|_| "destinations contains a blank or malformed name; remove it")?,
        );
    }
    names.sort_unstable();
    names.dedup();
    Ok(RuleDestinations::Named(names))
}

fn positions_in(
    table: &RoutingTable,
    names: &[DestinationName],
    rule: &AllowRule,
    rule_index: usize,
) -> Result<Vec<usize>, RouterConfigError> {
    names
        .iter()
        .map(|name| {
            table.position_of(name).ok_or_else(|| {
                let written = rule
                    .destinations
                    .iter()
                    .find(|raw| name.matches(raw))
                    .map_or_else(|| name.as_str().to_owned(), Clone::clone);
                RouterConfigError::UnknownDestinationInPolicy {
                    destination: written,
                    rule_index,
                    known: table.sorted_names(),
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OutputTarget;

    fn table() -> RoutingTable {
        RoutingTable::new(["FINANCE", "MARKETING"].map(|name| {
            (
                name,
                vec![OutputTarget::with_default_subject(format!("to.{name}"))],
            )
        }))
        .unwrap()
    }

    #[test]
    fn rule_index_in_errors_is_one_based() {
        let policy = Policy::deny_by_default(vec![
            AllowRule::new("FINANCE", ["MARKETING"]),
            AllowRule::new("FINANCE", ["SALES"]),
        ]);
        let error = Access::compile(&policy, &table()).unwrap_err();
        assert_eq!(
            error,
            RouterConfigError::UnknownDestinationInPolicy {
                destination: "SALES".to_owned(),
                rule_index: 2,
                known: vec!["FINANCE".to_owned(), "MARKETING".to_owned()],
            }
        );
        assert_eq!(
            error.to_string(),
            "unknown destination `SALES` in policy rule 2; known: FINANCE, MARKETING; add it to \
             the routing table or fix the rule"
        );
    }

    #[test]
    fn unknown_destination_is_reported_as_written_in_the_rule() {
        let policy = Policy::deny_by_default(vec![AllowRule::new("FINANCE", [" sales "])]);
        let error = Access::compile(&policy, &table()).unwrap_err();
        assert!(
            matches!(&error, RouterConfigError::UnknownDestinationInPolicy { destination, .. } if destination == " sales "),
            "{error:?}"
        );
    }

    #[test]
    fn malformed_rules_are_rejected_with_their_index() {
        let malformed = [
            AllowRule::new(" ", ["FINANCE"]),
            AllowRule::new("FINANCE", Vec::<String>::new()),
            AllowRule::new("FINANCE", ["*", "MARKETING"]),
            AllowRule::new("FINANCE", [""]),
            AllowRule::new("FINANCE", ["MARKETING"]).only_ids(Vec::<String>::new()),
            AllowRule::new("FINANCE", ["MARKETING"]).only_ids(["svc-1", ""]),
        ];
        for rule in malformed {
            let policy = Policy::deny_by_default(vec![AllowRule::new("X", ["*"]), rule.clone()]);
            let error = Access::compile(&policy, &table()).unwrap_err();
            assert!(
                matches!(
                    error,
                    RouterConfigError::InvalidPolicyRule { rule_index: 2, .. }
                ),
                "{rule:?} gave {error:?}"
            );
        }
    }

    #[test]
    fn deny_by_default_without_rules_is_rejected() {
        let error = Access::compile(&Policy::deny_by_default(vec![]), &table()).unwrap_err();
        assert_eq!(error, RouterConfigError::NoAllowRules);
    }

    #[test]
    fn wildcard_service_type_admits_any_type() {
        let policy = Policy::deny_by_default(vec![AllowRule::new("*", ["MARKETING"])]);
        let access = Access::compile(&policy, &table()).unwrap();
        let marketing = table().position("MARKETING").unwrap();
        let finance = table().position("FINANCE").unwrap();
        assert!(access.permits(marketing, "ANYTHING", "id"));
        assert!(!access.permits(finance, "ANYTHING", "id"));
    }

    #[test]
    fn grants_of_several_rules_for_one_destination_add_up() {
        let policy = Policy::deny_by_default(vec![
            AllowRule::new("FINANCE", ["MARKETING"]).only_ids(["a"]),
            AllowRule::new("finance", ["*"]).only_ids(["b"]),
            AllowRule::new("OPS", ["MARKETING"]).only_ids(["c"]),
            AllowRule::new("OPS", ["MARKETING"]),
            AllowRule::new("*", ["MARKETING"]).only_ids(["z"]),
        ]);
        let access = Access::compile(&policy, &table()).unwrap();
        let marketing = table().position("MARKETING").unwrap();
        let finance = table().position("FINANCE").unwrap();
        for (origin_type, id) in [
            ("FINANCE", "a"),
            ("FINANCE", "b"),
            ("OPS", "anything"),
            ("HR", "z"),
        ] {
            assert!(
                access.permits(marketing, origin_type, id),
                "{origin_type}/{id}"
            );
        }
        assert!(!access.permits(marketing, "FINANCE", "c"));
        assert!(!access.permits(marketing, "HR", "a"));
        assert!(access.permits(finance, "FINANCE", "b"));
        assert!(!access.permits(finance, "FINANCE", "a"));
        assert!(!access.permits(finance, "OPS", "c"));
    }

    #[test]
    fn service_ids_compare_exactly() {
        let policy =
            Policy::deny_by_default(vec![AllowRule::new("finance", ["*"]).only_ids(["Svc-1"])]);
        let access = Access::compile(&policy, &table()).unwrap();
        assert!(access.permits(0, " FINANCE ", "Svc-1"));
        assert!(!access.permits(0, "FINANCE", "svc-1"));
        assert!(!access.permits(0, "FINANCE", " Svc-1"));
    }

    #[test]
    fn service_types_match_alike_below_and_above_the_exact_scan_limit() {
        for count in [
            1,
            crate::hash::EXACT_SCAN_MAX,
            crate::hash::EXACT_SCAN_MAX + 1,
            30,
        ] {
            let types: Vec<String> = (0..count).map(|index| format!("TYPE{index}")).collect();
            let rules = types
                .iter()
                .map(|service_type| AllowRule::new(service_type.as_str(), ["FINANCE"]))
                .collect();
            let access = Access::compile(&Policy::deny_by_default(rules), &table()).unwrap();
            let finance = table().position("FINANCE").unwrap();
            let marketing = table().position("MARKETING").unwrap();
            for service_type in &types {
                let folded = format!("\t{}", service_type.to_lowercase());
                assert!(
                    access.permits(finance, service_type, "id"),
                    "{service_type}"
                );
                assert!(access.permits(finance, &folded, "id"), "{folded:?}");
                assert!(
                    !access.permits(marketing, service_type, "id"),
                    "{service_type}"
                );
            }
            assert!(!access.permits(finance, "TYPE", "id"), "of {count}");
        }
    }
}
