//! Who may call what. Every gRPC call and every HTTP page that shows figures (the dashboard, its
//! API, `/metrics`) needs a bearer token once tokens are configured: a read token for queries, an
//! admin token for anything that changes state (replays, re-sends, rebuilds, submissions, the
//! dead-letter queue). Health stays open for probes; webhooks and unsubscribe links carry their
//! own signatures.
//!
//! Without tokens a process serves only on loopback addresses (`herald up`, a laptop); listening
//! anywhere else without tokens is refused at start unless `[auth] open = true` says an
//! authenticating proxy stands in front.

use std::{
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// `[auth]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Tokens that may read: wins, explanations, leaderboards, reports, deliveries, the
    /// dashboard and `/metrics`. Best given as `{ env = "…" }` or `{ file = "…" }`.
    pub read_tokens: Vec<Secret>,
    /// Tokens that may also act: replay dead letters and deliveries, send tests, rebuild the
    /// ledger, submit events over gRPC.
    pub admin_tokens: Vec<Secret>,
    /// Serve without tokens on addresses other than loopback: only behind a proxy that
    /// authenticates every request.
    pub open: bool,
    /// Whether the dashboard, its API and `/metrics` need a read token too (default: yes, when
    /// tokens are configured). `false` leaves them to an authenticating proxy.
    pub protect_http: Option<bool>,
}

/// The shortest token accepted: long enough that guessing is hopeless.
const MIN_TOKEN_LEN: usize = 16;

/// Why a configuration cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "{what} listens on {addr}, which is not a loopback address, and [auth] has no tokens: \
         set [auth] read_tokens and admin_tokens (e.g. read_tokens = [{{ env = \"HERALD_READ_TOKEN\" }}]), \
         listen on 127.0.0.1, or set [auth] open = true if an authenticating proxy stands in front"
    )]
    Exposed {
        what: &'static str,
        addr: SocketAddr,
    },
    #[error(
        "[auth] {list} has a token shorter than {MIN_TOKEN_LEN} characters; use a long random one (openssl rand -hex 32)"
    )]
    TooShort { list: &'static str },
}

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Admin,
}

/// The gRPC methods that only read. Every other method (including any added later and not
/// listed here) needs an admin token: a new call is locked until someone decides otherwise.
const READ_METHODS: &[&str] = &[
    "/herald.v1.Scoring/GetWin",
    "/herald.v1.Scoring/Explain",
    "/herald.v1.Scoring/ListWins",
    // A rescore replays under another catalog and writes nothing.
    "/herald.v1.Scoring/Rescore",
    "/herald.v1.Scoring/GetMonthlyReport",
    "/herald.v1.Spotlight/GetLeaderboard",
    "/herald.v1.Spotlight/GetValueSummary",
    "/herald.v1.Spotlight/GetMyPosition",
    "/herald.v1.Spotlight/GetRecognitionSpread",
    "/herald.v1.Notify/ListDeliveries",
];

/// What a gRPC call at `path` needs; `None` for health, which probes call without a token.
pub fn grpc_scope(path: &str) -> Option<Scope> {
    if path.starts_with("/grpc.health.v1.Health/") {
        None
    } else if READ_METHODS.contains(&path)
        || path.starts_with("/grpc.reflection.v1.ServerReflection/")
    {
        Some(Scope::Read)
    } else {
        Some(Scope::Admin)
    }
}

/// Whether an HTTP path is open whatever the tokens: probes, signed webhooks, signed
/// unsubscribe links.
fn http_open(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/unsubscribe") || path.starts_with("/v1/events/")
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No token came with it.
    Missing,
    /// A token came that is none of this process's.
    Unknown,
    /// A read token came for a call that needs an admin one.
    ReadOnly,
}

impl Denied {
    fn message(&self) -> &'static str {
        match self {
            Denied::Missing => {
                "this call needs a bearer token: send `authorization: Bearer <token>` (the herald CLI sends $HERALD_TOKEN)"
            }
            Denied::Unknown => "the bearer token is not one of this service's tokens",
            Denied::ReadOnly => {
                "this call changes state and needs an admin token; the token given may only read"
            }
        }
    }

    fn status(&self) -> tonic::Status {
        match self {
            Denied::ReadOnly => tonic::Status::permission_denied(self.message()),
            Denied::Missing | Denied::Unknown => tonic::Status::unauthenticated(self.message()),
        }
    }
}

