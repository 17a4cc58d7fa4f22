//! `[notify]`, `[[notify.channels]]` and `[[notify.routes]]`.

use std::{collections::HashSet, net::SocketAddr, time::Duration};

use herald_proto::v1::{AnnouncementKind, ValueLabel};
use herald_runtime::{ConfigLoader, Secret, SharedConfig, config::ConfigError};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A Slack incoming webhook: Block Kit.
    Slack,
    /// A Microsoft Teams Workflows webhook: an Adaptive Card.
    Teams,
    /// A Discord webhook: an embed, mentions switched off.
    Discord,
    /// A Mattermost incoming webhook: Markdown text.
    Mattermost,
    /// A Google Chat space webhook: a cardsV2 card (the URL carries its key and token).
    GoogleChat,
    /// E-mail through an SMTP relay: text and HTML.
    Email,
    /// Any HTTP endpoint: JSON signed with the Standard Webhooks scheme.
    Webhook,
    /// The process's standard output: readable text, coloured on a terminal.
    Console,
    /// A file of JSON lines, one announcement per line.
    File,
}

/// How an `email` channel talks to its relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No encryption: only for a relay on the same host or network.
    None,
}

impl SmtpTls {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        }
    }
}

impl ChannelKind {
    /// Whether the receiver recognises a repeated send of the same delivery (a webhook's
    /// `webhook-id`, Google Chat's request id, the local channels), so an interrupted attempt may
    /// be sent again without a visible duplicate.
    pub fn recognises_repeats(self) -> bool {
        matches!(
            self,
            ChannelKind::Webhook
                | ChannelKind::GoogleChat
                | ChannelKind::Console
                | ChannelKind::File
        )
    }

    /// The word used in the configuration.
    pub fn token(self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Teams => "teams",
            ChannelKind::Discord => "discord",
            ChannelKind::Mattermost => "mattermost",
            ChannelKind::GoogleChat => "google_chat",
            ChannelKind::Email => "email",
            ChannelKind::Webhook => "webhook",
            ChannelKind::Console => "console",
            ChannelKind::File => "file",
        }
    }
}

/// Where announcements can go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    /// For `slack`, `teams`, `discord`, `mattermost`, `google_chat` and `webhook`. A secret: a
    /// webhook URL lets anyone who has it post.
    #[serde(default)]
    pub url: Option<Secret>,
    /// For `file`: where the JSON lines go.
    #[serde(default)]
    pub path: Option<std::path::PathBuf>,
    /// Standard Webhooks signing secret (`whsec_<base64>`, or any string used as raw bytes).
    #[serde(default)]
    pub secret: Option<Secret>,
    /// For `email`: the SMTP relay's host name or address.
    #[serde(default)]
    pub host: Option<String>,
    /// For `email`: the relay's port (587 for STARTTLS, 465 for implicit TLS, 25 for none).
    #[serde(default)]
    pub port: Option<u16>,
    /// For `email`: how the connection to the relay is protected.
    #[serde(default)]
    pub tls: SmtpTls,
    /// For `email`: a PEM file with the CA that signed the relay's certificate, when that is not
    /// a public CA (an internal relay).
    #[serde(default)]
    pub ca: Option<std::path::PathBuf>,
    /// For `email`: the SMTP user, when the relay asks for one.
    #[serde(default)]
    pub username: Option<String>,
    /// For `email`: the SMTP password, a secret.
    #[serde(default)]
    pub password: Option<Secret>,
    /// For `email`: the sender, `Herald <herald@example.com>`.
    #[serde(default)]
    pub from: Option<String>,
    /// For `email`: who receives the announcements: addresses (a list's or a person's), or the
    /// catalog's people as `person:<id>` and a team's members as `team:<id>`, read from the
    /// catalog at each send.
    #[serde(default)]
    pub to: Vec<String>,
    /// Least time between two messages to this channel. Defaults: Slack 1 s, Teams 250 ms (a
    /// Workflows webhook takes about 4 a second), Discord 1 s, Google Chat 1 s, others none.
    #[serde(default, with = "humantime_serde")]
    pub min_interval: Option<Duration>,
    /// When more wins than this wait for the channel at once, the biggest `burst − 1` go out on
    /// their own and the rest in one merged summary, rather than a queue that drains for minutes.
    /// Defaults: 3 for chat channels and e-mail; 0 (never merge) for webhooks, the console and
    /// files, whose readers want each announcement.
    #[serde(default)]
    pub burst: Option<usize>,
}

