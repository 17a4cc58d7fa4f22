//! The catalog's entries, as written in TOML.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::locale::Locale;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    #[serde(default = "default_org_name")]
    pub name: String,
    /// ISO 4217 code; every amount Herald shows is in this currency.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// IANA zone; weeks and months are cut in it.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// BCP 47 tag of the locale amounts, numbers and dates are written in:
    /// `locale = "nb-NO"` under `[organisation]` gives `11 780 kr` and `30.11.2026`. Defaults to
    /// `"en-GB"`, which writes exactly what Herald wrote before locales existed (`€216,475`).
    /// Case does not matter and `_` may stand for `-` (`"nb_no"`). Only the tags in
    /// [`Locale::ALL`] are accepted (en-GB, en-US, en-IE, de-DE, de-AT, de-CH, fr-FR, nl-NL,
    /// nb-NO, sv-SE, da-DK, fi-FI, es-ES, it-IT, pl-PL); any other is refused when the catalog
    /// loads, naming them, rather than silently shown in English.
    #[serde(default = "default_locale")]
    pub locale: String,
}

impl Default for Organisation {
    fn default() -> Self {
        Self {
            name: default_org_name(),
            currency: default_currency(),
            timezone: default_timezone(),
            locale: default_locale(),
        }
    }
}

fn default_org_name() -> String {
    "Our organisation".to_string()
}

fn default_currency() -> String {
    "EUR".to_string()
}

fn default_timezone() -> String {
    "UTC".to_string()
}

fn default_locale() -> String {
    Locale::default().tag().to_string()
}

impl Organisation {
    /// The organisation's time zone. Validated when the catalog loads, so this cannot fail afterwards.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::UTC)
    }

    /// The organisation's locale. Validated when the catalog loads, so the fallback to en-GB only
    /// applies to an `Organisation` built in code with an unsupported tag.
    pub fn locale(&self) -> Locale {
        Locale::parse(&self.locale).unwrap_or_default()
    }

    /// An amount in the organisation's currency as its people read it: whole units from 100 up,
    /// two decimals below. `€216,475` and `€84.50` in en-GB (the default), `11.780 €` and
    /// `84,50 €` in de-DE, `11 780 kr` in nb-NO (no-break spaces); negative amounts start with
    /// `-` (`-€1,234`).
    pub fn money(&self, amount: f64) -> String {
        self.locale().money(&self.currency, amount)
    }

    /// A number with `decimals` digits after the locale's decimal separator, digits grouped:
    /// `1,234.5` in en-GB, `1.234,5` in de-DE.
    pub fn number(&self, value: f64, decimals: usize) -> String {
        self.locale().number(value, decimals)
    }

    /// A day as the organisation's locale writes it: `30 Nov 2026` (en-GB), `Nov 30, 2026`
    /// (en-US), `30.11.2026` (de-DE), `2026-11-30` (sv-SE).
    pub fn date(&self, date: chrono::NaiveDate) -> String {
        self.locale().date(date)
    }

    /// A month and year in the locale's language, for report titles: `November 2026` (en-GB),
    /// `november 2026` (nb-NO), `marraskuu 2026` (fi-FI).
    pub fn month_name(&self, year: i32, month: u32) -> String {
        self.locale().month_name(year, month)
    }

    /// The currency symbol for amounts in text, or the code followed by a space, always English
    /// style whatever the locale: kept for callers that build their own strings; prefer
    /// [`Organisation::money`], which follows the locale.
    pub fn currency_prefix(&self) -> String {
        match self.currency.as_str() {
            "EUR" => "€".to_string(),
            "USD" => "$".to_string(),
            "GBP" => "£".to_string(),
            "JPY" => "¥".to_string(),
            other => format!("{other} "),
        }
    }
}

/// Typical time to restore a service, per priority, from the organisation's own history. When known,
/// it is the baseline an outage is measured against; otherwise the SLA target is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypicalRestore {
    pub p1: Option<f64>,
    pub p2: Option<f64>,
    pub p3: Option<f64>,
    pub p4: Option<f64>,
    pub p5: Option<f64>,
}

impl TypicalRestore {
    /// Minutes for a priority (1 highest).
    pub fn minutes(&self, priority: u32) -> Option<f64> {
        match priority {
            1 => self.p1,
            2 => self.p2,
            3 => self.p3,
            4 => self.p4,
            5 => self.p5,
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessService {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub capability: Option<String>,
    /// The owning team's id.
    #[serde(default)]
    pub team: Option<String>,
    /// People whose work depends on the service.
    pub users: u32,
    /// Share of that work that stops while the service is down, 0..1.
    pub blocked_share: f64,
    /// Fully loaded cost of one of their hours, in the organisation's currency.
    pub loaded_hourly_rate: f64,
    /// Only where downtime really stops revenue.
    #[serde(default)]
    pub revenue_per_hour: Option<f64>,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Typical restore time in minutes per priority (`p1` … `p5`).
    #[serde(default)]
    pub typical_restore_minutes: Option<TypicalRestore>,
    /// Share of changes to this service that fail, 0..1, from the organisation's own change
    /// history. Only with it does a quiet change carry a money figure (labelled `estimate`).
    #[serde(default)]
    pub change_failure_rate: Option<f64>,
    /// What one incident on this service costs on average, in the organisation's currency, from
    /// its own history. Prices the incidents a closed problem no longer causes.
    #[serde(default)]
    pub cost_per_incident: Option<f64>,
}

impl BusinessService {
    /// The typical length of an outage of this service in minutes: the typical P1 restore time,
    /// else the P2 one. A failed change is priced as one such outage.
    pub fn typical_outage_minutes(&self) -> Option<(u32, f64)> {
        let typical = self.typical_restore_minutes.as_ref()?;
        typical
            .p1
            .map(|m| (1, m))
            .or_else(|| typical.p2.map(|m| (2, m)))
    }
}

impl BusinessService {
    pub(crate) fn match_keys(&self) -> impl Iterator<Item = &str> {
        [self.id.as_str(), self.name.as_str()]
            .into_iter()
            .chain(self.aliases.iter().map(String::as_str))
    }
}

/// Whether blameless lesson-learned stories about the team's failed changes may be published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LessonsPolicy {
    #[default]
    OptIn,
    OptOut,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub lessons: LessonsPolicy,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The person (catalog id) nudged when a member has gone unrecognised.
    #[serde(default)]
    pub lead: Option<String>,
}

impl Team {
    pub(crate) fn match_keys(&self) -> impl Iterator<Item = &str> {
        [self.id.as_str(), self.name.as_str()]
            .into_iter()
            .chain(self.aliases.iter().map(String::as_str))
    }
}

/// Whether a person may be named in announcements, digests and leaderboards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpotlightPolicy {
    #[default]
    OptIn,
    OptOut,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    /// What the person does ("service desk", "network engineer"): recognition spread is shown per
    /// role as well as per team.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub spotlight: SpotlightPolicy,
    /// Per source, the values that identify the person there (`sys_id`, `user_name`, `login`, …).
    #[serde(default)]
    pub accounts: HashMap<String, BTreeMap<String, String>>,
}

/// A whole number with thousands separators: `2,040`, `-1,234`.
pub fn thousands(whole: f64) -> String {
    // Callers round first, so the cast only drops a zero fraction; amounts are far below i64's range.
    let n = whole as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}
