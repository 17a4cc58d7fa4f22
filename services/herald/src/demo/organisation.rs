//! The sample organisation's people, teams and services as ServiceNow references, and the small
//! deterministic generator that picks among them: the same month every time.

use chrono::{DateTime, Duration, Utc};
use herald_catalog::{BusinessService, Catalog, Person, Team};
use serde_json::{Value, json};

/// A small deterministic generator: the same month every time.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        // Callers never pass an empty slice: the catalog is checked before generating.
        &items[usize::try_from(self.below(items.len() as u64)).unwrap_or(0)]
    }

    pub fn minutes(&mut self, from: i64, to: i64) -> Duration {
        let span = u64::try_from(to - from).unwrap_or(1);
        Duration::minutes(from + i64::try_from(self.below(span)).unwrap_or(0))
    }
}

pub fn hex_id(seed: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(seed.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

pub fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn person_ref(p: &Person) -> Value {
    let sys_id = p
        .accounts
        .get("servicenow")
        .and_then(|a| a.get("sys_id"))
        .cloned()
        .unwrap_or_default();
    json!({"value": sys_id, "display_value": p.display_name})
}

/// A person's identity in a tool (`account(p, "jira", "account_id")`), as the catalog gives it.
pub fn account(p: &Person, tool: &str, key: &str) -> Option<String> {
    p.accounts.get(tool).and_then(|a| a.get(key)).cloned()
}

pub fn user_name(p: &Person) -> String {
    p.accounts
        .get("servicenow")
        .and_then(|a| a.get("user_name"))
        .cloned()
        .unwrap_or_else(|| p.id.clone())
}

pub fn team_ref(t: &Team) -> Value {
    let sys_id = t
        .aliases
        .iter()
        .find(|a| is_sys_id(a))
        .cloned()
        .unwrap_or_else(|| t.id.clone());
    json!({"value": sys_id, "display_value": t.name})
}

pub fn service_ref(s: &BusinessService) -> Value {
    let sys_id = s
        .aliases
        .iter()
        .find(|a| is_sys_id(a))
        .cloned()
        .unwrap_or_else(|| s.id.clone());
    json!({"value": sys_id, "display_value": s.name})
}

pub fn ci_of(s: &BusinessService) -> String {
    s.aliases
        .iter()
        .find(|a| !is_sys_id(a) && a.contains('-'))
        .cloned()
        .unwrap_or_else(|| s.name.clone())
}

pub fn caller(rng: &mut Rng) -> Value {
    let first = [
        "Pieter", "Yara", "Noor", "Mateo", "Eva", "Lars", "Sanne", "Omar", "Femke", "Jules",
    ];
    let last = [
        "de Vries", "Khan", "Haddad", "Moreau", "Jansen", "Smit", "Bakker", "Visser", "Mulder",
        "Bos",
    ];
    let name = format!("{} {}", rng.pick(&first), rng.pick(&last));
    json!({"value": hex_id(&name), "display_value": name})
}

pub fn titles(service: &str) -> &'static [&'static str] {
    match service {
        "svc-warehouse" => &[
            "Pick confirmations delayed in WMS at DC Venlo",
            "Label printer queue stuck at DC Tilburg",
            "WMS report export times out",
            "RF scanner logins fail after shift change",
        ],
        "svc-shipping-portal" => &[
            "Tracking page slow for business customers",
            "Booking confirmation emails delayed",
            "Customer cannot download proof of delivery",
        ],
        "svc-erp-finance" => &[
            "Invoice run stuck in SAP Finance",
            "Payables approval workflow shows an error",
            "Month-end close job needs a restart",
        ],
        "svc-workplace" => &[
            "Outlook cannot connect for a user",
            "Laptop will not boot after an update",
            "Teams meetings drop audio",
            "Printer offline on the third floor",
        ],
        "svc-remote-access" => &[
            "VPN disconnects every few minutes",
            "MFA prompt loops on VPN login",
            "Depot Duisburg cannot reach the VPN gateway",
        ],
        "svc-fleet" => &[
            "Route plans missing for the morning shift",
            "Proof-of-delivery uploads failing from trucks",
            "Truck telemetry delayed",
        ],
        _ => &["Service degraded for users", "Users report errors"],
    }
}

pub struct Org<'a> {
    pub catalog: &'a Catalog,
    pub desk: Vec<&'a Person>,
}

impl<'a> Org<'a> {
    pub fn members(&self, team: &str) -> Vec<&'a Person> {
        let people: Vec<&Person> = self
            .catalog
            .people()
            .iter()
            .filter(|p| p.team.as_deref() == Some(team))
            .collect();
        if people.is_empty() {
            self.catalog.people().iter().collect()
        } else {
            people
        }
    }

    pub fn team(&self, id: &str) -> Option<&'a Team> {
        self.catalog.team(id)
    }
}

/// SLA target per priority, as a typical service desk sets them.
pub fn sla(priority: u32) -> Duration {
    match priority {
        1 => Duration::hours(4),
        2 => Duration::hours(8),
        3 => Duration::days(3),
        _ => Duration::days(5),
    }
}
