//! How numbers, money and dates are written for the organisation's locale, so an announcement in
//! Oslo reads `11 780 kr` and one in Munich `11.780 €` rather than everyone getting English.
//!
//! The table is written by hand on purpose. ICU4X is the complete CLDR answer but costs far more
//! compile time than this project's CI budget allows for a handful of separators; the small crates
//! looked at do not fit either (`numsep` and `num-format` only group digits; `locale-rs` is young,
//! ties the currency to the locale rather than to the organisation's ISO code, and writes whole
//! amounts as `100,-`). Herald needs fifteen locales and one currency per organisation, so a table
//! that follows CLDR where a reader would notice, with every deviation noted where it is made, is
//! smaller and easier to check than a dependency.
//!
//! Deviations from CLDR, all deliberate:
//! - Groups of digits in Norwegian, Swedish, Finnish, French and Polish are separated by U+00A0
//!   NO-BREAK SPACE. CLDR uses U+00A0 for some of them and U+202F NARROW NO-BREAK SPACE for others
//!   (French); one character everywhere renders in every chat client and e-mail font we send to
//!   and still never wraps a number across lines.
//! - Negative numbers always start with an ASCII `-` in front of everything (`-€1,234`,
//!   `-11.780 €`), where CLDR uses U+2212 MINUS SIGN for some Nordic locales: the only negative
//!   amounts Herald shows are corrections, and an ASCII minus survives every channel and search.
//! - Month names are followed by the bare year everywhere (`noviembre 2026`, not CLDR's
//!   `noviembre de 2026`), because they head reports where the short form reads best.

use std::{fmt, str::FromStr};

use chrono::{Datelike, NaiveDate};

/// Between a number and its currency symbol, and between groups of digits where a space is the
/// separator: a no-break space, so an amount is never split across two lines.
const NBSP: char = '\u{a0}';

/// A locale Herald writes in. Only these are accepted in the catalog, so a typo is refused at load
/// instead of silently falling back to English.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Locale {
    /// The default, so catalogs written before locales existed read exactly as before.
    #[default]
    EnGb,
    EnUs,
    EnIe,
    DeDe,
    DeAt,
    DeCh,
    FrFr,
    NlNl,
    NbNo,
    SvSe,
    DaDk,
    FiFi,
    EsEs,
    ItIt,
    PlPl,
}

/// A locale tag that is not one of [`Locale::ALL`]; its message lists the supported tags so the
/// person editing the catalog can pick one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("locale {tag:?} is not supported; use one of {}", supported_tags())]
pub struct UnsupportedLocale {
    /// The tag as written.
    pub tag: String,
}

fn supported_tags() -> String {
    Locale::ALL.map(Locale::tag).join(", ")
}

/// Where the currency symbol goes relative to the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// `£11,780`; a symbol that ends in a letter (`CHF`, an ISO code) gets a no-break space, as
    /// CLDR's currency spacing rule does, so it does not run into the digits.
    Before,
    /// `€ 11.780` (Dutch, Austrian and Swiss German).
    BeforeSpaced,
    /// `11.780 €`, `11 780 kr`.
    After,
}

/// The language month names are written in. Austrian German differs from German in one month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Language {
    English,
    German,
    AustrianGerman,
    Norwegian,
    French,
    Swedish,
    Danish,
    Dutch,
    Finnish,
    Spanish,
    Italian,
    Polish,
}

impl Locale {
    /// Every supported locale, in the order the refusal message lists them.
    pub const ALL: [Locale; 15] = [
        Locale::EnGb,
        Locale::EnUs,
        Locale::EnIe,
        Locale::DeDe,
        Locale::DeAt,
        Locale::DeCh,
        Locale::FrFr,
        Locale::NlNl,
        Locale::NbNo,
        Locale::SvSe,
        Locale::DaDk,
        Locale::FiFi,
        Locale::EsEs,
        Locale::ItIt,
        Locale::PlPl,
    ];

