//! What the stack runs: the pinned Kafka and Apicurio, fetched from Maven Central with `mvn` once
//! per machine, and a Java new enough for each.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Apache Kafka release the stack runs (the newest 4.x on Maven Central when pinned).
pub const KAFKA_VERSION: &str = "4.4.0";
/// The Apicurio Registry release the stack runs (3.3.0 fixed the compatibility API's error codes).
pub const APICURIO_VERSION: &str = "3.3.3";
/// Kafka 4.x logs through slf4j-api 1.7, whose log4j2 binding is `log4j-slf4j-impl`.
const LOG4J_VERSION: &str = "2.25.3";
const KAFKA_MIN_JAVA: u32 = 17;
const APICURIO_MIN_JAVA: u32 = 21;
/// Written last into a fetched directory: without it the fetch is incomplete and is redone.
const COMPLETE_MARKER: &str = ".complete";

/// Everything needed to start the stack's processes.
#[derive(Debug, Clone)]
pub struct Tools {
    /// A Java 17+ for the broker and Kafka's command-line tools.
    pub kafka_java: PathBuf,
    /// A Java 21+ for Apicurio.
    pub registry_java: PathBuf,
    /// The directory holding Kafka's runtime jars (the class path is `<dir>/*`).
    pub kafka_libs: PathBuf,
    /// The unpacked Apicurio application (holds `quarkus-run.jar`).
    pub registry_home: PathBuf,
}

impl Tools {
    /// Finds the Javas and fetches Kafka and Apicurio into [`tools_dir`] when they are not there
    /// yet (about 200 MB, once per machine).
    ///
    /// # Errors
    /// When no suitable Java is installed, `mvn` is missing, or Maven Central refuses; the message
    /// says which and what to do.
    pub fn ensure() -> Result<Self> {
        let kafka_java = find_java("EP_KAFKA_JAVA", KAFKA_MIN_JAVA, "Apache Kafka 4")?;
        let registry_java = find_java(
            "EP_REGISTRY_JAVA",
            APICURIO_MIN_JAVA,
            "Apicurio Registry 3.3",
        )?;
        let dir = tools_dir()?;
        let kafka_libs = fetch_once(&dir.join(format!("kafka-{KAFKA_VERSION}")), fetch_kafka)?;
        let registry_home = fetch_once(
            &dir.join(format!("apicurio-registry-{APICURIO_VERSION}")),
            fetch_apicurio,
        )?;
        Ok(Self {
            kafka_java,
            registry_java,
            kafka_libs,
            registry_home,
        })
    }

    /// `java -cp <kafka libs>/* <main class>`, logging through `log4j_config`.
    pub fn kafka_command(&self, main_class: &str, log4j_config: &Path) -> Command {
        let mut command = Command::new(&self.kafka_java);
        command
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                log4j_config.display()
            ))
            .arg("-cp")
            .arg(self.kafka_libs.join("*"))
            .arg(main_class);
        command
    }
}

/// Where fetched tools live: `EP_TOOLS_DIR`, or `~/.cache/event-processor`.
///
/// # Errors
/// When neither `EP_TOOLS_DIR` nor `HOME` is set.
pub fn tools_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("EP_TOOLS_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").context("neither EP_TOOLS_DIR nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache").join("event-processor"))
}

/// Returns `target` when a previous fetch completed; otherwise fetches into a scratch directory
/// beside it and renames that into place, so an interrupted fetch never looks complete.
fn fetch_once(target: &Path, fetch: fn(&Path) -> Result<()>) -> Result<PathBuf> {
    if target.join(COMPLETE_MARKER).is_file() {
        return Ok(target.to_path_buf());
    }
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let scratch = target.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    eprintln!("fetching {} (once per machine)", target.display());
    fetch(&scratch)?;
    std::fs::write(scratch.join(COMPLETE_MARKER), "")?;
    let _ = std::fs::remove_dir_all(target);
    std::fs::rename(&scratch, target)
        .with_context(|| format!("cannot move {} into place", scratch.display()))?;
    Ok(target.to_path_buf())
}

/// The broker, Kafka's command-line tools and a log4j2 binding, as a flat directory of jars.
fn fetch_kafka(dir: &Path) -> Result<()> {
    let pom = format!(
        r#"<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.event-processor</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>{KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{LOG4J_VERSION}</version></dependency>
  </dependencies>
</project>
"#
    );
    let pom_file = dir.join("pom.xml");
    std::fs::write(&pom_file, pom)?;
    let mut command = maven()?;
    command
        .arg("-f")
        .arg(&pom_file)
        .arg("dependency:copy-dependencies")
        .arg("-DincludeScope=runtime")
        .arg(format!("-DoutputDirectory={}", dir.display()));
    run_maven(
        &mut command,
        &format!("org.apache.kafka:kafka_2.13:{KAFKA_VERSION}"),
    )
}