impl ChannelConfig {
    pub fn min_interval(&self) -> Duration {
        self.min_interval.unwrap_or(match self.kind {
            ChannelKind::Slack | ChannelKind::Discord | ChannelKind::GoogleChat => {
                Duration::from_secs(1)
            }
            ChannelKind::Teams => Duration::from_millis(250),
            ChannelKind::Mattermost
            | ChannelKind::Email
            | ChannelKind::Webhook
            | ChannelKind::Console
            | ChannelKind::File => Duration::ZERO,
        })
    }

    /// How many waiting wins are sent one by one before the rest are merged; 0: never merge.
    pub fn burst(&self) -> usize {
        self.burst.unwrap_or(match self.kind {
            ChannelKind::Slack
            | ChannelKind::Teams
            | ChannelKind::Discord
            | ChannelKind::Mattermost
            | ChannelKind::GoogleChat
            | ChannelKind::Email => 3,
            ChannelKind::Webhook | ChannelKind::Console | ChannelKind::File => 0,
        })
    }

    /// Whether this channel posts to a URL (and so needs one).
    pub fn is_http(&self) -> bool {
        match self.kind {
            ChannelKind::Slack
            | ChannelKind::Teams
            | ChannelKind::Discord
            | ChannelKind::Mattermost
            | ChannelKind::GoogleChat
            | ChannelKind::Webhook => true,
            ChannelKind::Email | ChannelKind::Console | ChannelKind::File => false,
        }
    }
}

impl ChannelConfig {
    /// What an `email` channel needs: a relay, a sender and recipients that are addresses, and a
    /// password only with a user name.
    fn check_email(&self) -> Result<(), String> {
        if self.host.as_deref().is_none_or(|h| h.trim().is_empty()) {
            return Err("an email channel needs a host (the SMTP relay)".into());
        }
        let from = self
            .from
            .as_deref()
            .ok_or("an email channel needs from (the sender's address)")?;
        from.parse::<lettre::message::Mailbox>()
            .map_err(|e| format!("from {from:?} is not an e-mail address: {e}"))?;
        if self.to.is_empty() {
            return Err("an email channel needs to = [...] (at least one recipient)".into());
        }
        for to in &self.to {
            match Recipient::parse(to) {
                Ok(_) => {}
                Err(e) => return Err(format!("to {to:?}: {e}")),
            }
        }
        if self.password.is_some() && self.username.is_none() {
            return Err("a password needs a username".into());
        }
        Ok(())
    }
}

/// One entry of an e-mail channel's `to`.
#[derive(Debug, Clone, PartialEq)]
pub enum Recipient {
    Address(lettre::message::Mailbox),
    /// A catalog person, by id: their e-mail address.
    Person(String),
    /// A catalog team, by id: every member with an e-mail address.
    Team(String),
    /// `lead`: the lead of the announcement's team (the only recipient of a private prompt).
    Lead,
}

impl Recipient {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "lead" {
            return Ok(Recipient::Lead);
        }
        if let Some(id) = text.strip_prefix("person:") {
            return Ok(Recipient::Person(id.trim().to_string()));
        }
        if let Some(id) = text.strip_prefix("team:") {
            return Ok(Recipient::Team(id.trim().to_string()));
        }
        text.parse::<lettre::message::Mailbox>()
            .map(Recipient::Address)
            .map_err(|e| {
                format!(
                    "not an e-mail address ({e}), nor person:<id>, team:<id> or lead from the catalog"
                )
            })
    }
}

/// A route's quiet hours, on its time zone's wall clock; `from` after `to` spans midnight.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// `"18:00"`: nothing is sent from then…
    pub from: String,
    /// `"08:00"`: …until then; what arrived meanwhile is held, never dropped.
    pub to: String,
}

fn yes() -> bool {
    true
}