/// The tokens of a process and where they are required. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    /// SHA-256 of each token, with its scope: a stored token is never kept in the clear and the
    /// comparison takes the same time whatever matches.
    tokens: Vec<([u8; 32], Scope)>,
    grpc: bool,
    http: bool,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("tokens", &self.inner.tokens.len())
            .field("grpc", &self.inner.grpc)
            .field("http", &self.inner.http)
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Auth {
    /// Nothing required: for tests and for processes that only listen on loopback.
    pub fn open() -> Self {
        Self {
            inner: Arc::new(Inner {
                tokens: Vec::new(),
                grpc: false,
                http: false,
            }),
        }
    }

    /// The policy for a process listening on `http` and `grpc`.
    pub fn from_config(
        config: &AuthConfig,
        http: SocketAddr,
        grpc: SocketAddr,
    ) -> Result<Self, AuthError> {
        let mut tokens = Vec::new();
        for (list, scope, secrets) in [
            ("read_tokens", Scope::Read, &config.read_tokens),
            ("admin_tokens", Scope::Admin, &config.admin_tokens),
        ] {
            for secret in secrets {
                if secret.expose().trim().len() < MIN_TOKEN_LEN {
                    return Err(AuthError::TooShort { list });
                }
                tokens.push((digest(secret.expose().trim()), scope));
            }
        }
        if tokens.is_empty() {
            if !config.open {
                for (what, addr) in [("gRPC", grpc), ("HTTP", http)] {
                    if !addr.ip().is_loopback() {
                        return Err(AuthError::Exposed { what, addr });
                    }
                }
            }
            return Ok(Self::open());
        }
        Ok(Self {
            inner: Arc::new(Inner {
                tokens,
                grpc: true,
                http: config.protect_http.unwrap_or(true),
            }),
        })
    }

    /// Whether any call is checked.
    pub fn enforced(&self) -> bool {
        self.inner.grpc || self.inner.http
    }

    fn scope_of(&self, token: &str) -> Option<Scope> {
        let presented = digest(token);
        // Every stored token is compared, so the time taken says nothing about which matched.
        let mut found = None;
        for (stored, scope) in &self.inner.tokens {
            if bool::from(stored.ct_eq(&presented)) {
                found = found.max(Some(*scope));
            }
        }
        found
    }

    /// Checks a bearer token (the whole `authorization` header value) against `needed`.
    pub fn check(&self, authorization: Option<&str>, needed: Scope) -> Result<(), Denied> {
        let token = authorization
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Denied::Missing)?;
        match self.scope_of(token) {
            None => Err(Denied::Unknown),
            Some(scope) if scope < needed => Err(Denied::ReadOnly),
            Some(_) => Ok(()),
        }
    }

    /// A tower layer that checks every gRPC call.
    pub fn grpc_layer(&self) -> GrpcAuthLayer {
        GrpcAuthLayer { auth: self.clone() }
    }
}

/// Checks gRPC calls before they reach the services; see [`grpc_scope`].
#[derive(Clone)]
pub struct GrpcAuthLayer {
    auth: Auth,
}

impl<S> tower::Layer<S> for GrpcAuthLayer {
    type Service = GrpcAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcAuth {
            inner,
            auth: self.auth.clone(),
        }
    }
}

#[derive(Clone)]
pub struct GrpcAuth<S> {
    inner: S,
    auth: Auth,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for GrpcAuth<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        if self.auth.inner.grpc
            && let Some(needed) = grpc_scope(request.uri().path())
        {
            let header = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if let Err(denied) = self.auth.check(header, needed) {
                tracing::warn!(method = request.uri().path(), reason = ?denied, "gRPC call refused");
                let response = denied.status().into_http::<ResBody>();
                return Box::pin(async move { Ok(response) });
            }
        }
        // The clone that was made ready is the one that serves (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(inner.call(request))
    }
}

/// The cookie a browser keeps the dashboard's token in, once it opened `/?token=…`.
const COOKIE: &str = "herald_token";

/// Axum middleware for the HTTP listener: pages that show figures need a read token, sent as
/// `Authorization: Bearer`, or once as `?token=` (a wall screen's browser cannot set headers),
/// which is kept in an HttpOnly cookie and taken out of the address.
pub async fn http_middleware(
    axum::extract::State(auth): axum::extract::State<Auth>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !auth.inner.http || http_open(request.uri().path()) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let from_header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let from_cookie = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| format!("Bearer {value}"))
        });
    let from_query = request.uri().query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "token")
            .map(|(_, value)| value.into_owned())
    });
    if let Some(token) = from_query {
        return match auth.check(Some(&format!("Bearer {token}")), Scope::Read) {
            Ok(()) => {
                let rest: String = request
                    .uri()
                    .query()
                    .map(|query| {
                        url::form_urlencoded::Serializer::new(String::new())
                            .extend_pairs(
                                url::form_urlencoded::parse(query.as_bytes())
                                    .filter(|(name, _)| name != "token"),
                            )
                            .finish()
                    })
                    .unwrap_or_default();
                let path = request.uri().path();
                let location = if rest.is_empty() {
                    path.to_string()
                } else {
                    format!("{path}?{rest}")
                };
                let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
                (
                    http::StatusCode::SEE_OTHER,
                    [
                        (http::header::LOCATION, location),
                        (http::header::SET_COOKIE, cookie),
                    ],
                )
                    .into_response()
            }
            Err(denied) => refused(&denied),
        };
    }
    match auth.check(from_header.or(from_cookie).as_deref(), Scope::Read) {
        Ok(()) => next.run(request).await,
        Err(denied) => refused(&denied),
    }
}

