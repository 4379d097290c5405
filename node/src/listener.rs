//! Accepting connections without giving up: an accept error, most often EMFILE (out of file
//! descriptors), is waited out with exponential backoff instead of retried at once (a spin: the
//! pending connection keeps the listener readable) or returned (the listener would end). A
//! connection closing anywhere in the process frees a descriptor, and accepting resumes.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// First wait after an accept error; it doubles per consecutive error.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest wait between two accept attempts, so service resumes within this once descriptors
/// are free again.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A listener whose [`Acceptor::accept`] only ever returns a connection.
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    backoff: Duration,
    /// For the log: `peer` or `HTTP`.
    what: &'static str,
}

impl Acceptor {
    pub fn new(listener: TcpListener, what: &'static str) -> Acceptor {
        Acceptor {
            listener,
            backoff: ACCEPT_BACKOFF_MIN,
            what,
        }
    }

    /// The next connection. Cancel-safe: dropping the future loses no accepted connection.
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok(conn) => {
                    self.backoff = ACCEPT_BACKOFF_MIN;
                    return conn;
                }
                Err(e) => {
                    tracing::warn!(
                        "{} accept failed: {e}; retrying in {} ms",
                        self.what,
                        self.backoff.as_millis()
                    );
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepts_and_resets_its_backoff() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let mut a = Acceptor::new(l, "test");
        a.backoff = ACCEPT_BACKOFF_MAX;
        let client = tokio::spawn(TcpStream::connect(addr));
        let (_s, from) = tokio::time::timeout(Duration::from_secs(5), a.accept())
            .await
            .expect("accepted in time");
        let c = client.await.expect("join").expect("connect");
        assert_eq!(from, c.local_addr().expect("client addr"));
        assert_eq!(a.backoff, ACCEPT_BACKOFF_MIN);
    }
}
