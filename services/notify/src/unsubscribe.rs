//! Unsubscribing from digests: each digest e-mail carries a link signed for its recipient (and the
//! same link as one-click `List-Unsubscribe`, RFC 8058). Opening the link shows a button; only the
//! POST, from that button or a mail client's one-click, records the opt-out, so a mail scanner that
//! follows links unsubscribes nobody. A link with a wrong signature changes nothing.

use axum::{
    Router,
    extract::{Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{config::NotifySettings, render::email::escape_html, store::Store};

/// Signs and checks unsubscribe links; present when `public_url` and `unsubscribe_secret` are
/// configured.
#[derive(Clone)]
pub struct Links {
    base: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl Links {
    pub fn of(settings: &NotifySettings) -> Option<Self> {
        let base = settings.public_url.as_deref()?.trim_end_matches('/');
        let secret = settings.unsubscribe_secret.as_ref()?;
        Some(Self {
            base: format!("{base}/unsubscribe"),
            key: secret.expose().as_bytes().to_vec(),
        })
    }

    fn signature(&self, address: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(b"herald-digest-unsubscribe\n");
        mac.update(address.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// The link for `address` (lower-cased: one opt-out per mailbox however it is spelt).
    pub fn url_for(&self, address: &str) -> String {
        let address = address.trim().to_lowercase();
        format!(
            "{}?a={}&s={}",
            self.base,
            B64.encode(address.as_bytes()),
            self.signature(&address)
        )
    }

    /// The address a link's parameters stand for, if its signature holds.
    pub fn verify(&self, a: &str, s: &str) -> Option<String> {
        let address = String::from_utf8(B64.decode(a).ok()?).ok()?;
        let expected = self.signature(&address);
        // Both sides are hex of the same length when genuine; compare without an early exit.
        let same = expected.len() == s.len()
            && expected
                .bytes()
                .zip(s.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0;
        same.then_some(address)
    }
}

#[derive(Clone)]
struct UnsubscribeState {
    store: Store,
    links: Option<Links>,
}

#[derive(serde::Deserialize)]
struct LinkParams {
    #[serde(default)]
    a: String,
    #[serde(default)]
    s: String,
}

pub fn router(store: Store, links: Option<Links>) -> Router {
    Router::new()
        .route("/unsubscribe", get(confirm_page).post(unsubscribe))
        .with_state(UnsubscribeState { store, links })
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
         <body style=\"font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem\">\
         <h1>{title}</h1>{body}</body></html>"
    );
    (status, Html(html)).into_response()
}

fn refused(links: Option<&Links>) -> Response {
    let why = if links.is_none() {
        "Unsubscribe links are not configured on this Herald."
    } else {
        "This unsubscribe link is not valid: it may have been cut short by your mail program. Use the link in the latest digest."
    };
    page(
        StatusCode::BAD_REQUEST,
        "Link not valid",
        &format!("<p>{why}</p>"),
    )
}

async fn confirm_page(
    State(state): State<UnsubscribeState>,
    Query(params): Query<LinkParams>,
) -> Response {
    let Some(address) = state
        .links
        .as_ref()
        .and_then(|l| l.verify(&params.a, &params.s))
    else {
        return refused(state.links.as_ref());
    };
    page(
        StatusCode::OK,
        "Unsubscribe from Herald digests",
        &format!(
            "<p>Stop the weekly and monthly digests to <strong>{}</strong>? Announcements of single wins are not affected.</p>\
             <form method=\"post\"><input type=\"hidden\" name=\"a\" value=\"{}\"><input type=\"hidden\" name=\"s\" value=\"{}\">\
             <button type=\"submit\">Unsubscribe</button></form>",
            escape_html(&address),
            escape_html(&params.a),
            escape_html(&params.s),
        ),
    )
}

/// The POST of the confirmation button (a, s in the form) or of a mail client's one-click (a, s in
/// the query; `List-Unsubscribe=One-Click` in the body).
async fn unsubscribe(
    State(state): State<UnsubscribeState>,
    Query(query): Query<LinkParams>,
    body: axum::body::Bytes,
) -> Response {
    let field = |name: &str| {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let params = match (field("a"), field("s")) {
        (Some(a), Some(s)) => LinkParams { a, s },
        _ => query,
    };
    let Some(address) = state
        .links
        .as_ref()
        .and_then(|l| l.verify(&params.a, &params.s))
    else {
        return refused(state.links.as_ref());
    };
    if let Err(e) = state.store.opt_out_of_digests(&address).await {
        tracing::error!(error = %e, "cannot record a digest opt-out");
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again",
            "<p>Herald could not record this just now. Please try again in a minute.</p>",
        );
    }
    tracing::info!("a recipient unsubscribed from digests");
    page(
        StatusCode::OK,
        "Unsubscribed",
        &format!(
            "<p>No more Herald digests will be sent to <strong>{}</strong>.</p>",
            escape_html(&address)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Links {
        Links {
            base: "https://herald.example/unsubscribe".into(),
            key: b"0123456789abcdef0123".to_vec(),
        }
    }

    #[test]
    fn a_link_verifies_for_its_address_only() {
        let links = links();
        let url = url::Url::parse(&links.url_for("Ingrid@Larkspur.example")).expect("url");
        let param = |k: &str| {
            url.query_pairs()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.into_owned())
                .expect("param")
        };
        let (a, s) = (param("a"), param("s"));
        assert_eq!(
            links.verify(&a, &s).as_deref(),
            Some("ingrid@larkspur.example")
        );
        let other = B64.encode("jonas@larkspur.example");
        assert_eq!(links.verify(&other, &s), None, "signature is per address");
        assert_eq!(links.verify(&a, &s[1..]), None);
        assert_eq!(links.verify("!!", &s), None);
    }
}
