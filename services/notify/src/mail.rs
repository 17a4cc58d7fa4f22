//! E-mail through an SMTP relay (lettre over rustls): the relay's address is checked like any
//! outbound address (after DNS, unless private networks are allowed) and the connection goes to
//! the address that was checked, with TLS still verifying the relay's name. The Message-ID comes
//! from the announcement, so a retry after a lost answer is recognisable as the same message.
//! SMTP 4xx answers are retried and 5xx are final.

use std::{net::SocketAddr, time::Duration};

use herald_catalog::{Catalog, CatalogHandle};
use herald_proto::v1::{Announcement, AnnouncementKind};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{
        Mailbox, MultiPart,
        header::{Header, HeaderName, HeaderValue},
    },
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};

use sha2::Digest;

use crate::{
    attempt::AttemptOutcome,
    config::{ChannelConfig, Recipient, SmtpTls},
    egress, render,
    store::Store,
    unsubscribe::Links,
};

/// `Auto-Submitted: auto-generated` (RFC 3834): no out-of-office replies, no auto-forward loops.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// `List-Unsubscribe: <https://…>` (RFC 2369), on digests only.
#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.trim_matches(['<', '>']).to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058): a mail client may unsubscribe
/// with one POST to the link, without opening a page.
#[derive(Debug, Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".into())
    }
}

/// Who a channel's mail goes to, read from the catalog at each send, and for a digest how each
/// recipient leaves it.
#[derive(Clone)]
pub struct Addressing {
    pub catalog: CatalogHandle,
    pub store: Store,
    pub links: Option<Links>,
}

/// A channel's recipients for `announcement`, each once (by address, case-insensitively), and the
/// catalog entries that gave nobody. A prompt is private: only the `lead` entry counts.
pub fn recipients(
    channel: &ChannelConfig,
    catalog: &Catalog,
    announcement: &Announcement,
) -> (Vec<Mailbox>, Vec<String>) {
    let private = announcement.kind == AnnouncementKind::Prompt as i32;
    let mut out: Vec<Mailbox> = Vec::new();
    let mut unresolved = Vec::new();
    let add = |mailbox: Mailbox, out: &mut Vec<Mailbox>| {
        if !out
            .iter()
            .any(|m| AsRef::<str>::as_ref(&m.email).eq_ignore_ascii_case(mailbox.email.as_ref()))
        {
            out.push(mailbox);
        }
    };
    let person_mailbox = |p: &herald_catalog::Person| {
        let email = p.email.as_deref()?;
        let address = email.parse().ok()?;
        Some(Mailbox::new(Some(p.display_name.clone()), address))
    };
    for entry in &channel.to {
        match Recipient::parse(entry) {
            Ok(Recipient::Lead) => match announcement
                .team
                .as_deref()
                .and_then(|team| catalog.team(team))
                .and_then(|team| team.lead.as_deref())
                .and_then(|lead| catalog.person(lead))
                .and_then(person_mailbox)
            {
                Some(mailbox) => add(mailbox, &mut out),
                None => unresolved.push(entry.clone()),
            },
            Ok(_) if private => {}
            Ok(Recipient::Address(mailbox)) => add(mailbox, &mut out),
            Ok(Recipient::Person(id)) => match catalog.person(&id).and_then(person_mailbox) {
                Some(mailbox) => add(mailbox, &mut out),
                None => unresolved.push(entry.clone()),
            },
            Ok(Recipient::Team(id)) => {
                let members: Vec<Mailbox> = catalog
                    .people()
                    .iter()
                    .filter(|p| p.team.as_deref() == Some(id.as_str()))
                    .filter_map(person_mailbox)
                    .collect();
                if members.is_empty() {
                    unresolved.push(entry.clone());
                }
                for mailbox in members {
                    add(mailbox, &mut out);
                }
            }
            Err(_) => unresolved.push(entry.clone()),
        }
    }
    (out, unresolved)
}

fn failed(error: String) -> AttemptOutcome {
    AttemptOutcome::Failed {
        status: None,
        error,
    }
}

