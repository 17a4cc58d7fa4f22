//! E-mail through an SMTP relay (lettre over rustls): the relay's address is checked like any
//! outbound address (after DNS, unless private networks are allowed) and the connection goes to
//! the address that was checked, with TLS still verifying the relay's name. The Message-ID comes
//! from the announcement, so a retry after a lost answer is recognisable as the same message.
//! SMTP 4xx answers are retried and 5xx are final.

use std::{net::SocketAddr, time::Duration};

use herald_proto::v1::Announcement;
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

use crate::{
    attempt::AttemptOutcome,
    config::{ChannelConfig, SmtpTls},
    egress, render,
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

/// The message for `channel`: multipart/alternative, text then HTML.
pub fn build(channel: &ChannelConfig, announcement: &Announcement) -> Result<Message, String> {
    let from: Mailbox = channel
        .from
        .as_deref()
        .ok_or("the channel has no sender")?
        .parse()
        .map_err(|e| format!("sender: {e}"))?;
    let email = render::email::render(&announcement.card.clone().unwrap_or_default());
    let mut builder = Message::builder()
        .message_id(Some(message_id(&announcement.id, &from)))
        .from(from)
        .subject(email.subject)
        .header(AutoSubmitted);
    for to in &channel.to {
        builder = builder.to(to.parse().map_err(|e| format!("recipient {to}: {e}"))?);
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

pub async fn send(
    channel: &ChannelConfig,
    announcement: &Announcement,
    allow_private: bool,
    timeout: Duration,
) -> AttemptOutcome {
    let Some(host) = channel.host.as_deref() else {
        return failed("the channel has no SMTP host".into());
    };
    let port = channel.port.unwrap_or(channel.tls.default_port());
    let message = match build(channel, announcement) {
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
        Ok(_) => AttemptOutcome::Delivered { status: 0 },
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
