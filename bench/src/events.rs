//! Signed ServiceNow incident resolutions, as the Business Rule sends them: the P1 fixture as the
//! template (6 KB, about the size of a real one), each event with its own record number and sys_id,
//! resolved a minute ago so it is news. Spread like a real organisation (every business service,
//! team and person of the demo catalog in turn), or the worst case (every event crediting the same
//! service, team and person, so every write lands on the same rollup rows).

use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

/// The secret `[sources.servicenow]` is configured with in every benchmarked Herald.
pub const SECRET: &str = "herald-bench-secret";

/// Record numbers the sink recognises: `INCB` and seven digits, the event's index.
pub const PREFIX: &str = "INCB";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    Organisation,
    WorstCase,
}

/// A record of the catalog as ServiceNow names it: its sys_id and its display value.
#[derive(Debug, Clone)]
pub(crate) struct Ref {
    pub(crate) sys_id: String,
    pub(crate) name: String,
}

/// Who an event is about: a business service, the team that owns it and that team's people.
#[derive(Debug, Clone)]
pub(crate) struct Cast {
    pub(crate) service: Ref,
    pub(crate) team: Ref,
    pub(crate) people: Vec<Ref>,
    /// The service's usual restore time per priority, the baseline an outage is measured against
    /// where the catalog gives one.
    pub(crate) typical_restore: Option<herald_catalog::TypicalRestore>,
}

pub struct Generator {
    template: Value,
    casts: Vec<Cast>,
    spread: Spread,
}

fn hex32(text: &str) -> bool {
    text.len() == 32 && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// Every business service of the demo catalog that ServiceNow can name (a sys_id alias), with its
/// team and that team's ServiceNow accounts: the organisation the generated events spread over.
pub(crate) fn casts() -> anyhow::Result<Vec<Cast>> {
    let root = herald_testkit::repo_root();
    let catalog = herald_catalog::Catalog::from_file(&root.join("deploy/catalog.toml"))?;
    let mut casts = Vec::new();
    for service in catalog.services() {
        let Some(sys_id) = service.aliases.iter().find(|a| hex32(a)) else {
            continue;
        };
        let Some(team) = service.team.as_deref().and_then(|t| catalog.team(t)) else {
            continue;
        };
        let Some(team_id) = team.aliases.iter().find(|a| hex32(a)) else {
            continue;
        };
        let people: Vec<Ref> = catalog
            .people()
            .iter()
            .filter(|p| p.team.as_deref() == Some(team.id.as_str()))
            .filter_map(|p| {
                Some(Ref {
                    sys_id: p.accounts.get("servicenow")?.get("sys_id")?.clone(),
                    name: p.display_name.clone(),
                })
            })
            .collect();
        if people.is_empty() {
            continue;
        }
        casts.push(Cast {
            service: Ref {
                sys_id: sys_id.clone(),
                name: service.name.clone(),
            },
            team: Ref {
                sys_id: team_id.clone(),
                name: team.name.clone(),
            },
            people,
            typical_restore: service.typical_restore_minutes.clone(),
        });
    }
    anyhow::ensure!(
        !casts.is_empty(),
        "the demo catalog gives no ServiceNow cast"
    );
    Ok(casts)
}

impl Generator {
    pub fn new(spread: Spread) -> anyhow::Result<Self> {
        let root = herald_testkit::repo_root();
        let template: Value = serde_json::from_slice(
            &std::fs::read(root.join("tests/fixtures/servicenow/incident-resolved-p1.json"))
                .context("the P1 fixture is the events' template")?,
        )?;
        Ok(Self {
            template,
            casts: casts()?,
            spread,
        })
    }

    /// Event `index`, its body and its signature header value.
    pub fn event(&self, index: u64) -> anyhow::Result<(Bytes, String)> {
        let mut body = self.template.clone();
        let (cast, person) = match self.spread {
            Spread::WorstCase => (&self.casts[0], &self.casts[0].people[0]),
            Spread::Organisation => {
                let cast = &self.casts[(index as usize) % self.casts.len()];
                let person = &cast.people[(index as usize / self.casts.len()) % cast.people.len()];
                (cast, person)
            }
        };
        let now = chrono::Utc::now();
        let at = |minutes_ago: i64| {
            (now - chrono::Duration::minutes(minutes_ago))
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        };
        let reference = |r: &Ref| json!({"display_value": r.name, "value": r.sys_id});
        body["sys_id"] = json!(format!("bench{index:027}"));
        let record = body
            .get_mut("record")
            .context("the template has a record")?;
        record["number"] = json!(format!("{PREFIX}{index:07}"));
        record["opened_at"] = json!(at(70));
        record["resolved_at"] = json!(at(1));
        record["sys_created_on"] = json!(at(70));
        record["sys_updated_on"] = json!(at(1));
        record["sla_due"] = json!(at(-170));
        record["business_service"] = reference(&cast.service);
        record["assignment_group"] = reference(&cast.team);
        record["assigned_to"] = reference(person);
        record["resolved_by"] = reference(person);
        let bytes = Bytes::from(serde_json::to_vec(&body)?);
        Ok((bytes.clone(), sign(&bytes)))
    }
}

impl Generator {
    /// Event `index` as one Prometheus alert (`POST /api/v2/alerts` takes a list): the same
    /// record number, service, team and title, for the side-by-side run against Alertmanager.
    pub fn alert(&self, index: u64) -> anyhow::Result<Bytes> {
        let cast = match self.spread {
            Spread::WorstCase => &self.casts[0],
            Spread::Organisation => &self.casts[(index as usize) % self.casts.len()],
        };
        let record = &self.template["record"];
        let alert = json!([{
            "labels": {
                "alertname": "IncidentResolved",
                "number": format!("{PREFIX}{index:07}"),
                "service": cast.service.name,
                "team": cast.team.name,
                "priority": record["priority"],
            },
            "annotations": {
                "summary": record["short_description"],
                "description": record["close_notes"],
            },
            "startsAt": chrono::Utc::now().to_rfc3339(),
        }]);
        Ok(Bytes::from(serde_json::to_vec(&alert)?))
    }
}

/// `sha256=<Base64 HMAC-SHA256>` under [`SECRET`]: ServiceNow's signature as Herald checks it.
pub fn sign(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(body);
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// The event index a delivered body is about, from its record number.
pub fn index_in(body: &[u8]) -> Option<u64> {
    let prefix = PREFIX.as_bytes();
    let at = body.windows(prefix.len()).position(|w| w == prefix)? + prefix.len();
    let digits = body.get(at..at + 7)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}