/// A stable Message-ID: the announcement id (only the characters a Message-ID may hold) at the
/// sender's domain.
pub fn message_id(announcement_id: &str, from: &Mailbox) -> String {
    let local: String = announcement_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("<{local}.herald@{}>", from.email.domain())
}

/// The message for `channel` to `to`: multipart/alternative, text then HTML. A digest for one
/// recipient carries that recipient's unsubscribe link, in its body and as one-click
/// `List-Unsubscribe`, and a Message-ID of its own.
pub fn build(
    channel: &ChannelConfig,
    announcement: &Announcement,
    to: &[Mailbox],
    unsubscribe: Option<&str>,
) -> Result<Message, String> {
    let from: Mailbox = channel
        .from
        .as_deref()
        .ok_or("the channel has no sender")?
        .parse()
        .map_err(|e| format!("sender: {e}"))?;
    let mut email = render::email::render(&announcement.card.clone().unwrap_or_default());
    let id = match (unsubscribe, to) {
        (Some(_), [one]) => {
            let digest = sha2::Sha256::digest(one.email.to_string().to_lowercase().as_bytes());
            format!("{}.{}", announcement.id, hex::encode(&digest[..6]))
        }
        _ => announcement.id.clone(),
    };
    let mut builder = Message::builder()
        .message_id(Some(message_id(&id, &from)))
        .from(from)
        .subject(email.subject.clone())
        .header(AutoSubmitted);
    if let Some(url) = unsubscribe {
        email = email.with_unsubscribe(url);
        builder = builder
            .header(ListUnsubscribe(url.to_string()))
            .header(ListUnsubscribePost);
    }
    for mailbox in to {
        builder = builder.to(mailbox.clone());
    }
    builder
        .multipart(MultiPart::alternative_plain_html(email.text, email.html))
        .map_err(|e| format!("cannot build the message: {e}"))
}

/// TLS towards `host`: public CAs, plus the channel's own CA when it names one.
fn tls_parameters(host: &str, ca: Option<&std::path::Path>) -> Result<TlsParameters, String> {
    let Some(ca) = ca else {
        return TlsParameters::new_rustls(host.to_string()).map_err(|e| e.to_string());
    };
    let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
    let certificate = Certificate::from_pem(&pem)
        .map_err(|e| format!("{} is not a PEM certificate: {e}", ca.display()))?;
    TlsParameters::builder(host.to_string())
        .add_root_certificate(certificate)
        .build_rustls()
        .map_err(|e| e.to_string())
}

/// The relay's address, checked: the first address its name resolves to that is allowed.
async fn relay_address(host: &str, port: u16, allow_private: bool) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve the SMTP relay {host}: {e}"))?
        .collect();
    addrs
        .iter()
        .copied()
        .find(|a| allow_private || egress::is_public(a.ip()))
        .ok_or_else(|| {
            format!(
                "{host} resolves only to private or reserved addresses; set notify.allow_private_networks to allow it"
            )
        })
}