    /// The canonical BCP 47 tag, such as `nb-NO`.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::EnGb => "en-GB",
            Locale::EnUs => "en-US",
            Locale::EnIe => "en-IE",
            Locale::DeDe => "de-DE",
            Locale::DeAt => "de-AT",
            Locale::DeCh => "de-CH",
            Locale::FrFr => "fr-FR",
            Locale::NlNl => "nl-NL",
            Locale::NbNo => "nb-NO",
            Locale::SvSe => "sv-SE",
            Locale::DaDk => "da-DK",
            Locale::FiFi => "fi-FI",
            Locale::EsEs => "es-ES",
            Locale::ItIt => "it-IT",
            Locale::PlPl => "pl-PL",
        }
    }

    /// Reads a tag as people write it: case does not matter and `_` may stand for `-` (`nb_no`,
    /// as POSIX locale names are written, is `nb-NO`). Surrounding blanks are ignored.
    pub fn parse(tag: &str) -> Result<Self, UnsupportedLocale> {
        let wanted = tag.trim().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|locale| locale.tag().eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| UnsupportedLocale {
                tag: tag.to_string(),
            })
    }

    fn language(self) -> Language {
        match self {
            Locale::EnGb | Locale::EnUs | Locale::EnIe => Language::English,
            Locale::DeDe | Locale::DeCh => Language::German,
            Locale::DeAt => Language::AustrianGerman,
            Locale::FrFr => Language::French,
            Locale::NlNl => Language::Dutch,
            Locale::NbNo => Language::Norwegian,
            Locale::SvSe => Language::Swedish,
            Locale::DaDk => Language::Danish,
            Locale::FiFi => Language::Finnish,
            Locale::EsEs => Language::Spanish,
            Locale::ItIt => Language::Italian,
            Locale::PlPl => Language::Polish,
        }
    }

    /// The character between groups of three digits.
    pub fn group_separator(self) -> char {
        match self {
            Locale::EnGb | Locale::EnUs | Locale::EnIe => ',',
            // CLDR gives Austrian German a no-break space; "." is what most Austrian business
            // writing uses and matches the rest of German.
            Locale::DeDe | Locale::DeAt => '.',
            // Swiss German groups with a right single quotation mark (U+2019), as CLDR does.
            Locale::DeCh => '\u{2019}',
            Locale::NlNl | Locale::DaDk | Locale::EsEs | Locale::ItIt => '.',
            Locale::FrFr | Locale::NbNo | Locale::SvSe | Locale::FiFi | Locale::PlPl => NBSP,
        }
    }

    /// The character before the fraction.
    pub fn decimal_separator(self) -> char {
        match self {
            // Swiss German writes a decimal point, unlike the rest of German.
            Locale::EnGb | Locale::EnUs | Locale::EnIe | Locale::DeCh => '.',
            _ => ',',
        }
    }

    /// Spanish and Polish leave a four-digit number ungrouped (`1780`, but `11 780`), as CLDR's
    /// minimum grouping digits of 2 says; everyone else groups from four digits.
    fn min_grouping_digits(self) -> usize {
        match self {
            Locale::EsEs | Locale::PlPl => 2,
            _ => 1,
        }
    }

    fn placement(self) -> Placement {
        match self {
            Locale::EnGb | Locale::EnUs | Locale::EnIe => Placement::Before,
            Locale::NlNl | Locale::DeAt | Locale::DeCh => Placement::BeforeSpaced,
            _ => Placement::After,
        }
    }

    /// How an ISO 4217 currency is written in this locale: its symbol where readers of the locale
    /// recognise it without doubt, else the ISO code. `kr` is only used in the country whose krone
    /// or krona it is, since a Swede would read `kr` as Swedish kronor; `$` only in English, where
    /// it has always meant the US dollar in Herald's output.
    pub fn currency_symbol(self, code: &str) -> &str {
        match (code, self) {
            ("EUR", _) => "€",
            ("GBP", _) => "£",
            ("JPY", _) => "¥",
            ("CHF", _) => "CHF",
            ("USD", Locale::EnGb | Locale::EnUs | Locale::EnIe) => "$",
            ("USD", _) => "US$",
            ("NOK", Locale::NbNo) => "kr",
            ("SEK", Locale::SvSe) => "kr",
            ("DKK", Locale::DaDk) => "kr.",
            ("PLN", Locale::PlPl) => "zł",
            (other, _) => other,
        }
    }

    /// `value` with `decimals` digits after the locale's decimal separator and its digits grouped:
    /// `1,234.50` (en), `1.234,50` (de), `11 780,5` (nb, with no-break spaces). Halves round as
    /// Rust's formatting does. A value that rounds to zero has no minus sign.
    pub fn number(self, value: f64, decimals: usize) -> String {
        if !value.is_finite() {
            // Not a number people should see, but showing it beats inventing one.
            return value.to_string();
        }
        let text = format!("{:.*}", decimals, value.abs());
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text.as_str(), None),
        };
        let mut out = String::with_capacity(text.len() * 2);
        if value.is_sign_negative() && text.bytes().any(|b| matches!(b, b'1'..=b'9')) {
            out.push('-');
        }
        out.push_str(&self.group(whole));
        if let Some(fraction) = fraction {
            out.push(self.decimal_separator());
            out.push_str(fraction);
        }
        out
    }

    fn group(self, digits: &str) -> String {
        if digits.len() < 3 + self.min_grouping_digits() {
            return digits.to_string();
        }
        let separator = self.group_separator();
        let mut out = String::with_capacity(digits.len() * 2);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(separator);
            }
            out.push(c);
        }
        out
    }

    /// An amount in `currency` (ISO 4217) as people read it: whole units from 100 up, where cents
    /// would only be noise next to a cost estimate, and two decimals below, where they are not.
    /// `£11,780`, `11.780 €`, `11 780 kr`, `84,50 €`; negative amounts start with `-`.
    pub fn money(self, currency: &str, amount: f64) -> String {
        let number = if amount.abs() >= 100.0 {
            self.number(amount.round(), 0)
        } else {
            self.number(amount, 2)
        };
        let (sign, digits) = match number.strip_prefix('-') {
            Some(digits) => ("-", digits),
            None => ("", number.as_str()),
        };
        let symbol = self.currency_symbol(currency);
        match self.placement() {
            Placement::Before if !symbol.ends_with(char::is_alphabetic) => {
                format!("{sign}{symbol}{digits}")
            }
            Placement::Before | Placement::BeforeSpaced => {
                format!("{sign}{symbol}{NBSP}{digits}")
            }
            Placement::After => format!("{sign}{digits}{NBSP}{symbol}"),
        }
    }

    /// A day as the locale writes it in running text: `30 Nov 2026` (en-GB, en-IE),
    /// `Nov 30, 2026` (en-US), `30.11.2026`, `30/11/2026`, `30-11-2026` (nl), `2026-11-30` (sv).
    pub fn date(self, date: NaiveDate) -> String {
        let (day, month, year) = (date.day(), date.month(), date.year());
        match self {
            Locale::EnGb | Locale::EnIe => match month_in(&EN_SHORT, month) {
                Some(name) => format!("{day} {name} {year}"),
                None => date.to_string(),
            },
            Locale::EnUs => match month_in(&EN_SHORT, month) {
                Some(name) => format!("{name} {day}, {year}"),
                None => date.to_string(),
            },
            // Finnish does not pad day or month (CLDR `d.M.y`); the others below do.
            Locale::FiFi => format!("{day}.{month}.{year}"),
            Locale::DeDe
            | Locale::DeAt
            | Locale::DeCh
            | Locale::NbNo
            | Locale::DaDk
            | Locale::PlPl => format!("{day:02}.{month:02}.{year}"),
            Locale::FrFr | Locale::EsEs | Locale::ItIt => format!("{day:02}/{month:02}/{year}"),
            Locale::NlNl => format!("{day:02}-{month:02}-{year}"),
            Locale::SvSe => format!("{year}-{month:02}-{day:02}"),
        }
    }

    /// A month and year in the locale's language, for report titles: `November 2026`,
    /// `novembre 2026`, `marraskuu 2026`. Languages that write month names in lower case do so
    /// here too, and Finnish and Polish use the nominative a title needs. A month outside 1..=12
    /// is written as `2026-13` rather than guessed at.
    pub fn month_name(self, year: i32, month: u32) -> String {
        let names = match self.language() {
            Language::English => &EN,
            Language::German => &DE,
            Language::AustrianGerman => &DE_AT,
            Language::Norwegian => &NB,
            Language::French => &FR,
            Language::Swedish => &SV,
            Language::Danish => &DA,
            Language::Dutch => &NL,
            Language::Finnish => &FI,
            Language::Spanish => &ES,
            Language::Italian => &IT,
            Language::Polish => &PL,
        };
        match month_in(names, month) {
            Some(name) => format!("{name} {year}"),
            None => format!("{year}-{month:02}"),
        }
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

impl FromStr for Locale {
    type Err = UnsupportedLocale;

    fn from_str(tag: &str) -> Result<Self, Self::Err> {
        Self::parse(tag)
    }
}

/// The name of month 1..=12, or `None` for anything else.
fn month_in(names: &'static [&'static str; 12], month: u32) -> Option<&'static str> {
    let index = usize::try_from(month.checked_sub(1)?).ok()?;
    names.get(index).copied()
}

