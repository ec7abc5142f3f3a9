//! `event-processor --probe URL`: one HTTP GET of the processor's own endpoint, exit 0 on a 200.
//!
//! The container image has no curl; its `HEALTHCHECK` runs the binary itself with
//! `--probe http://127.0.0.1:9464/health`. Plain HTTP/1.1 over a TCP stream, no settings read.

use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// Limit of the connection, the request and the answer each.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Runs the probe and prints its outcome: exit 0 on 200, 1 otherwise, 2 for a malformed URL.
pub fn run(url: &str) -> ExitCode {
    let (host, port, path) = match parse(url) {
        Ok(parts) => parts,
        Err(error) => {
            eprintln!("error: --probe {url}: {error:#}");
            return ExitCode::from(2);
        }
    };
    match get(&host, port, &path) {
        Ok((200, body)) => {
            println!("{url}: 200 {body}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("{url}: {status} {body}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("{url}: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `http://host:port/path` → (host, port, path); the port defaults to 80, the path to `/`.
fn parse(url: &str) -> Result<(String, u16, String)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("only http:// URLs are probed");
    };
    let (authority, path) = match rest.find('/') {
        Some(index) => (&rest[..index], &rest[index..]),
        None => (rest, "/"),
    };
    // `[v6]:port`, `[v6]`, `host:port` or `host`.
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .context("unclosed `[` in the host")?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(port) => port
            .parse()
            .with_context(|| format!("port `{port}` is not a number"))?,
        None => 80,
    };
    if host.is_empty() {
        bail!("no host");
    }
    Ok((host.to_owned(), port, path.to_owned()))
}

fn get(host: &str, port: u16, path: &str) -> Result<(u16, String)> {
    let address = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .with_context(|| format!("{host} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)
        .with_context(|| format!("cannot connect to {address}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nUser-Agent: event-processor-probe\r\n\r\n"
    )
    .context("cannot send the request")?;
    let mut answer = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut answer)
        .context("cannot read the answer")?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP answer: {answer}"))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.trim().to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_into_host_port_and_path() {
        let parsed = |url: &str| parse(url).expect("valid");
        assert_eq!(
            parsed("http://127.0.0.1:9464/health"),
            ("127.0.0.1".to_owned(), 9464, "/health".to_owned())
        );
        assert_eq!(
            parsed("http://localhost"),
            ("localhost".to_owned(), 80, "/".to_owned())
        );
        assert_eq!(
            parsed("http://[::1]:9464/ready"),
            ("::1".to_owned(), 9464, "/ready".to_owned())
        );
        assert!(parse("https://127.0.0.1:9464/health").is_err());
        assert!(parse("http://127.0.0.1:x/health").is_err());
        assert!(parse("http://:9464/health").is_err());
    }
}
