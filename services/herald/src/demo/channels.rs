//! The demo's optional real channels: a Microsoft Teams Workflows webhook and an SMTP relay, each
//! given as one value (`--teams-url`, `--smtp`, or their environment variables), so a first try can
//! put the demo's announcements where people already read.

use std::{fmt::Write as _, net::IpAddr};

use anyhow::{Context, bail};

/// What the demo announces to beyond the console and its file. No `Debug`: both values carry
/// credentials.
#[derive(Default, Clone)]
pub struct DemoChannels {
    /// A Teams Workflows webhook URL (a secret: it carries its signature).
    pub teams_url: Option<String>,
    /// `smtp://[user:password@]host[:port]?from=…&to=…[,…]`; `smtps://` for TLS from the first
    /// byte, `smtp+plain://` for a relay without TLS (a local test relay such as Mailpit).
    pub smtp: Option<String>,
}

/// A TOML string literal.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// Whether `host` is this machine or a private network, which notify refuses unless allowed.
fn is_local(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .is_ok_and(|ip| !herald_notify::egress::is_public(ip))
}

impl DemoChannels {
    /// Channels and routes to add to the demo's configuration, and whether they point at this
    /// machine or a private network (which the demo then allows).
    pub fn toml(&self) -> anyhow::Result<(String, bool)> {
        let mut out = String::new();
        let mut local = false;
        if let Some(teams) = &self.teams_url {
            let url = url::Url::parse(teams).context(
                "--teams-url (HERALD_DEMO_TEAMS_URL) is not a URL: give the Workflows webhook URL Teams showed",
            )?;
            if !matches!(url.scheme(), "http" | "https") {
                bail!("--teams-url (HERALD_DEMO_TEAMS_URL) must be an http(s) URL");
            }
            local |= url.host_str().is_some_and(is_local);
            let _ = write!(
                out,
                "\n[[notify.channels]]\nname = \"teams\"\nkind = \"teams\"\nurl = {}\n\n\
                 [[notify.routes]]\nname = \"headlines-to-teams\"\nchannel = \"teams\"\n\
                 kinds = [\"headline_win\", \"correction\", \"lesson\", \"digest\"]\n",
                quoted(teams)
            );
        }
        if let Some(smtp) = &self.smtp {
            let (channel, is_local_relay) = smtp_channel(smtp)?;
            local |= is_local_relay;
            out.push_str(&channel);
            out.push_str(
                "\n[[notify.routes]]\nname = \"headlines-to-email\"\nchannel = \"email\"\n\
                 kinds = [\"headline_win\", \"correction\", \"lesson\", \"digest\"]\n",
            );
        }
        Ok((out, local))
    }
}

/// `[[notify.channels]]` for an SMTP URL, and whether the relay is local.
fn smtp_channel(smtp: &str) -> anyhow::Result<(String, bool)> {
    let usage = "--smtp (HERALD_DEMO_SMTP) is smtp://[user:password@]host[:port]?from=herald@example.com&to=it-wins@example.com \
                 (smtps:// for TLS from the first byte, smtp+plain:// for a relay without TLS)";
    let url = url::Url::parse(smtp).with_context(|| usage.to_string())?;
    let tls = match url.scheme() {
        "smtp" => "starttls",
        "smtps" => "implicit",
        "smtp+plain" => "none",
        other => bail!("{usage}; not {other}://"),
    };
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        bail!("{usage}: the relay's host is missing");
    };
    let param = |name: &str| -> Vec<String> {
        url.query_pairs()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let to = param("to");
    if to.is_empty() {
        bail!("{usage}: give at least one recipient with to=");
    }
    let from = param("from")
        .into_iter()
        .next()
        .unwrap_or_else(|| format!("Herald <herald@{host}>"));
    let mut out = format!(
        "\n[[notify.channels]]\nname = \"email\"\nkind = \"email\"\nhost = {}\ntls = \"{tls}\"\nfrom = {}\nto = [{}]\n",
        quoted(host.trim_matches(['[', ']'])),
        quoted(&from),
        to.iter().map(|t| quoted(t)).collect::<Vec<_>>().join(", "),
    );
    if let Some(port) = url.port() {
        let _ = writeln!(out, "port = {port}");
    }
    if !url.username().is_empty() {
        let user = percent_decoded(url.username());
        let _ = writeln!(out, "username = {}", quoted(&user));
        if let Some(password) = url.password() {
            let _ = writeln!(out, "password = {}", quoted(&percent_decoded(password)));
        }
    }
    Ok((out, is_local(host)))
}

fn percent_decoded(text: &str) -> String {
    url::form_urlencoded::parse(format!("v={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_smtp_url_becomes_an_email_channel() {
        let (toml, local) = smtp_channel(
            "smtp://herald:p%40ss@relay.example.com:2525?from=Herald%20%3Cherald@example.com%3E&to=a@example.com,b@example.com",
        )
        .expect("channel");
        assert!(!local);
        let value: toml::Table = toml.parse().expect("valid TOML");
        let channel = &value["notify"]["channels"][0];
        assert_eq!(channel["host"].as_str(), Some("relay.example.com"));
        assert_eq!(channel["port"].as_integer(), Some(2525));
        assert_eq!(channel["tls"].as_str(), Some("starttls"));
        assert_eq!(channel["password"].as_str(), Some("p@ss"));
        assert_eq!(
            channel["from"].as_str(),
            Some("Herald <herald@example.com>")
        );
        assert_eq!(channel["to"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn a_local_relay_is_noticed_and_a_bad_url_explained() {
        let (_, local) = smtp_channel("smtp+plain://127.0.0.1:1025?to=it@example.com").expect("ok");
        assert!(local);
        let error = smtp_channel("smtp://relay.example.com").expect_err("no recipient");
        assert!(error.to_string().contains("to="), "{error}");
        let error = smtp_channel("http://relay.example.com?to=a@b.c").expect_err("scheme");
        assert!(error.to_string().contains("smtp://"), "{error}");
    }
}