/// Apicurio's runnable Quarkus build, unpacked.
fn fetch_apicurio(dir: &Path) -> Result<()> {
    let artifact = format!("io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all");
    let mut command = maven()?;
    command
        .arg("dependency:copy")
        .arg(format!("-Dartifact={artifact}"))
        .arg(format!("-DoutputDirectory={}", dir.display()));
    run_maven(&mut command, &artifact)?;
    let archive = dir.join(format!(
        "apicurio-registry-app-{APICURIO_VERSION}-all.tar.gz"
    ));
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(dir)
        .status()
        .context("cannot run tar")?;
    if !status.success() {
        bail!("unpacking {} failed ({status})", archive.display());
    }
    std::fs::remove_file(&archive)?;
    if !dir.join("quarkus-run.jar").is_file() {
        bail!("{artifact} unpacked without quarkus-run.jar; its layout changed");
    }
    Ok(())
}

fn maven() -> Result<Command> {
    let found = Command::new("mvn")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        bail!(
            "`mvn` (Apache Maven) is not installed or does not run; the local stack fetches Apache \
             Kafka and Apicurio Registry from Maven Central with it (Debian: apt-get install maven)"
        );
    }
    let mut command = Command::new("mvn");
    command.args(["-q", "-B"]);
    Ok(command)
}

fn run_maven(command: &mut Command, what: &str) -> Result<()> {
    let output = command.output().context("cannot run mvn")?;
    if !output.status.success() {
        bail!(
            "fetching {what} from Maven Central failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A Java at least `min` years new: `override_var` if set, else `JAVA_HOME`'s, the one on PATH,
/// or the newest under /usr/lib/jvm.
fn find_java(override_var: &str, min: u32, what: &str) -> Result<PathBuf> {
    if let Some(explicit) = std::env::var_os(override_var) {
        let path = PathBuf::from(explicit);
        return match java_major(&path) {
            Some(major) if major >= min => Ok(path),
            found => bail!(
                "{override_var}={} is {}; {what} needs Java {min} or newer",
                path.display(),
                found.map_or("not a working java".to_owned(), |major| format!(
                    "Java {major}"
                ))
            ),
        };
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        candidates.push(PathBuf::from(home).join("bin").join("java"));
    }
    candidates.push(PathBuf::from("java"));
    if let Ok(entries) = std::fs::read_dir("/usr/lib/jvm") {
        let mut installed: Vec<PathBuf> = entries
            .filter_map(|entry| {
                entry
                    .ok()
                    .map(|entry| entry.path().join("bin").join("java"))
            })
            .filter(|path| path.is_file())
            .collect();
        installed.sort();
        candidates.extend(installed);
    }
    let mut seen = Vec::new();
    for candidate in candidates {
        if let Some(major) = java_major(&candidate) {
            if major >= min {
                return Ok(candidate);
            }
            seen.push(format!("{} (Java {major})", candidate.display()));
        }
    }
    bail!(
        "{what} needs Java {min} or newer; found {}. Install one (for example a Temurin or \
         OpenJDK {min}+ package) or point {override_var} at its bin/java",
        if seen.is_empty() {
            "no java at all".to_owned()
        } else {
            seen.join(", ")
        }
    )
}

/// The major version `java -version` reports (`"17.0.15"` → 17, `"1.8.0_402"` → 8).
fn java_major(java: &Path) -> Option<u32> {
    let output = Command::new(java).arg("-version").output().ok()?;
    if !output.status.success() {
        return None;
    }
    parse_java_major(&String::from_utf8_lossy(&output.stderr))
}

fn parse_java_major(version_output: &str) -> Option<u32> {
    let quoted = version_output.split('"').nth(1)?;
    let mut parts = quoted.split(['.', '-', '+', '_']);
    match parts.next()?.parse().ok()? {
        1 => parts.next()?.parse().ok(),
        major => Some(major),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_java_major;

    #[test]
    fn java_major_version_is_read_from_both_version_styles() {
        assert_eq!(
            parse_java_major("openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime"),
            Some(17)
        );
        assert_eq!(
            parse_java_major("openjdk version \"25\" 2025-09-16"),
            Some(25)
        );
        assert_eq!(parse_java_major("java version \"1.8.0_402\""), Some(8));
        assert_eq!(parse_java_major("openjdk version \"21-ea\""), Some(21));
        assert_eq!(parse_java_major("no version here"), None);
    }
}
