//! The sockets a service is handed. Services never bind their own, so tests can pass port-0
//! listeners and standalone mode can share one process.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// An HTTP listener (webhooks, health, metrics, dashboard) and a gRPC listener, and the TLS both
/// speak when a certificate is configured.
#[derive(Debug)]
pub struct Listeners {
    pub http: TcpListener,
    pub grpc: TcpListener,
    pub tls: Option<crate::tls::Tls>,
}

impl Listeners {
    pub async fn bind(http: SocketAddr, grpc: SocketAddr) -> std::io::Result<Self> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
        };
        Ok(Self {
            http: bind(http).await?,
            grpc: bind(grpc).await?,
            tls: None,
        })
    }

    /// Both listeners speak TLS with this certificate (plain when `None`).
    pub fn with_tls(mut self, tls: Option<crate::tls::Tls>) -> Self {
        self.tls = tls;
        self
    }

    /// Both on 127.0.0.1 with ports the system picks.
    pub async fn ephemeral() -> std::io::Result<Self> {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        Self::bind(any, any).await
    }

    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }
}
