//! A validated routing configuration, read from the product's TOML or the prototype's JSON.

use crate::RouterConfigError;
use crate::hash::Fnv64;
use crate::ordered::Entries;
use crate::policy::{
    Access, AllowRule, CheckedRule, Policy, PolicyMode, RuleDestinations, check_rule,
};
use crate::table::{OutputTarget, RoutingTable, default_subject};
use serde::Deserialize;
use toml::Spanned;

/// A routing table and a policy that have been checked against each other.
///
/// Holding one proves the configuration is usable: every check of [`RoutingTable::new`] passed,
/// every policy rule is well formed and names only known destinations. Turn it into a
/// [`crate::Router`] with [`crate::Router::from_config`].
#[derive(Debug, Clone)]
pub struct RouterConfig {
    table: RoutingTable,
    policy: Policy,
    pub(crate) access: Access,
    version: u64,
}

impl RouterConfig {
    /// The routing TOML format version this crate reads (`version = 1`).
    pub const FORMAT_VERSION: u32 = 1;

    /// Checks `policy` against `table`.
    ///
    /// # Errors
    /// [`RouterConfigError::NoAllowRules`], [`RouterConfigError::InvalidPolicyRule`] or
    /// [`RouterConfigError::UnknownDestinationInPolicy`].
    pub fn new(table: RoutingTable, policy: Policy) -> Result<Self, RouterConfigError> {
        let access = Access::compile(&policy, &table)?;
        let version = fingerprint(&table, &policy)?;
        Ok(Self {
            table,
            policy,
            access,
            version,
        })
    }

    /// Reads the routing TOML (format in the crate README).
    ///
    /// # Errors
    /// [`RouterConfigError::InvalidToml`] (syntax, wrong types, unknown keys; with the line and
    /// column), [`RouterConfigError::MissingVersion`], [`RouterConfigError::UnsupportedVersion`],
    /// [`RouterConfigError::RulesWithAllowAll`], or any error of [`RoutingTable::new`] and
    /// [`RouterConfig::new`].
    pub fn from_toml_str(toml: &str) -> Result<Self, RouterConfigError> {
        // The version is read on its own first, so a file in another format version is reported
        // as such rather than as whatever shape error it would cause.
        let probe: VersionProbe = parse_toml(toml)?;
        match probe.version {
            None => {
                return Err(RouterConfigError::MissingVersion {
                    supported: Self::FORMAT_VERSION,
                });
            }
            Some(found) if found != i64::from(Self::FORMAT_VERSION) => {
                return Err(RouterConfigError::UnsupportedVersion {
                    found,
                    supported: Self::FORMAT_VERSION,
                });
            }
            Some(_) => {}
        }
        let document: TomlDocument = parse_toml(toml)?;
        let mut destinations = document.destinations.0;
        destinations.sort_by_key(|(name, _)| name.span().start);
        let table = RoutingTable::new(destinations.into_iter().map(|(name, destination)| {
            let name = name.into_inner();
            let outputs = destination
                .outputs
                .into_iter()
                .map(|output| OutputTarget::new(output.topic, output.subject))
                .collect();
            (name, outputs)
        }))?;
        let policy = match document.policy.unwrap_or_default() {
            TomlPolicy {
                mode: PolicyMode::AllowAll,
                allow,
            } if !allow.is_empty() => {
                return Err(RouterConfigError::RulesWithAllowAll {
                    rule_count: allow.len(),
                });
            }
            TomlPolicy {
                mode: PolicyMode::AllowAll,
                ..
            } => Policy::AllowAll,
            TomlPolicy {
                mode: PolicyMode::DenyByDefault,
                allow,
            } => Policy::DenyByDefault { rules: allow },
        };
        Self::new(table, policy)
    }

    /// Reads the prototype's `-destination_configurations` JSON (see
    /// [`RoutingTable::from_prototype_json`]) with [`Policy::AllowAll`], as the prototype had no
    /// policy.
    ///
    /// # Errors
    /// Those of [`RoutingTable::from_prototype_json`].
    pub fn from_prototype_json(json: &str) -> Result<Self, RouterConfigError> {
        Self::new(RoutingTable::from_prototype_json(json)?, Policy::AllowAll)
    }

    /// The routing table.
    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Fingerprint of the configuration: see [`crate::Router::version`].
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The table and policy, e.g. to edit and validate again.
    pub fn into_parts(self) -> (RoutingTable, Policy) {
        (self.table, self.policy)
    }
}

