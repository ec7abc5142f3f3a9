//! `event-processor --check-config`: everything a start checks before it connects to anything
//! (the layered settings, the routing table, the registry credentials), then a summary on stdout.
//!
//! Used by deployment pipelines and by the tests of `deploy/` (every environment variable and
//! argument of the compose file and the Kubernetes manifests goes through the real loader).
//! The summary leaves secrets out: no passwords, no credentials of the registry URL.

use crate::settings::Settings;
use std::process::ExitCode;

/// 0 and a summary when the configuration would start; 2 and `error: …` when it would be refused.
pub fn run(settings: &Settings) -> ExitCode {
    let router = match settings.load_router() {
        Ok((router, _)) => router,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = settings.registry_config() {
        eprintln!("error: {error:#}");
        return ExitCode::from(2);
    }
    let authentication = settings
        .read_key_file()
        .and_then(|keys| settings.tenant_authentication(keys.as_deref()));
    let tenant_keys = match authentication {
        Ok(Some(authentication)) => authentication.verifier.key_ring().len(),
        Ok(None) => 0,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let kafka = &settings.kafka;
    let http = match settings.http.enabled {
        true => settings.http.listen.clone(),
        false => "disabled".to_owned(),
    };
    let lines = [
        ("processor_id", settings.processor_id.clone()),
        ("kafka.bootstrap_servers", kafka.bootstrap_servers.clone()),
        ("kafka.input_topic", kafka.input_topic.clone()),
        ("kafka.group_id", kafka.group_id.clone()),
        ("kafka.dead_letter_topic", kafka.dead_letter_topic.clone()),
        (
            "kafka.properties",
            property_names(
                kafka
                    .properties
                    .keys()
                    .chain(kafka.consumer_properties.keys()),
            ),
        ),
        ("registry.url", without_credentials(&settings.registry.url)),
        (
            "registry.basic_auth",
            settings.registry.basic_auth_user.is_some().to_string(),
        ),
        (
            "routing.file",
            settings
                .routing
                .file
                .as_ref()
                .map_or_else(|| "unset".to_owned(), |path| path.display().to_string()),
        ),
        ("routing.version", format!("{:016x}", router.version())),
        (
            "authentication.mode",
            format!("{:?}", settings.authentication.mode).to_lowercase(),
        ),
        ("authentication.keys", tenant_keys.to_string()),
        (
            "pipeline.drain_timeout_ms",
            settings.pipeline.drain_timeout_ms.to_string(),
        ),
        ("http.listen", http),
        ("log.json", settings.log.json.to_string()),
    ];
    println!("configuration valid");
    for (key, value) in lines {
        println!("{key} = {value}");
    }
    ExitCode::SUCCESS
}

/// Names only: values may be secrets (`sasl.password`).
fn property_names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let mut names: Vec<&str> = names.map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    names.join(",")
}

/// `scheme://user:password@host/…` → `scheme://host/…`.
fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://{host}{}", &rest[authority_end..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_left_out_of_the_registry_url() {
        assert_eq!(
            without_credentials("https://user:secret@registry:8081/apis/ccompat/v7"),
            "https://registry:8081/apis/ccompat/v7"
        );
        assert_eq!(
            without_credentials("http://registry:8081"),
            "http://registry:8081"
        );
        assert_eq!(
            without_credentials("http://registry:8081/a@b"),
            "http://registry:8081/a@b"
        );
    }
}