/// Mails `announcement` to the channel's recipients: one message to all of them, or for a digest
/// one message each (with its own unsubscribe link when links are configured), skipping those who
/// unsubscribed.
pub async fn deliver(
    channel: &ChannelConfig,
    announcement: &Announcement,
    addressing: Option<&Addressing>,
    allow_private: bool,
    timeout: Duration,
) -> AttemptOutcome {
    let catalog = addressing.map(|a| a.catalog.current()).unwrap_or_default();
    let (to, unresolved) = recipients(channel, &catalog, announcement);
    if !unresolved.is_empty() {
        tracing::warn!(channel = %channel.name, entries = ?unresolved, "e-mail recipients not in the catalog (or without an e-mail address) are left out");
    }
    if to.is_empty() {
        return failed(format!(
            "no recipient: {} gave no e-mail address",
            unresolved.join(", ")
        ));
    }
    let is_digest = announcement.kind == AnnouncementKind::Digest as i32;
    let Some(addressing) = addressing.filter(|_| is_digest) else {
        return send(channel, announcement, &to, None, allow_private, timeout).await;
    };
    let addresses: Vec<String> = to.iter().map(|m| m.email.to_string()).collect();
    let optouts = match addressing.store.digest_optouts(&addresses).await {
        Ok(optouts) => optouts,
        Err(e) => {
            return AttemptOutcome::Retry {
                status: None,
                error: format!("cannot read who unsubscribed from digests: {e}"),
                after: None,
            };
        }
    };
    let mut sent = 0;
    for mailbox in &to {
        let address = mailbox.email.to_string().to_lowercase();
        if optouts.contains(&address) {
            continue;
        }
        let link = addressing.links.as_ref().map(|l| l.url_for(&address));
        let outcome = send(
            channel,
            announcement,
            std::slice::from_ref(mailbox),
            link.as_deref(),
            allow_private,
            timeout,
        )
        .await;
        if !matches!(outcome, AttemptOutcome::Delivered { .. }) {
            return outcome;
        }
        sent += 1;
    }
    AttemptOutcome::Delivered {
        status: 0,
        answer: format!(
            "mailed to {sent} recipient(s); {} unsubscribed from digests",
            to.len() - sent
        ),
    }
}

async fn send(
    channel: &ChannelConfig,
    announcement: &Announcement,
    to: &[Mailbox],
    unsubscribe: Option<&str>,
    allow_private: bool,
    timeout: Duration,
) -> AttemptOutcome {
    let Some(host) = channel.host.as_deref() else {
        return failed("the channel has no SMTP host".into());
    };
    let port = channel.port.unwrap_or(channel.tls.default_port());
    let message = match build(channel, announcement, to, unsubscribe) {
        Ok(message) => message,
        Err(error) => return failed(error),
    };
    let address = match relay_address(host, port, allow_private).await {
        Ok(address) => address,
        // A refused destination will be refused again; a name that does not resolve may later.
        Err(error) if error.contains("private or reserved") => return failed(error),
        Err(error) => {
            return AttemptOutcome::Retry {
                status: None,
                error,
                after: None,
            };
        }
    };
    let tls = match channel.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls | SmtpTls::Implicit => {
            herald_runtime::install_tls_provider();
            match tls_parameters(host, channel.ca.as_deref()) {
                Ok(parameters) if channel.tls == SmtpTls::Starttls => Tls::Required(parameters),
                Ok(parameters) => Tls::Wrapper(parameters),
                Err(e) => return failed(format!("TLS for {host}: {e}")),
            }
        }
    };
    let mut transport =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.ip().to_string())
            .port(address.port())
            .tls(tls)
            .timeout(Some(timeout));
    if let (Some(user), Some(password)) = (&channel.username, &channel.password) {
        transport = transport.credentials(Credentials::new(
            user.clone(),
            password.expose().to_string(),
        ));
    }
    let relay = format!("smtp://{host}:{port}");
    match transport.build().send(message).await {
        Ok(response) => AttemptOutcome::Delivered {
            status: 0,
            answer: render::truncate(
                &format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                ),
                crate::send::ANSWER_CHARS,
            ),
        },
        Err(e) => {
            let code = e.status().map(u16::from);
            let error = format!("{relay}: {}", render::truncate(&error_chain(&e), 300));
            if e.is_permanent() {
                failed(error)
            } else {
                // 4xx, a timeout, a dropped connection: the relay may take it later.
                AttemptOutcome::Retry {
                    status: None,
                    error: match code {
                        Some(code) if !error.contains(&code.to_string()) => {
                            format!("{error} (SMTP {code})")
                        }
                        _ => error,
                    },
                    after: None,
                }
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        // lettre repeats its cause in its own message: add only what is new.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_id_is_stable_and_well_formed() {
        let from: Mailbox = "Herald <herald@larkspur.example>".parse().expect("mailbox");
        assert_eq!(
            message_id("a-7/x y", &from),
            "<a-7_x_y.herald@larkspur.example>"
        );
        assert_eq!(message_id("a-7/x y", &from), message_id("a-7/x y", &from));
    }
}
