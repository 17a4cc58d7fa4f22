//! TLS on Herald's own listeners, with rustls: when `[tls] cert_file` and `key_file` are set, the
//! HTTP listener (webhooks, dashboard, metrics) and the gRPC listener both speak TLS only, so
//! bearer tokens and signed bodies never cross the network in clear text.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde::Deserialize;
use tokio::{net::TcpListener, task::JoinSet};

/// `[tls]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The certificate chain, PEM, leaf first.
    pub cert_file: Option<PathBuf>,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("[tls] needs both cert_file and key_file, or neither")]
    Incomplete,
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("{path} holds no PEM private key")]
    NoKey { path: String },
    #[error("the certificate and key cannot be used together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A loaded certificate and key, ready for both listeners.
#[derive(Clone)]
pub struct Tls {
    server: Arc<rustls::ServerConfig>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls([key redacted])")
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

impl Tls {
    /// `None` when `[tls]` is not configured.
    pub fn from_config(config: &TlsConfig) -> Result<Option<Self>, TlsError> {
        let (cert_file, key_file) = match (&config.cert_file, &config.key_file) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            _ => return Err(TlsError::Incomplete),
        };
        let cert_pem = read(cert_file)?;
        let key_pem = read(key_file)?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .filter_map(Result::ok)
            .collect();
        if certs.is_empty() {
            return Err(TlsError::NoCertificate {
                path: cert_file.display().to_string(),
            });
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey {
            path: key_file.display().to_string(),
        })?;
        crate::install_tls_provider();
        let mut server = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Self {
            server: Arc::new(server),
            cert_pem,
            key_pem,
        }))
    }

    /// The same certificate for tonic's gRPC server.
    pub fn grpc(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(
            &self.cert_pem,
            &self.key_pem,
        ))
    }

    /// A listener that hands axum only connections that completed the TLS handshake.
    pub fn http_listener(&self, tcp: TcpListener) -> TlsListener {
        TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(self.server.clone()),
            handshakes: JoinSet::new(),
        }
    }
}

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

type Handshake = (
    Result<
        std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
        tokio::time::error::Elapsed,
    >,
    SocketAddr,
);

/// TCP connections in, TLS streams out; handshakes run beside each other, so a slow or silent
/// client never holds up the next one.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    handshakes: JoinSet<Handshake>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((mut stream, addr)) => {
                        crate::startup::no_delay(&mut stream);
                        let acceptor = self.acceptor.clone();
                        self.handshakes.spawn(async move {
                            (tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await, addr)
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: wait a moment rather than spin.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(done) = self.handshakes.join_next() => match done {
                    Ok((Ok(Ok(stream)), addr)) => return (stream, addr),
                    Ok((Ok(Err(e)), addr)) => {
                        tracing::debug!(peer = %addr, error = %e, "TLS handshake failed");
                    }
                    Ok((Err(_), addr)) => {
                        tracing::debug!(peer = %addr, "TLS handshake timed out");
                    }
                    Err(e) => tracing::warn!(error = %e, "TLS handshake task failed"),
                },
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The peer of a TLS connection, as axum's connect info (the handlers read it as
/// `ConnectInfo<SocketAddr>`, which [`tls_peer_as_socket_addr`] provides).
#[derive(Debug, Clone, Copy)]
pub struct TlsPeer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for TlsPeer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        TlsPeer(*stream.remote_addr())
    }
}

/// Middleware: the TLS peer's address, where handlers look for a plain connection's.
pub async fn tls_peer_as_socket_addr(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::extract::ConnectInfo;
    if let Some(ConnectInfo(TlsPeer(addr))) =
        request.extensions().get::<ConnectInfo<TlsPeer>>().copied()
    {
        request.extensions_mut().insert(ConnectInfo(addr));
    }
    next.run(request).await
}
