//! `[spotlight]`

use std::net::SocketAddr;

use herald_runtime::{ConfigLoader, SharedConfig, config::ConfigError};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpotlightSettings {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    /// A win worth at least this much (organisation currency) is announced at once; smaller wins
    /// wait for the digests.
    pub headline_min_value: f64,
    /// Seconds between automatic refreshes of the dashboard page.
    pub dashboard_refresh_seconds: u32,
    /// Where the dashboard finds the 90-day plan's chart: scoring's `/plan.svg` (the same listener
    /// under `herald up`; scoring's address or a path your proxy sends to scoring otherwise). Empty
    /// leaves the panel out; without a plan scoring answers 404 and the panel removes itself.
    pub plan_chart_url: String,
    /// Where the dashboard finds the time-to-restore trend: scoring's `/mttr.svg`, reached as
    /// `plan_chart_url` is. Empty leaves the chart out.
    pub mttr_chart_url: String,
    /// A win confirmed more than this long after its outcome is history: counted in its period,
    /// never a live headline (so are backfilled and caught-up outcomes, whatever their age).
    #[serde(with = "humantime_serde")]
    pub announce_max_age: std::time::Duration,
    /// `[spotlight.consumer]`: lanes, deliveries before dead-lettering, ack wait.
    pub consumer: herald_events::worker::StageSettings,
    /// `[[spotlight.digests]]`: when each digest goes out. Default: weekly on Monday at 08:00 and
    /// monthly on the 1st at 08:00, in the organisation's zone. `digests = []` sends none.
    pub digests: Vec<DigestConfig>,
    /// How often the schedule is looked at.
    #[serde(with = "humantime_serde")]
    pub digest_check_every: std::time::Duration,
    /// How long a replica may take to build and publish a digest before another one takes over.
    #[serde(with = "humantime_serde")]
    pub digest_lease: std::time::Duration,
    /// A digest whose time passed longer ago than this (spotlight was down) is skipped, not sent
    /// late.
    #[serde(with = "humantime_serde")]
    pub digest_grace: std::time::Duration,
    /// `[spotlight.recognition]`: who is in the spotlight, how rankings are shown.
    pub recognition: RecognitionSettings,
}

/// How people are recognised: fairly (rotation, quiet work), privately where it matters (no full
/// ranking of individuals in public), and with a nudge for whoever has gone unseen.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecognitionSettings {
    /// People in the spotlight per period (dashboard stories, digests).
    pub people_shown: usize,
    /// Nobody is in the spotlight more than this many periods running (0: no rotation).
    pub rotation_after: usize,
    /// Spotlight places kept for quiet work (changes without incidents, problems eliminated, toil
    /// automated) when someone did some, so visible roles do not crowd it out.
    pub invisible_quota: usize,
    /// The most people a public leaderboard lists; a full ranking of individuals is never shown
    /// (each person may ask for their own position).
    pub public_top_people: u32,
    /// Show money per person in leaderboards; people are otherwise celebrated by wins, hours and
    /// stories, and money is shown per team and business service.
    pub people_money: bool,
    /// Months in a season (1, 2, 3, 4, 6 or 12), the first starting in January.
    pub season_months: u32,
    /// A team lead is nudged about members not credited for this many weeks (0: never).
    pub unrecognised_weeks: u32,
}

impl RecognitionSettings {
    /// How people are ranked: by money only where money per person is shown.
    pub fn people_rank_by(&self) -> crate::store::rankings::RankBy {
        if self.people_money {
            crate::store::rankings::RankBy::Value
        } else {
            crate::store::rankings::RankBy::Hours
        }
    }
}

impl Default for RecognitionSettings {
    fn default() -> Self {
        Self {
            people_shown: 3,
            rotation_after: 2,
            invisible_quota: 1,
            public_top_people: 10,
            people_money: false,
            season_months: 6,
            unrecognised_weeks: 4,
        }
    }
}

/// A day in `[[spotlight.digests]]`: `"mon"` for a weekly digest, `1` for a monthly one.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum DigestDay {
    OfMonth(u32),
    Weekday(String),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// Part of each digest's id (`digest-<name>-<period start>`): letters, digits, `-` and `_`.
    pub name: String,
    /// `week` or `month`.
    pub period: String,
    /// `"mon"` … `"sun"` for a week, 1 to 28 for a month.
    pub day: DigestDay,
    /// Wall-clock time, `"08:00"` or `"08:00:30"`.
    pub at: String,
    /// IANA zone; the organisation's when absent.
    #[serde(default)]
    pub timezone: Option<String>,
}

