//! A TCP proxy between the application and PostgreSQL that a test can cut,
//! the two ways a database goes away: refusing (nothing listens, open
//! connections are reset) and frozen (connections stay open and nothing
//! gets through either way, as when the network goes silent; what was sent
//! meanwhile arrives once it thaws, as TCP would deliver it).

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    Open,
    Frozen,
    Refusing,
}

pub(crate) struct PgProxy {
    pub(crate) port: u16,
    link: watch::Sender<Link>,
    task: JoinHandle<()>,
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = self.link.send(Link::Refusing);
    }
}

impl PgProxy {
    /// A proxy to the server of `url`, open.
    pub(crate) async fn start(url: &str) -> PgProxy {
        let options = PgConnectOptions::from_str(url).expect("a PostgreSQL URL");
        let target = format!("{}:{}", options.get_host(), options.get_port());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (link, watching) = watch::channel(Link::Open);
        let task = tokio::spawn(serve(listener, port, target, watching));
        PgProxy { port, link, task }
    }

    pub(crate) fn set(&self, link: Link) {
        self.link.send_replace(link);
    }

    /// `url` with its server replaced by the proxy.
    pub(crate) fn url(&self, url: &str) -> String {
        let at = url.rfind('@').map_or(url.find("://").unwrap() + 3, |at| at + 1);
        let end = url[at..].find('/').map_or(url.len(), |slash| at + slash);
        format!("{}127.0.0.1:{}{}", &url[..at], self.port, &url[end..])
    }
}

async fn serve(mut listener: TcpListener, port: u16, target: String, mut link: watch::Receiver<Link>) {
    loop {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((client, _)) = accepted {
                        tokio::spawn(relay(client, target.clone(), link.clone()));
                    }
                }
                changed = link.changed() => {
                    if changed.is_err() { return; }
                    if *link.borrow() == Link::Refusing { break; }
                }
            }
        }
        // Refusing: nothing listens until the link opens again.
        drop(listener);
        if link.wait_for(|link| *link != Link::Refusing).await.is_err() {
            return;
        }
        listener = loop {
            let address = SocketAddr::from(([127, 0, 0, 1], port));
            match TcpListener::bind(address).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
    }
}

async fn relay(client: TcpStream, target: String, link: watch::Receiver<Link>) {
    let Ok(server) = TcpStream::connect(&target).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        () = pump(client_read, server_write, link.clone()) => {}
        () = pump(server_read, client_write, link.clone()) => {}
    }
}

/// Copies `from` to `to` while the link is open; holds what it read while
/// frozen; ends (closing both) when the link refuses.
async fn pump(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin, mut link: watch::Receiver<Link>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            _ = link.wait_for(|link| *link == Link::Refusing) => return,
        };
        let Ok(n) = read else { return };
        if n == 0 {
            return;
        }
        match link.wait_for(|link| *link != Link::Frozen).await {
            Ok(link) if *link == Link::Open => {}
            _ => return,
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
