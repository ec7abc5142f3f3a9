//! Checks and rewrites of command-line values that several binaries accept alike.

use anyhow::{Result, bail};

/// Every bootstrap entry (comma-separated) must be `host:port` with a numeric port.
pub fn validate_bootstrap(servers: &str) -> Result<()> {
    for server in servers.split(',').map(str::trim) {
        let valid = server
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            bail!(
                "bad broker address `{server}` in bootstrap servers `{servers}`: expected host:port"
            );
        }
    }
    Ok(())
}

/// A `KEY=VALUE` librdkafka property given with `flag` (e.g. `--kafka-property`): key and value
/// trimmed, split at the first `=` so values may hold `=` themselves.
///
/// An empty key passes (librdkafka refuses it when the client is built); a binary that wants to
/// refuse it earlier checks the key itself.
pub fn parse_property(flag: &str, property: &str) -> Result<(String, String)> {
    let Some((key, value)) = property.split_once('=') else {
        bail!("{flag} `{property}` is not KEY=VALUE");
    };
    Ok((key.trim().to_owned(), value.trim().to_owned()))
}

/// Rewrites the prototype's single-dash flags (`-target_topic X`) to ours (`--topic X`) as
/// `flags` (prototype flag, our flag) says, so the prototype's command lines keep working.
/// Every other argument is kept as it is.
pub fn translate_prototype_flags(args: Vec<String>, flags: &[(&str, &str)]) -> Vec<String> {
    args.into_iter()
        .map(|arg| {
            flags
                .iter()
                .find(|(old, _)| *old == arg)
                .map_or(arg, |(_, new)| (*new).to_owned())
        })
        .collect()
}

/// The schema registry base URL without trailing slashes; it must be `http://` or `https://`.
pub fn schema_registry_url(raw: &str) -> Result<String> {
    let url = raw.trim_end_matches('/').to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("schema registry url `{url}` must start with http:// or https://");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_servers_are_host_port_pairs_separated_by_commas() {
        for servers in ["127.0.0.1:9092", "kafka-1:9092, kafka-2:9093", "[::1]:9092"] {
            validate_bootstrap(servers).unwrap_or_else(|error| panic!("{servers}: {error}"));
        }
    }

    #[test]
    fn bad_broker_address_is_named_with_the_whole_list() {
        for (servers, bad) in [
            ("localhost", "localhost"),
            ("kafka-1:9092,kafka-2", "kafka-2"),
            (":9092", ":9092"),
            ("kafka:port", "kafka:port"),
            ("kafka:70000", "kafka:70000"),
            ("kafka:9092,", ""),
        ] {
            let error = validate_bootstrap(servers).expect_err(servers);
            assert_eq!(
                error.to_string(),
                format!(
                    "bad broker address `{bad}` in bootstrap servers `{servers}`: expected host:port"
                )
            );
        }
    }

    #[test]
    fn property_key_and_value_are_trimmed_and_split_at_the_first_equals_sign() {
        let (key, value) =
            parse_property("--kafka-property", " sasl.jaas.config = a=b ").expect("valid");
        assert_eq!((key.as_str(), value.as_str()), ("sasl.jaas.config", "a=b"));
        let (key, value) = parse_property("--kafka-property", "linger.ms=").expect("valid");
        assert_eq!((key.as_str(), value.as_str()), ("linger.ms", ""));
    }

    #[test]
    fn property_without_equals_sign_names_the_flag() {
        let error = parse_property("--producer-property", "acks").expect_err("no equals sign");
        assert_eq!(
            error.to_string(),
            "--producer-property `acks` is not KEY=VALUE"
        );
    }

    #[test]
    fn empty_property_key_is_left_to_the_caller() {
        let (key, value) = parse_property("--kafka-property", " = 1").expect("split");
        assert_eq!((key.as_str(), value.as_str()), ("", "1"));
    }

    #[test]
    fn prototype_flags_are_rewritten_in_place_and_everything_else_is_kept() {
        let args = [
            "tool",
            "-log_level",
            "DEBUG",
            "--count",
            "3",
            "-unknown",
            "x",
        ]
        .map(str::to_owned)
        .to_vec();
        let translated = translate_prototype_flags(
            args,
            &[
                ("-log_level", "--log-level"),
                ("-amount_of_messages", "--count"),
            ],
        );
        assert_eq!(
            translated,
            [
                "tool",
                "--log-level",
                "DEBUG",
                "--count",
                "3",
                "-unknown",
                "x"
            ]
        );
    }

    #[test]
    fn registry_url_loses_trailing_slashes_and_must_be_http() {
        assert_eq!(
            schema_registry_url("http://127.0.0.1:8081//").expect("valid"),
            "http://127.0.0.1:8081"
        );
        assert_eq!(
            schema_registry_url("https://registry.example").expect("valid"),
            "https://registry.example"
        );
        let error = schema_registry_url("127.0.0.1:8081/").expect_err("no scheme");
        assert_eq!(
            error.to_string(),
            "schema registry url `127.0.0.1:8081` must start with http:// or https://"
        );
    }
}