impl DigestConfig {
    fn weekly() -> Self {
        Self {
            name: "weekly".into(),
            period: "week".into(),
            day: DigestDay::Weekday("mon".into()),
            at: "08:00".into(),
            timezone: None,
        }
    }

    fn monthly() -> Self {
        Self {
            name: "monthly".into(),
            period: "month".into(),
            day: DigestDay::OfMonth(1),
            at: "08:00".into(),
            timezone: None,
        }
    }

    /// The schedule, its zone defaulting to `organisation_tz`.
    pub fn schedule(
        &self,
        organisation_tz: chrono_tz::Tz,
    ) -> Result<crate::digest::schedule::Schedule, String> {
        use crate::{
            digest::schedule::{Day, Schedule, parse_time, parse_weekday},
            periods::PeriodKind,
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "digest name {:?} may hold only letters, digits, - and _",
                self.name
            ));
        }
        let period = match self.period.as_str() {
            "week" => PeriodKind::Week,
            "month" => PeriodKind::Month,
            other => {
                return Err(format!(
                    "digest {}: period {other:?} is not week or month",
                    self.name
                ));
            }
        };
        let day = match (&self.day, period) {
            (DigestDay::Weekday(day), PeriodKind::Week) => {
                Day::Weekday(parse_weekday(day).map_err(|e| format!("digest {}: {e}", self.name))?)
            }
            (DigestDay::OfMonth(day @ 1..=28), PeriodKind::Month) => Day::OfMonth(*day),
            (DigestDay::OfMonth(day), PeriodKind::Month) => {
                return Err(format!(
                    "digest {}: day {day} must be 1 to 28, so every month has it",
                    self.name
                ));
            }
            _ => {
                return Err(format!(
                    "digest {}: a weekly digest takes day = \"mon\" … \"sun\", a monthly one day = 1 … 28",
                    self.name
                ));
            }
        };
        let at = parse_time(&self.at).map_err(|e| format!("digest {}: {e}", self.name))?;
        let tz = match &self.timezone {
            Some(zone) => zone
                .parse()
                .map_err(|_| format!("digest {}: {zone:?} is not an IANA time zone", self.name))?,
            None => organisation_tz,
        };
        Ok(Schedule {
            name: self.name.clone(),
            period,
            day,
            at,
            tz,
        })
    }
}

impl Default for SpotlightSettings {
    fn default() -> Self {
        Self {
            http_addr: ([0, 0, 0, 0], 8082).into(),
            grpc_addr: ([0, 0, 0, 0], 9092).into(),
            headline_min_value: 1000.0,
            dashboard_refresh_seconds: 30,
            plan_chart_url: "/plan.svg".into(),
            mttr_chart_url: "/mttr.svg".into(),
            announce_max_age: std::time::Duration::from_secs(7 * 24 * 60 * 60),
            consumer: Default::default(),
            digests: vec![DigestConfig::weekly(), DigestConfig::monthly()],
            digest_check_every: std::time::Duration::from_secs(30),
            digest_lease: std::time::Duration::from_secs(60),
            digest_grace: std::time::Duration::from_secs(12 * 60 * 60),
            recognition: RecognitionSettings::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SpotlightConfig {
    pub shared: SharedConfig,
    pub spotlight: SpotlightSettings,
}

impl SpotlightConfig {
    pub fn load(loader: &ConfigLoader) -> Result<Self, ConfigError> {
        let spotlight: SpotlightSettings = loader.section("spotlight")?;
        if !(spotlight.headline_min_value.is_finite() && spotlight.headline_min_value >= 0.0) {
            return Err(ConfigError::Invalid(
                "[spotlight] headline_min_value must be zero or more".into(),
            ));
        }
        let recognition = &spotlight.recognition;
        if ![1, 2, 3, 4, 6, 12].contains(&recognition.season_months) {
            return Err(ConfigError::Invalid(format!(
                "[spotlight.recognition] season_months = {} must divide the year: 1, 2, 3, 4, 6 or 12",
                recognition.season_months
            )));
        }
        if recognition.people_shown == 0 || recognition.public_top_people == 0 {
            return Err(ConfigError::Invalid(
                "[spotlight.recognition] people_shown and public_top_people must be at least 1"
                    .into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for digest in &spotlight.digests {
            digest
                .schedule(chrono_tz::UTC)
                .map_err(|e| ConfigError::Invalid(format!("[[spotlight.digests]] {e}")))?;
            if !names.insert(digest.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "[[spotlight.digests]] name {:?} is used twice",
                    digest.name
                )));
            }
        }
        Ok(Self {
            shared: loader.shared()?,
            spotlight,
        })
    }
}
