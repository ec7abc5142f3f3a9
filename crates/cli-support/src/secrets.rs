//! Secrets that must not show in `ps` or in logs: librdkafka properties read from a file, and
//! property values hidden when settings are printed.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Reads a librdkafka properties file: one `key=value` per line (split at the first `=`, both
/// trimmed), blank lines and lines starting with `#` ignored. Meant for credentials
/// (`sasl.password`, `ssl.key.password`), so errors name the file and line, never a value.
pub fn read_properties_file(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the Kafka properties file {}", path.display()))?;
    let mut properties = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!(
                "{}:{}: expected `key=value` (the line's content is not shown: it may hold a secret)",
                path.display(),
                index + 1
            );
        };
        let key = key.trim();
        if key.is_empty() {
            bail!("{}:{}: empty property name", path.display(), index + 1);
        }
        properties.push((key.to_owned(), value.trim().to_owned()));
    }
    Ok(properties)
}

/// `value`, or `<redacted>` when `key` names a secret (see
/// [`kafka_adapters::is_secret_property`], the one rule for what is secret).
pub fn shown_property<'a>(key: &str, value: &'a str) -> &'a str {
    match kafka_adapters::is_secret_property(key) {
        true => "<redacted>",
        false => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "cli-support-properties-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).expect("writes");
        path
    }

    #[test]
    fn reads_key_value_lines_and_skips_comments_and_blanks() {
        let path =
            file_with("# credentials\n\nsasl.username = processor\nsasl.password=p=ss word \n");
        let properties = read_properties_file(&path).expect("reads");
        std::fs::remove_file(&path).ok();
        assert_eq!(
            properties,
            [
                ("sasl.username".to_owned(), "processor".to_owned()),
                ("sasl.password".to_owned(), "p=ss word".to_owned())
            ]
        );
    }

    #[test]
    fn a_bad_line_names_file_and_line_but_not_its_content() {
        let path = file_with("sasl.username=a\nhunter2-without-equals\n");
        let error = read_properties_file(&path).expect_err("refused");
        std::fs::remove_file(&path).ok();
        let message = format!("{error:#}");
        assert!(message.contains(":2: expected `key=value`"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let error =
            read_properties_file(Path::new("/nonexistent/kafka.properties")).expect_err("refused");
        assert!(
            format!("{error:#}")
                .contains("cannot read the Kafka properties file /nonexistent/kafka.properties"),
            "{error:#}"
        );
    }

    #[test]
    fn secret_values_are_redacted_and_others_shown() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "ssl.key.pem",
            "SASL.PASSWORD",
        ] {
            assert_eq!(shown_property(key, "hunter2"), "<redacted>", "{key}");
        }
        for key in [
            "sasl.username",
            "security.protocol",
            "ssl.ca.location",
            "acks",
        ] {
            assert_eq!(shown_property(key, "v"), "v", "{key}");
        }
    }
}