fn refused(denied: &Denied) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        http::StatusCode::UNAUTHORIZED,
        [(http::header::WWW_AUTHENTICATE, "Bearer")],
        format!(
            "{}; a browser can open this page once with ?token=<read token>\n",
            denied.message()
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(read: &[&str], admin: &[&str]) -> AuthConfig {
        AuthConfig {
            read_tokens: read.iter().map(|t| Secret::new(*t)).collect(),
            admin_tokens: admin.iter().map(|t| Secret::new(*t)).collect(),
            ..AuthConfig::default()
        }
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("an address")
    }

    const READ: &str = "read-token-0123456789";
    const ADMIN: &str = "admin-token-0123456789";

    #[test]
    fn without_tokens_only_loopback_is_served() {
        let none = config(&[], &[]);
        let local = addr("127.0.0.1:9090");
        assert!(
            !Auth::from_config(&none, local, local)
                .expect("accepted")
                .enforced()
        );
        let exposed = Auth::from_config(&none, addr("0.0.0.0:8080"), local).expect_err("refused");
        assert!(exposed.to_string().contains("0.0.0.0:8080"), "{exposed}");
        assert!(exposed.to_string().contains("read_tokens"), "{exposed}");
        let open = AuthConfig { open: true, ..none };
        assert!(
            !Auth::from_config(&open, addr("0.0.0.0:8080"), addr("[::]:9090"))
                .expect("accepted")
                .enforced()
        );
    }

    #[test]
    fn a_short_token_is_refused() {
        let e = Auth::from_config(
            &config(&["short"], &[]),
            addr("127.0.0.1:1"),
            addr("127.0.0.1:2"),
        )
        .expect_err("refused");
        assert!(e.to_string().contains("read_tokens"), "{e}");
    }

    #[test]
    fn scopes_decide_what_a_token_may_call() {
        let auth = Auth::from_config(
            &config(&[READ], &[ADMIN]),
            addr("0.0.0.0:8080"),
            addr("0.0.0.0:9090"),
        )
        .expect("accepted");
        let bearer = |t: &str| format!("Bearer {t}");
        assert_eq!(auth.check(None, Scope::Read), Err(Denied::Missing));
        assert_eq!(
            auth.check(Some(&bearer("not-a-token-at-all")), Scope::Read),
            Err(Denied::Unknown)
        );
        assert_eq!(auth.check(Some(&bearer(READ)), Scope::Read), Ok(()));
        assert_eq!(
            auth.check(Some(&bearer(READ)), Scope::Admin),
            Err(Denied::ReadOnly)
        );
        assert_eq!(auth.check(Some(&bearer(ADMIN)), Scope::Admin), Ok(()));
        assert_eq!(auth.check(Some(&bearer(ADMIN)), Scope::Read), Ok(()));
        assert_eq!(auth.check(Some(READ), Scope::Read), Err(Denied::Missing));
    }

    #[test]
    fn unknown_methods_need_admin_and_health_needs_nothing() {
        assert_eq!(grpc_scope("/grpc.health.v1.Health/Check"), None);
        assert_eq!(
            grpc_scope("/herald.v1.Spotlight/GetLeaderboard"),
            Some(Scope::Read)
        );
        assert_eq!(
            grpc_scope("/herald.v1.Notify/ReplayDelivery"),
            Some(Scope::Admin)
        );
        assert_eq!(
            grpc_scope("/herald.v1.Spotlight/SomethingNew"),
            Some(Scope::Admin)
        );
    }

    #[test]
    fn debug_shows_no_token() {
        let auth = Auth::from_config(
            &config(&[READ], &[ADMIN]),
            addr("127.0.0.1:1"),
            addr("127.0.0.1:2"),
        )
        .expect("accepted");
        let text = format!("{auth:?} {:?}", config(&[READ], &[ADMIN]));
        assert!(!text.contains(READ) && !text.contains(ADMIN), "{text}");
    }
}