// "Sep" rather than CLDR en-GB's "Sept": one abbreviation for every English locale, as Herald has
// always written it.
const EN_SHORT: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DE: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
// Austria says "Jänner" for January (CLDR de-AT); the other months are as in Germany.
const DE_AT: [&str; 12] = [
    "Jänner",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
const NB: [&str; 12] = [
    "januar",
    "februar",
    "mars",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "desember",
];
const FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const SV: [&str; 12] = [
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
];
const DA: [&str; 12] = [
    "januar",
    "februar",
    "marts",
    "april",
    "maj",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "december",
];
const NL: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];
const FI: [&str; 12] = [
    "tammikuu",
    "helmikuu",
    "maaliskuu",
    "huhtikuu",
    "toukokuu",
    "kesäkuu",
    "heinäkuu",
    "elokuu",
    "syyskuu",
    "lokakuu",
    "marraskuu",
    "joulukuu",
];
const ES: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];
const IT: [&str; 12] = [
    "gennaio",
    "febbraio",
    "marzo",
    "aprile",
    "maggio",
    "giugno",
    "luglio",
    "agosto",
    "settembre",
    "ottobre",
    "novembre",
    "dicembre",
];
const PL: [&str; 12] = [
    "styczeń",
    "luty",
    "marzec",
    "kwiecień",
    "maj",
    "czerwiec",
    "lipiec",
    "sierpień",
    "wrzesień",
    "październik",
    "listopad",
    "grudzień",
];