#[derive(Debug, Deserialize)]
struct VersionProbe {
    version: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlDocument {
    /// Checked by [`VersionProbe`]; listed so that `deny_unknown_fields` accepts it.
    #[serde(rename = "version")]
    _version: i64,
    #[serde(default)]
    destinations: Entries<Spanned<String>, TomlDestination>,
    policy: Option<TomlPolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlDestination {
    outputs: Vec<TomlOutput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlOutput {
    topic: String,
    #[serde(default = "default_subject")]
    subject: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlPolicy {
    #[serde(default)]
    mode: PolicyMode,
    #[serde(default)]
    allow: Vec<AllowRule>,
}

fn parse_toml<'de, T: Deserialize<'de>>(toml: &'de str) -> Result<T, RouterConfigError> {
    toml::from_str(toml).map_err(|error| {
        let (line, column) = error
            .span()
            .and_then(|span| toml.get(..span.start))
            .map(|before| {
                let line = before.matches('\n').count() + 1;
                let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
                (line, before[line_start..].chars().count() + 1)
            })
            .unzip();
        RouterConfigError::InvalidToml {
            line,
            column,
            detail: error.message().trim_end().to_owned(),
        }
    })
}

/// Hash of the configuration in canonical form, so that configurations that route identically
/// because they differ only in order, case or repetition get the same version.
fn fingerprint(table: &RoutingTable, policy: &Policy) -> Result<u64, RouterConfigError> {
    let mut canonical = Canonical::default();
    canonical.str("router-core routing fingerprint v1");
    let mut destinations: Vec<_> = table.iter().collect();
    destinations.sort_unstable_by_key(|(name, _)| *name);
    canonical.count(destinations.len());
    for (name, outputs) in destinations {
        canonical.str(name.as_str());
        let mut outputs = outputs.to_vec();
        outputs.sort_unstable();
        canonical.count(outputs.len());
        for output in &outputs {
            canonical.str(&output.topic);
            canonical.str(&output.subject);
        }
    }
    canonical.str(policy.mode().as_str());
    let mut rules = Vec::with_capacity(policy.rules().len());
    for (rule_index, rule) in (1..).zip(policy.rules()) {
        rules.push(canonical_rule(&check_rule(rule, rule_index)?));
    }
    rules.sort_unstable();
    rules.dedup();
    canonical.count(rules.len());
    for rule in &rules {
        canonical.bytes(rule);
    }
    let mut hash = Fnv64::new();
    hash.bytes(&canonical.0);
    Ok(hash.finish())
}

fn canonical_rule(rule: &CheckedRule) -> Vec<u8> {
    let mut canonical = Canonical::default();
    canonical.optional(rule.grant.origin_service_type.as_deref());
    match &rule.grant.origin_service_ids {
        None => canonical.tag(0),
        Some(ids) => {
            canonical.tag(1);
            canonical.count(ids.len());
            ids.iter().for_each(|id| canonical.str(id));
        }
    }
    match &rule.destinations {
        RuleDestinations::All => canonical.tag(0),
        RuleDestinations::Named(names) => {
            canonical.tag(1);
            canonical.count(names.len());
            names.iter().for_each(|name| canonical.str(name.as_str()));
        }
    }
    canonical.0
}

/// An unambiguous byte encoding: strings and lists are length-prefixed.
#[derive(Debug, Default)]
struct Canonical(Vec<u8>);

impl Canonical {
    fn tag(&mut self, tag: u8) {
        self.0.push(tag);
    }

    fn count(&mut self, count: usize) {
        self.0.extend_from_slice(&(count as u64).to_le_bytes());
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.count(bytes.len());
        self.0.extend_from_slice(bytes);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn optional(&mut self, s: Option<&str>) {
        match s {
            None => self.tag(0),
            Some(s) => {
                self.tag(1);
                self.str(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
version = 1
[destinations.FINANCE]
outputs = [{ topic = "processor.to.finance" }]
[policy]
mode = "allow-all"
"#;

    fn toml_error(toml: &str) -> RouterConfigError {
        RouterConfig::from_toml_str(toml).unwrap_err()
    }

    #[test]
    fn missing_version_is_reported_before_shape_errors() {
        let error = toml_error("[destinations.FINANCE]\noutputs = 3\n");
        assert_eq!(error, RouterConfigError::MissingVersion { supported: 1 });
    }

    #[test]
    fn other_format_versions_are_rejected() {
        let error = toml_error("version = 2\n[routes]\n");
        assert_eq!(
            error,
            RouterConfigError::UnsupportedVersion {
                found: 2,
                supported: 1
            }
        );
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_position() {
        let toml = MINIMAL.replace("outputs =", "output =");
        let error = toml_error(&toml);
        assert!(
            matches!(&error, RouterConfigError::InvalidToml { line: Some(4), column: Some(1), detail } if detail.contains("output")),
            "{error:?}"
        );
        assert!(error.to_string().contains("at line 4, column 1"), "{error}");
    }

    #[test]
    fn syntax_errors_carry_their_position() {
        let error = toml_error("version = 1\n[destinations.FINANCE\n");
        assert!(
            matches!(error, RouterConfigError::InvalidToml { line: Some(2), .. }),
            "{error:?}"
        );
    }

    #[test]
    fn missing_destinations_is_an_empty_table() {
        let error = toml_error("version = 1\n[policy]\nmode = \"allow-all\"\n");
        assert_eq!(error, RouterConfigError::EmptyRoutingTable);
    }

    #[test]
    fn missing_policy_means_deny_by_default_and_needs_rules() {
        let toml = MINIMAL.replace("[policy]\nmode = \"allow-all\"\n", "");
        assert_eq!(toml_error(&toml), RouterConfigError::NoAllowRules);
    }

    #[test]
    fn allow_all_with_rules_is_rejected() {
        let toml = format!(
            "{MINIMAL}[[policy.allow]]\norigin_service_type = \"X\"\ndestinations = [\"*\"]\n"
        );
        assert_eq!(
            toml_error(&toml),
            RouterConfigError::RulesWithAllowAll { rule_count: 1 }
        );
    }

    #[test]
    fn unknown_policy_mode_is_rejected() {
        let toml = MINIMAL.replace("allow-all", "allow-some");
        assert!(matches!(
            toml_error(&toml),
            RouterConfigError::InvalidToml { line: Some(6), .. }
        ));
    }

    #[test]
    fn version_ignores_order_case_and_repetition() {
        let a = RouterConfig::new(
            RoutingTable::new([
                (
                    "finance",
                    vec![OutputTarget::new("f1", "s"), OutputTarget::new("f2", "s")],
                ),
                ("MARKETING", vec![OutputTarget::new("m", "s")]),
            ])
            .unwrap(),
            Policy::deny_by_default(vec![
                AllowRule::new("finance", ["marketing", "FINANCE"]).only_ids(["b", "a"]),
                AllowRule::new("*", ["MARKETING"]),
            ]),
        )
        .unwrap();
        let b = RouterConfig::new(
            RoutingTable::new([
                ("MARKETING", vec![OutputTarget::new("m", "s")]),
                (
                    "FINANCE",
                    vec![OutputTarget::new("f2", "s"), OutputTarget::new("f1", "s")],
                ),
            ])
            .unwrap(),
            Policy::deny_by_default(vec![
                AllowRule::new(" * ", ["marketing"]),
                AllowRule::new("FINANCE", ["FINANCE", "MARKETING", "finance"])
                    .only_ids(["a", "b", "a"]),
                AllowRule::new("*", ["MARKETING"]),
            ]),
        )
        .unwrap();
        assert_eq!(a.version(), b.version());
    }

    #[test]
    fn version_changes_with_anything_that_changes_routing() {
        let base = || {
            (
                vec![("FINANCE", vec![OutputTarget::new("f", "s")])],
                vec![AllowRule::new("FINANCE", ["FINANCE"]).only_ids(["a"])],
            )
        };
        let version = |(table, rules): (Vec<(&str, Vec<OutputTarget>)>, Vec<AllowRule>)| {
            RouterConfig::new(
                RoutingTable::new(table).unwrap(),
                Policy::deny_by_default(rules),
            )
            .unwrap()
            .version()
        };
        let original = version(base());
        let mut variants = Vec::new();
        let (mut table, rules) = base();
        table[0].1[0].topic = "g".to_owned();
        variants.push(version((table, rules)));
        let (mut table, rules) = base();
        table[0].1[0].subject = "t".to_owned();
        variants.push(version((table, rules)));
        let (table, mut rules) = base();
        rules[0].origin_service_ids = Some(vec!["b".to_owned()]);
        variants.push(version((table, rules)));
        let (table, mut rules) = base();
        rules[0].origin_service_ids = None;
        variants.push(version((table, rules)));
        let (table, mut rules) = base();
        rules[0].origin_service_type = "OTHER".to_owned();
        variants.push(version((table, rules)));
        let (table, _) = base();
        let allow_all = RouterConfig::new(RoutingTable::new(table).unwrap(), Policy::AllowAll)
            .unwrap()
            .version();
        variants.push(allow_all);
        for (position, variant) in variants.iter().enumerate() {
            assert_ne!(*variant, original, "variant {position}");
        }
    }

    #[test]
    fn version_is_stable_across_builds() {
        // Pinned: a change here changes every reported version, which operators compare across
        // instances and releases. Only change it together with the fingerprint prefix.
        let config = RouterConfig::from_toml_str(MINIMAL).unwrap();
        assert_eq!(config.version(), PINNED_MINIMAL_VERSION);
    }

    const PINNED_MINIMAL_VERSION: u64 = 0x064c_c65c_f080_fb53;
}
