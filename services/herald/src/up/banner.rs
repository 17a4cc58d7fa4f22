//! What `herald up` prints once it listens: where, which sources it accepts and how each must
//! prove itself, and what to do when none can (no config). The source list comes from ingest's
//! registered handlers, so it cannot fall behind them.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use herald_ingest::{config::SourceSettings, sign, sources};
use herald_notify::{
    config::{ChannelConfig, ChannelKind},
    egress::redacted,
};
use herald_proto::v1::Source;

use crate::demo;

/// A window in the words a reader uses: "72 h", "7 days".
fn human(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s >= 7 * 86_400 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{} h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// How a source's deliveries are checked, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Secret,
    Token,
    /// `allow_unsigned = true`: anything is accepted.
    Unsigned,
    /// No key: every delivery is refused.
    Refused,
}

impl Check {
    fn of(settings: Option<&SourceSettings>) -> Self {
        let Some(settings) = settings else {
            return Check::Refused;
        };
        let keys = settings.keys();
        if !keys.secrets.is_empty() {
            Check::Secret
        } else if !keys.tokens.is_empty() {
            Check::Token
        } else if settings.allow_unsigned {
            Check::Unsigned
        } else {
            Check::Refused
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Check::Secret => "signed, secret set",
            Check::Token => "bearer token set",
            Check::Unsigned => "UNSIGNED accepted (allow_unsigned)",
            Check::Refused => "refused: no secret or token",
        }
    }
}

/// Everything the banner says.
pub struct Banner {
    pub data_dir: PathBuf,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub config: Option<PathBuf>,
    pub demo: bool,
    /// Every registered source and how it is checked, in ingest's order.
    pub sources: Vec<(Source, Check)>,
    /// How long a win is held before it counts, and how long a reopen still withdraws it.
    pub hold_back: std::time::Duration,
    pub revoke_within: std::time::Duration,
    /// Where announcements go: each channel's name, kind and destination (without secrets).
    pub channels: Vec<String>,
}

impl Banner {
    pub fn new(
        data_dir: &Path,
        (http, grpc): (SocketAddr, SocketAddr),
        config: Option<&Path>,
        demo: bool,
        settings: &BTreeMap<String, SourceSettings>,
    ) -> Self {
        let sources = sources::handlers(settings)
            .iter()
            .map(|h| {
                let source = h.source();
                (source, Check::of(settings.get(source.token())))
            })
            .collect();
        Self {
            data_dir: data_dir.to_path_buf(),
            http,
            grpc,
            config: config.map(Path::to_path_buf),
            demo,
            sources,
            hold_back: std::time::Duration::ZERO,
            revoke_within: std::time::Duration::ZERO,
            channels: Vec::new(),
        }
    }

    /// The configured channels, each said with its destination redacted (a webhook URL is a
    /// credential).
    pub fn with_channels(mut self, channels: &[ChannelConfig]) -> Self {
        self.channels = channels
            .iter()
            .map(|c| {
                let to = match c.kind {
                    ChannelKind::Console => "this terminal".to_string(),
                    ChannelKind::File => c
                        .path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    ChannelKind::Email => format!(
                        "{} via {}",
                        c.to.join(", "),
                        c.host.as_deref().unwrap_or("?")
                    ),
                    _ => c
                        .url
                        .as_ref()
                        .and_then(|u| url::Url::parse(u.expose()).ok())
                        .map(|u| redacted(&u))
                        .unwrap_or_default(),
                };
                format!("{} ({}) → {to}", c.name, c.kind.token())
            })
            .collect();
        self
    }

    /// The verification windows in force, for the line that says when wins appear.
    pub fn with_verification(
        mut self,
        hold_back: std::time::Duration,
        revoke_within: std::time::Duration,
    ) -> Self {
        self.hold_back = hold_back;
        self.revoke_within = revoke_within;
        self
    }

    /// When a win appears: a newcomer who sends an event and sees nothing should know why.
    fn verification_line(&self, grpc: SocketAddr) -> String {
        let revoke = human(self.revoke_within);
        if self.hold_back.is_zero() {
            format!(
                "\x20 wins       confirmed at once (hold_back 0); a reopen within {revoke} still withdraws one and corrects its announcement\n"
            )
        } else {
            format!(
                "\x20 wins       held {} before they count or are announced, so a reopen can withdraw them ([scoring.verification] hold_back);\n\
                 \x20            `herald wins pending --url http://{grpc}` lists those waiting\n",
                human(self.hold_back)
            )
        }
    }

    pub fn render(&self) -> String {
        let (http, grpc) = (self.http, self.grpc);
        let mut out = format!(
            "\nHerald is up (one process; data in {})\n\
             \x20 webhooks   POST http://{http}/v1/events/<source>, for these sources:\n",
            self.data_dir.display()
        );
        for (source, check) in &self.sources {
            let _ = writeln!(
                out,
                "               {:<12} {:<36} {}",
                source.token(),
                check.describe(),
                sign::scheme(*source)
            );
        }
        let _ = write!(
            out,
            "\x20 dashboard  http://{http}/\n\
             \x20 gRPC       {grpc}   (every API: herald leaderboard --url http://{grpc}, or HERALD_URL=http://{grpc})\n\
             \x20 health     http://{http}/readyz · metrics http://{http}/metrics\n"
        );
        if !self.channels.is_empty() {
            let _ = writeln!(
                out,
                "\x20 announces  {}",
                self.channels.join("\n             ")
            );
        }
        out.push_str(&self.verification_line(grpc));
        out.push_str(&self.keys_advice());
        out.push_str(&self.send_advice());
        out
    }

