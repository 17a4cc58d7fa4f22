//! What one win adds to the figures, in whole units: cents of money, thousandths of an hour, whole
//! people. Counting a win adds these rows; withdrawing it subtracts the very same rows, so every
//! total comes back exactly; rebuilding sums them again from the wins still counted.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use herald_proto::v1::{CreditSubject, ValueLabel, Win};
use sqlx::{Row, any::AnyRow};

use crate::periods::{Period, PeriodKind};

/// One rollup row's share of a win: a person, team or business service in one period.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    pub period: &'static str,
    pub period_start: String,
    pub scope: &'static str,
    pub subject_id: String,
}

/// One totals row's share of a win: a value label in one period.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TotalKey {
    pub period: &'static str,
    pub period_start: String,
    pub label: &'static str,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amounts {
    pub value_cents: i64,
    pub hours_milli: i64,
    pub people: i64,
    pub wins: i64,
}

impl Amounts {
    pub fn add(&mut self, other: Amounts, sign: i64) {
        self.value_cents += sign * other.value_cents;
        self.hours_milli += sign * other.hours_milli;
        self.people += sign * other.people;
        self.wins += sign * other.wins;
    }

    /// The amounts of a rollup row (no `people` column: 0) or of a totals row, as stored, in a
    /// live table or among the deltas.
    pub fn from_row(row: &AnyRow, with_people: bool) -> Result<Self, sqlx::Error> {
        Ok(Self {
            value_cents: row.try_get("value_cents")?,
            hours_milli: row.try_get("hours_milli")?,
            people: if with_people {
                row.try_get("people")?
            } else {
                0
            },
            wins: row.try_get("wins")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contributions {
    pub rollups: Vec<(RollupKey, Amounts)>,
    pub totals: Vec<(TotalKey, Amounts)>,
}

pub fn cents(amount: f64) -> i64 {
    (amount * 100.0).round() as i64
}

pub fn milli(hours: f64) -> i64 {
    (hours * 1000.0).round() as i64
}

pub fn label_token(win: &Win) -> &'static str {
    let label = win.value.as_ref().map(|v| v.label).unwrap_or_default();
    ValueLabel::try_from(label)
        .map(|l| l.token())
        .unwrap_or("unspecified")
}

/// Everything `win` adds, for the weeks and months that contain `occurred_at` in `tz`.
pub fn of(win: &Win, occurred_at: DateTime<Utc>, tz: Tz) -> Contributions {
    let value = win.value.clone().unwrap_or_default();
    let mut out = Contributions::default();
    for kind in PeriodKind::ROLLED_UP {
        let period = Period::containing(kind, occurred_at, tz);
        let key = |scope: &'static str, subject: &str| RollupKey {
            period: kind.token(),
            period_start: period.start.to_string(),
            scope,
            subject_id: subject.to_string(),
        };
        for credit in &win.credits {
            let scope = if credit.subject == CreditSubject::Team as i32 {
                "team"
            } else {
                "person"
            };
            out.rollups.push((
                key(scope, &credit.id),
                Amounts {
                    value_cents: cents(credit.amount),
                    hours_milli: milli(value.hours * credit.share),
                    people: 0,
                    wins: 1,
                },
            ));
        }
        if let Some(service) = &win.business_service {
            out.rollups.push((
                key("service", service),
                Amounts {
                    value_cents: cents(value.amount),
                    hours_milli: milli(value.hours),
                    people: 0,
                    wins: 1,
                },
            ));
        }
        out.totals.push((
            TotalKey {
                period: kind.token(),
                period_start: period.start.to_string(),
                label: label_token(win),
            },
            Amounts {
                value_cents: cents(value.amount),
                hours_milli: milli(value.hours),
                people: value.users.round() as i64,
                wins: 1,
            },
        ));
    }
    out
}
