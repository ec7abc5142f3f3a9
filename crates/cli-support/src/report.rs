//! Errors as a person reads them at the end of a run.

/// The error and its causes on one line, skipping causes whose text the line already holds
/// (our error types repeat their source's message).
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(text.as_str()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_causes_already_in_the_message_are_not_repeated() {
        let inner = anyhow::anyhow!("topic `x` does not exist");
        let outer = inner
            .context("cannot read topic `x`: topic `x` does not exist")
            .context("reading failed");
        assert_eq!(
            one_line(&outer),
            "reading failed: cannot read topic `x`: topic `x` does not exist"
        );
        let inner = anyhow::anyhow!("connection refused");
        let middle = inner.context("cannot reach the registry: connection refused");
        let outer = middle.context("cannot get the schema id");
        assert_eq!(
            one_line(&outer),
            "cannot get the schema id: cannot reach the registry: connection refused"
        );
    }

    #[test]
    fn causes_with_new_text_are_joined_with_colons() {
        let error = anyhow::anyhow!("connection refused")
            .context("cannot reach the broker")
            .context("invalid command line");
        assert_eq!(
            one_line(&error),
            "invalid command line: cannot reach the broker: connection refused"
        );
    }

    #[test]
    fn line_breaks_inside_a_message_become_spaces() {
        let error = anyhow::anyhow!("first line\nsecond line").context("reading failed");
        assert_eq!(one_line(&error), "reading failed: first line second line");
    }
}
