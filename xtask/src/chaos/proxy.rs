//! A TCP proxy on loopback, on plain threads (xtask has no async runtime), that the chaos run
//! can cut (every connection reset, new ones dropped at once) and stall (connections stay open,
//! no byte moves), to take the broker away from the processor only.

use anyhow::{Context, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

const OPEN: u8 = 0;
const STALLED: u8 = 1;
const CUT: u8 = 2;

/// Forwards `listen` to `upstream` until dropped.
#[derive(Debug)]
pub(crate) struct Proxy {
    addr: SocketAddr,
    state: Arc<AtomicU8>,
    /// Both ends of every open connection, so a cut can reset them.
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Listens on `listen` (a free loopback port chosen by the caller, because the broker must
    /// advertise it before the proxy starts) and forwards to `upstream`.
    pub(crate) fn start(listen: SocketAddr, upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind(listen)
            .with_context(|| format!("the chaos proxy cannot listen on {listen}"))?;
        let proxy = Self {
            addr: listen,
            state: Arc::new(AtomicU8::new(OPEN)),
            connections: Arc::default(),
        };
        let (state, connections) = (Arc::clone(&proxy.state), Arc::clone(&proxy.connections));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if state.load(Ordering::SeqCst) == CUT {
                    // Closed at once: the client sees its connection reset.
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                pipe(client, server, &state, &connections);
            }
        });
        Ok(proxy)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resets every open connection and drops new ones until [`Proxy::open`].
    pub(crate) fn cut(&self) {
        self.state.store(CUT, Ordering::SeqCst);
        for stream in self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Keeps connections open but moves no byte until [`Proxy::open`]: what a black-holing
    /// network looks like to the client.
    pub(crate) fn stall(&self) {
        self.state.store(STALLED, Ordering::SeqCst);
    }

    pub(crate) fn open(&self) {
        self.state.store(OPEN, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

fn pipe(
    client: TcpStream,
    server: TcpStream,
    state: &Arc<AtomicU8>,
    connections: &Arc<Mutex<Vec<TcpStream>>>,
) {
    let streams = [&client, &server].map(|stream| stream.try_clone());
    let [Ok(client_copy), Ok(server_copy)] = streams else {
        return;
    };
    connections
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend([client_copy, server_copy]);
    let (Ok(client_reader), Ok(server_reader)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let (up, down) = (Arc::clone(state), Arc::clone(state));
    std::thread::spawn(move || copy(client_reader, server, &up));
    std::thread::spawn(move || copy(server_reader, client, &down));
}

/// Copies until either side closes; while stalled, holds each chunk back.
fn copy(mut from: TcpStream, mut to: TcpStream, state: &AtomicU8) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        loop {
            match state.load(Ordering::SeqCst) {
                OPEN => break,
                STALLED => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                    return;
                }
            }
        }
        if to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