/// Which announcements go to which channels. Routes are read in order; a matching route with
/// `continue = false` ends the walk, so the routes below it see nothing of that announcement.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// The channel this route sends to (or several, with `channels`).
    #[serde(default)]
    pub channel: Option<String>,
    /// Channels this route sends to, each getting its own delivery.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Whether the routes after this one are still tried when it matches. Defaults to `true`, so
    /// every matching route gets a delivery (as before routes had an order); `false` makes the
    /// first matching route the last.
    #[serde(rename = "continue", default = "yes")]
    pub continue_: bool,
    /// Announcement kinds (`headline_win`, `correction`, `digest`, `lesson`); all when empty.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Only announcements worth at least this much.
    #[serde(default)]
    pub min_value: f64,
    /// Only these business services (catalog ids); all when empty.
    #[serde(default)]
    pub business_services: Vec<String>,
    /// Only these teams (catalog ids); all when empty.
    #[serde(default)]
    pub teams: Vec<String>,
    /// Only announcements whose business service has one of these capabilities in the catalog;
    /// all when empty.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Only announcements with a value line of one of these labels (`cash`, `capacity`,
    /// `avoided`, `estimate`); all when empty.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Only digests of these `[[spotlight.digests]]` schedules (by name); every digest when empty.
    /// Other kinds are not affected.
    #[serde(default)]
    pub digests: Vec<String>,
    /// Nothing is sent in these hours; deliveries wait for the end of them.
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
    /// Days this route sends on (`mon` … `sun`); every day when empty.
    #[serde(default)]
    pub business_days: Vec<String>,
    /// The IANA time zone quiet hours and business days are read in (`Europe/Oslo`).
    #[serde(default)]
    pub timezone: Option<String>,
}

impl RouteConfig {
    /// The channels this route sends to: `channel`, then `channels`, each once.
    pub fn channel_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for name in self.channel.iter().chain(&self.channels) {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        names
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub channels: Vec<ChannelConfig>,
    pub routes: Vec<RouteConfig>,
    /// `[notify.consumer]`: lanes, deliveries before dead-lettering, ack wait.
    pub consumer: herald_events::worker::StageSettings,
    /// Attempts per delivery before it is marked failed.
    pub max_attempts: u32,
    /// Time allowed for one HTTP attempt.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// First retry delay; doubles per attempt, with jitter.
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// How often the dispatcher looks for due deliveries when nothing new arrived.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Allow destinations on loopback and private networks. Off by default so a configured URL
    /// cannot reach internal services; tests and single-host setups turn it on.
    pub allow_private_networks: bool,
    /// Where people reach this notify's HTTP listener (`https://herald.example.com`): digest
    /// e-mails carry an unsubscribe link (and one-click `List-Unsubscribe`) under it.
    pub public_url: Option<String>,
    /// The key unsubscribe links are signed with, so nobody can unsubscribe someone else; needed
    /// with `public_url`.
    pub unsubscribe_secret: Option<Secret>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            http_addr: ([0, 0, 0, 0], 8083).into(),
            grpc_addr: ([0, 0, 0, 0], 9093).into(),
            channels: Vec::new(),
            routes: Vec::new(),
            consumer: Default::default(),
            max_attempts: 8,
            request_timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(600),
            poll_interval: Duration::from_secs(1),
            allow_private_networks: false,
            public_url: None,
            unsubscribe_secret: None,
        }
    }
}