    /// With no key anywhere, say that unsigned deliveries are refused and how to add keys.
    fn keys_advice(&self) -> String {
        let refused: Vec<&str> = self
            .sources
            .iter()
            .filter(|(_, c)| *c == Check::Refused)
            .map(|(s, _)| s.token())
            .collect();
        if refused.is_empty() {
            return String::new();
        }
        let intro = if self.config.is_none() {
            "\nNo --config given, so no source has a secret or token: "
        } else {
            "\n"
        };
        format!(
            "{intro}{} refuse every delivery (unsigned deliveries are never accepted by default).\n\
             \x20 Add each tool's key to herald.toml and pass --config:\n\
             \x20     [sources.jira]\n\
             \x20     secret = \"…\"          # opsgenie: token = \"…\"\n\
             \x20 or set it in the environment: HERALD_SOURCES__JIRA__SECRET=… (HERALD_SOURCES__OPSGENIE__TOKEN=…).\n\
             \x20 `herald up --demo` runs with a key for every source.\n",
            refused.join(", ")
        )
    }

    fn send_advice(&self) -> String {
        let grpc = self.grpc;
        if self.demo {
            return format!(
                "\nSend a signed event as the tool would (the demo's keys: --secret {secret} for every source \
                 but opsgenie, --token {token} for opsgenie):\n\
                 \x20 herald send jira tests/fixtures/jira/issue-resolved.json --secret {secret} --url http://{grpc}\n",
                secret = demo::SECRET,
                token = demo::TOKEN,
            );
        }
        format!(
            "\nSend a signed event as the tool would: herald send <source> FILE --secret … --url http://{grpc} \
             (opsgenie: --token …)\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn banner(settings: &BTreeMap<String, SourceSettings>, config: bool) -> Banner {
        Banner::new(
            Path::new("/data"),
            (
                "127.0.0.1:8080".parse().expect("addr"),
                "127.0.0.1:9090".parse().expect("addr"),
            ),
            config.then_some(Path::new("herald.toml")),
            false,
            settings,
        )
    }

    #[test]
    fn the_banner_says_when_wins_appear() {
        let hour = std::time::Duration::from_secs(3600);
        let held = banner(&BTreeMap::new(), true)
            .with_verification(72 * hour, 72 * hour)
            .render();
        assert!(held.contains("held 72 h before they count"), "{held}");
        assert!(
            held.contains("herald wins pending --url http://127.0.0.1:9090"),
            "{held}"
        );
        let at_once = banner(&BTreeMap::new(), true)
            .with_verification(std::time::Duration::ZERO, 72 * hour)
            .render();
        assert!(at_once.contains("confirmed at once"), "{at_once}");
        assert!(at_once.contains("a reopen within 72 h"), "{at_once}");
        assert_eq!(human(7 * 24 * hour), "7 days");
    }

    #[test]
    fn the_banner_lists_exactly_the_registered_sources() {
        let banner = banner(&BTreeMap::new(), false);
        let registered: BTreeSet<Source> = sources::handlers(&BTreeMap::new())
            .iter()
            .map(|h| h.source())
            .collect();
        let listed: BTreeSet<Source> = banner.sources.iter().map(|(s, _)| *s).collect();
        assert_eq!(listed, registered);
        assert_eq!(listed, Source::ALL.iter().copied().collect());
        let text = banner.render();
        for source in Source::ALL {
            assert!(
                text.contains(&format!("               {} ", source.token())),
                "{} missing from:\n{text}",
                source.token()
            );
        }
    }

    #[test]
    fn without_a_config_it_says_deliveries_are_refused_and_how_to_add_keys() {
        let text = banner(&BTreeMap::new(), false).render();
        assert!(text.contains("No --config given"), "{text}");
        assert!(
            text.contains("unsigned deliveries are never accepted"),
            "{text}"
        );
        assert!(text.contains("[sources.jira]"), "{text}");
        assert!(text.contains("HERALD_SOURCES__JIRA__SECRET"), "{text}");
        assert!(
            text.contains("herald send <source> FILE --secret"),
            "{text}"
        );
    }

    #[test]
    fn with_the_demo_every_source_has_a_key_and_no_advice_is_needed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let loader = demo::config_loader(dir.path(), &Default::default()).expect("demo config");
        let config = herald_ingest::IngestConfig::load(&loader).expect("loads");
        let banner = Banner {
            demo: true,
            ..banner(&config.sources, false)
        };
        assert!(
            banner.sources.iter().all(|(_, c)| *c != Check::Refused),
            "{:?}",
            banner.sources
        );
        let text = banner.render();
        assert!(!text.contains("refuse every delivery"), "{text}");
        assert!(
            text.contains(demo::SECRET) && text.contains(demo::TOKEN),
            "{text}"
        );
    }

    /// README.md's "Connect your tools" table names exactly the sources ingest registers.
    #[test]
    fn the_readme_source_table_lists_exactly_the_registered_sources() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        let readme = std::fs::read_to_string(&path).expect("README.md at the workspace root");
        let section = readme
            .split("\n## ")
            .find(|s| s.starts_with("Connect your tools"))
            .expect("a \"Connect your tools\" section");
        let listed: BTreeSet<String> = section
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split_once('`').map(|(name, _)| name.to_string()))
            .collect();
        let registered: BTreeSet<String> = sources::handlers(&BTreeMap::new())
            .iter()
            .map(|h| h.source().token().to_string())
            .collect();
        assert_eq!(
            listed, registered,
            "README's source table vs ingest's sources"
        );
    }
}