impl NotifySettings {
    pub fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.name == name)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(format!("[notify] {m}")));
        let mut names = HashSet::new();
        for channel in &self.channels {
            if !names.insert(channel.name.as_str()) {
                return invalid(format!("channel name {:?} is used twice", channel.name));
            }
            match channel.kind {
                _ if channel.is_http() => {
                    match channel.url.as_ref().map(|u| url::Url::parse(u.expose())) {
                        Some(Ok(url))
                            if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                        }
                        Some(_) => {
                            return invalid(format!(
                                "channel {}: url must be an http(s) URL",
                                channel.name
                            ));
                        }
                        None => {
                            return invalid(format!(
                                "channel {}: a {} channel needs a url",
                                channel.name,
                                channel.kind.token()
                            ));
                        }
                    }
                }
                ChannelKind::Email => {
                    if let Err(e) = channel.check_email() {
                        return invalid(format!("channel {}: {e}", channel.name));
                    }
                }
                ChannelKind::File if channel.path.is_none() => {
                    return invalid(format!(
                        "channel {}: a file channel needs a path",
                        channel.name
                    ));
                }
                _ => {}
            }
            if let Some(secret) = &channel.secret
                && let Err(e) = crate::signing::key_bytes(secret.expose())
            {
                return invalid(format!("channel {}: secret: {e}", channel.name));
            }
        }
        let mut routes = HashSet::new();
        for route in &self.routes {
            if !routes.insert(route.name.as_str()) {
                return invalid(format!("route name {:?} is used twice", route.name));
            }
            let channels = route.channel_names();
            if channels.is_empty() {
                return invalid(format!(
                    "route {} names no channel: give channel = \"…\" or channels = [\"…\"]",
                    route.name
                ));
            }
            if let Some(unknown) = channels.iter().find(|c| self.channel(c).is_none()) {
                return invalid(format!(
                    "route {} sends to channel {unknown:?}, which is not one of the [[notify.channels]]",
                    route.name
                ));
            }
            if let Some(kind) = route
                .kinds
                .iter()
                .find(|k| AnnouncementKind::from_token(k).is_none())
            {
                return invalid(format!(
                    "route {}: kind {kind:?} is not one of headline_win, digest, lesson, correction, prompt",
                    route.name
                ));
            }
            // A prompt names people nobody recognised lately: for their lead's eyes only.
            if route.kinds.iter().any(|k| k == "prompt") {
                let private = |c: &&str| {
                    self.channel(c).is_some_and(|c| {
                        c.kind == ChannelKind::Email && c.to.iter().any(|t| t.trim() == "lead")
                    })
                };
                if let Some(open) = channels.iter().find(|c| !private(c)) {
                    return invalid(format!(
                        "route {} carries prompts (private notes to team leads) to channel {open:?}: \
                         prompts go only to e-mail channels whose `to` has \"lead\"",
                        route.name
                    ));
                }
            }
            if let Some(label) = route
                .labels
                .iter()
                .find(|l| ValueLabel::from_token(l).is_none())
            {
                return invalid(format!(
                    "route {}: label {label:?} is not one of cash, capacity, avoided, estimate",
                    route.name
                ));
            }
            if let Err(e) = crate::schedule::Window::of_route(route) {
                return invalid(format!("route {}: {e}", route.name));
            }
        }
        match (&self.public_url, &self.unsubscribe_secret) {
            (Some(url), _)
                if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) =>
            {
                return invalid(format!("public_url {url:?} must be an http(s) URL"));
            }
            (Some(_), None) => {
                return invalid(
                    "public_url needs unsubscribe_secret (a long random string) to sign unsubscribe links"
                        .into(),
                );
            }
            (Some(_), Some(secret)) if secret.expose().len() < 16 => {
                return invalid("unsubscribe_secret must be at least 16 characters".into());
            }
            _ => {}
        }
        if self.max_attempts == 0 {
            return invalid("max_attempts must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub shared: SharedConfig,
    pub notify: NotifySettings,
}

impl NotifyConfig {
    pub fn load(loader: &ConfigLoader) -> Result<Self, ConfigError> {
        let notify: NotifySettings = loader.section("notify")?;
        notify.validate()?;
        let shared = loader.shared()?;
        // A capability no catalog service has is a typo, when there is a catalog to ask.
        if !shared.catalog.is_empty() {
            for route in &notify.routes {
                if let Some(unknown) = route.capabilities.iter().find(|c| {
                    !shared
                        .catalog
                        .services()
                        .iter()
                        .any(|s| s.capability.as_deref() == Some(c.as_str()))
                }) {
                    return Err(ConfigError::Invalid(format!(
                        "[notify] route {}: capability {unknown:?} is not the capability of any catalog service",
                        route.name
                    )));
                }
            }
        }
        Ok(Self { shared, notify })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str) -> Result<NotifyConfig, ConfigError> {
        NotifyConfig::load(&ConfigLoader::from_toml_str(
            toml,
            std::path::Path::new("."),
        )?)
    }

    #[test]
    fn routes_must_name_existing_channels_and_known_kinds() {
        let err =
            load("[[notify.routes]]\nname = \"r\"\nchannel = \"nope\"\n").expect_err("no channel");
        assert!(err.to_string().contains("nope"), "{err}");
        let err = load(
            "[[notify.channels]]\nname = \"c\"\nkind = \"webhook\"\nurl = \"https://x.example/h\"\n\
             [[notify.routes]]\nname = \"r\"\nchannel = \"c\"\nkinds = [\"headline\"]\n",
        )
        .expect_err("bad kind");
        assert!(err.to_string().contains("headline"), "{err}");
    }

    const TWO_CHANNELS: &str = "[[notify.channels]]\nname = \"a\"\nkind = \"console\"\n\
         [[notify.channels]]\nname = \"b\"\nkind = \"console\"\n";

    #[test]
    fn routes_take_one_or_several_channels_and_continue_by_default() {
        let ok = load(&format!(
            "{TWO_CHANNELS}[[notify.routes]]\nname = \"one\"\nchannel = \"a\"\n\
             [[notify.routes]]\nname = \"both\"\nchannels = [\"a\", \"b\"]\ncontinue = false\n"
        ))
        .expect("valid");
        let routes = &ok.notify.routes;
        assert_eq!(routes[0].channel_names(), ["a"]);
        assert!(
            routes[0].continue_,
            "continue defaults to true: every matching route"
        );
        assert_eq!(routes[1].channel_names(), ["a", "b"]);
        assert!(!routes[1].continue_);
        for (route, expected) in [
            ("channels = [\"a\", \"slakc\"]", "channel \"slakc\""),
            ("", "names no channel"),
            ("channel = \"a\"\nlabels = [\"avoid\"]", "label \"avoid\""),
            (
                "channel = \"a\"\nkinds = [\"headline\"]",
                "kind \"headline\"",
            ),
            (
                "channel = \"a\"\nquiet_hours = { from = \"18:00\", to = \"08:00\" }\ntimezone = \"Europe/Olso\"",
                "timezone \"Europe/Olso\"",
            ),
            (
                "channel = \"a\"\nquiet_hours = { from = \"18:00\", to = \"08:00\" }",
                "need a timezone",
            ),
            (
                "channel = \"a\"\nquiet_hours = { from = \"6pm\", to = \"08:00\" }\ntimezone = \"UTC\"",
                "\"6pm\"",
            ),
            (
                "channel = \"a\"\nbusiness_days = [\"mon\", \"fry\"]\ntimezone = \"UTC\"",
                "\"fry\"",
            ),
        ] {
            let err = load(&format!(
                "{TWO_CHANNELS}[[notify.routes]]\nname = \"r\"\n{route}\n"
            ))
            .expect_err(expected)
            .to_string();
            assert!(
                err.contains(expected) && err.contains("route r"),
                "{expected}: {err}"
            );
        }
        load(&format!(
            "{TWO_CHANNELS}[[notify.routes]]\nname = \"r\"\nchannel = \"a\"\n\
             quiet_hours = {{ from = \"18:00\", to = \"08:00\" }}\n\
             business_days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\ntimezone = \"Europe/Oslo\"\n"
        ))
        .expect("quiet hours");
    }

    #[test]
    fn a_capability_must_be_in_the_catalog() {
        let catalog = "[[catalog.services]]\nid = \"svc-wms\"\nname = \"WMS\"\ncapability = \"logistics\"\n\
                       users = 10\nblocked_share = 0.5\nloaded_hourly_rate = 50.0\n";
        let route = |cap: &str| {
            format!(
                "{catalog}{TWO_CHANNELS}[[notify.routes]]\nname = \"r\"\nchannel = \"a\"\ncapabilities = [\"{cap}\"]\n"
            )
        };
        load(&route("logistics")).expect("known capability");
        let err = load(&route("logstics")).expect_err("typo").to_string();
        assert!(err.contains("capability \"logstics\""), "{err}");
    }

    #[test]
    fn channel_urls_must_be_http_and_are_never_printed() {
        let err = load("[[notify.channels]]\nname = \"c\"\nkind = \"slack\"\nurl = \"ftp://x\"\n")
            .expect_err("ftp");
        assert!(err.to_string().contains("http(s)"), "{err}");
        let ok = load("[[notify.channels]]\nname = \"c\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/SECRET\"\n")
            .expect("valid");
        assert!(!format!("{ok:?}").contains("SECRET"));
        assert_eq!(ok.notify.channels[0].min_interval(), Duration::from_secs(1));
    }

    #[test]
    fn chat_channels_take_a_secret_url_and_their_own_pace() {
        for (kind, pace) in [
            ("teams", Duration::from_millis(250)),
            ("discord", Duration::from_secs(1)),
            ("mattermost", Duration::ZERO),
            ("google_chat", Duration::from_secs(1)),
        ] {
            let ok = load(&format!(
                "[[notify.channels]]\nname = \"c\"\nkind = \"{kind}\"\n\
                 url = \"https://chat.example/v1/spaces/AAA/messages?key=KEY&token=TOKEN\"\n"
            ))
            .expect(kind);
            assert_eq!(ok.notify.channels[0].min_interval(), pace, "{kind}");
            let shown = format!("{ok:?}");
            assert!(
                !shown.contains("TOKEN") && !shown.contains("KEY"),
                "{shown}"
            );
            let err = load(&format!(
                "[[notify.channels]]\nname = \"wins-{kind}\"\nkind = \"{kind}\"\n"
            ))
            .expect_err("no url");
            let err = err.to_string();
            assert!(
                err.contains(&format!(
                    "channel wins-{kind}: a {kind} channel needs a url"
                )),
                "{err}"
            );
            let err = load(&format!(
                "[[notify.channels]]\nname = \"wins-{kind}\"\nkind = \"{kind}\"\nurl = \"mailto:x@y\"\n"
            ))
            .expect_err("not http");
            assert!(err.to_string().contains("channel wins-"), "{err}");
        }
        let err =
            load("[[notify.channels]]\nname = \"c\"\nkind = \"msteams\"\nurl = \"https://x\"\n")
                .expect_err("unknown kind");
        assert!(err.to_string().contains("msteams"), "{err}");
    }

    #[test]
    fn prompts_go_only_by_e_mail_to_the_lead() {
        let mail = "[[notify.channels]]\nname = \"mail\"\nkind = \"email\"\nhost = \"smtp.example.com\"\n\
                    from = \"herald@example.com\"\nto = [\"lead\"]\n\
                    [[notify.channels]]\nname = \"list\"\nkind = \"email\"\nhost = \"smtp.example.com\"\n\
                    from = \"herald@example.com\"\nto = [\"it@example.com\"]\n\
                    [[notify.channels]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/X\"\n";
        load(&format!(
            "{mail}[[notify.routes]]\nname = \"leads\"\nkinds = [\"prompt\"]\nchannel = \"mail\"\n"
        ))
        .expect("e-mail to the lead");
        for channel in ["chat", "list"] {
            let err = load(&format!(
                "{mail}[[notify.routes]]\nname = \"leads\"\nkinds = [\"prompt\"]\nchannel = \"{channel}\"\n"
            ))
            .expect_err(channel)
            .to_string();
            assert!(
                err.contains("prompts go only to e-mail channels whose `to` has \"lead\""),
                "{err}"
            );
        }
    }

    #[test]
    fn an_email_channel_needs_a_relay_a_sender_and_recipients() {
        let base = "[[notify.channels]]\nname = \"mail\"\nkind = \"email\"\n";
        let ok = load(&format!(
            "{base}host = \"smtp.example.com\"\nfrom = \"Herald <herald@example.com>\"\n\
             to = [\"it@example.com\"]\nusername = \"herald\"\npassword = \"SMTP-SECRET\"\n"
        ))
        .expect("valid");
        let channel = &ok.notify.channels[0];
        assert_eq!(channel.tls, SmtpTls::Starttls);
        assert_eq!(channel.tls.default_port(), 587);
        assert!(!format!("{ok:?}").contains("SMTP-SECRET"));
        for (extra, expected) in [
            ("", "needs a host"),
            ("host = \"h\"\n", "needs from"),
            (
                "host = \"h\"\nfrom = \"nope\"\n",
                "from \"nope\" is not an e-mail address",
            ),
            ("host = \"h\"\nfrom = \"a@b.c\"\n", "needs to = [...]"),
            (
                "host = \"h\"\nfrom = \"a@b.c\"\nto = [\"x\"]\n",
                "to \"x\": not an e-mail address",
            ),
            (
                "host = \"h\"\nfrom = \"a@b.c\"\nto = [\"x@y.z\"]\npassword = \"p\"\n",
                "needs a username",
            ),
            (
                "host = \"h\"\nfrom = \"a@b.c\"\nto = [\"x@y.z\"]\ntls = \"ssl\"\n",
                "ssl",
            ),
        ] {
            let err = load(&format!("{base}{extra}"))
                .expect_err(expected)
                .to_string();
            assert!(err.contains(expected), "{expected}: {err}");
            if !expected.contains("ssl") {
                assert!(err.contains("channel mail"), "{err}");
            }
        }
    }

    #[test]
    fn each_channel_kind_asks_for_what_it_needs() {
        let err =
            load("[[notify.channels]]\nname = \"c\"\nkind = \"webhook\"\n").expect_err("no url");
        assert!(err.to_string().contains("needs a url"), "{err}");
        let err =
            load("[[notify.channels]]\nname = \"c\"\nkind = \"file\"\n").expect_err("no path");
        assert!(err.to_string().contains("needs a path"), "{err}");
        load("[[notify.channels]]\nname = \"c\"\nkind = \"console\"\n")
            .expect("console needs nothing");
        load("[[notify.channels]]\nname = \"c\"\nkind = \"file\"\npath = \"/tmp/x.jsonl\"\n")
            .expect("file");
    }
}
