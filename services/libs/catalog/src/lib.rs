//! The organisation as Herald knows it: business services with the numbers value is computed from,
//! teams, people with their accounts in each tool, and the system accounts that are never people.
//!
//! Matching is exact and case-insensitive against ids, names and aliases; never by substring. A name
//! that matches nothing is simply unknown: callers must not invent a value then.

mod handle;
mod locale;
mod model;
mod validate;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

pub use handle::{CatalogHandle, Changes, RELOAD_EVERY, Refused, Reload};

pub use locale::{Locale, UnsupportedLocale};

pub use model::{
    BusinessService, LessonsPolicy, Organisation, Person, SpotlightPolicy, Team, TypicalRestore,
    thousands,
};

/// Why a catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog is not valid TOML: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("could not read catalog file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog is inconsistent: {0}")]
    Invalid(String),
}

/// The raw shape of a catalog file (the `catalog.toml` of the fixtures, or `[catalog]` in herald.toml).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSpec {
    #[serde(default)]
    pub organisation: Organisation,
    #[serde(default)]
    pub services: Vec<BusinessService>,
    #[serde(default)]
    pub teams: Vec<Team>,
    #[serde(default)]
    pub people: Vec<Person>,
    /// Per source, the account values that belong to integrations, monitoring or automation.
    #[serde(default)]
    pub system_accounts: HashMap<String, Vec<String>>,
}

/// A validated catalog with its lookup indexes.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    spec: CatalogSpec,
    service_keys: HashMap<String, usize>,
    team_keys: HashMap<String, usize>,
    /// (source, account value) → person index.
    person_accounts: HashMap<(String, String), usize>,
    person_emails: HashMap<String, usize>,
    person_display_names: HashMap<String, usize>,
    person_ids: HashMap<String, usize>,
    system_accounts: HashMap<String, Vec<String>>,
    /// A short, stable name for this catalog's content (see [`Catalog::version`]).
    version: String,
    /// The file it was read from, which a [`CatalogHandle`] watches.
    source: Option<PathBuf>,
}

/// The first 12 hex digits of the SHA-256 of a catalog's bytes: equal files, equal versions.
pub fn version_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    hex::encode(&digest[..6])
}

fn key(value: &str) -> String {
    value.trim().to_lowercase()
}

impl Catalog {
    /// Parses and validates a catalog written in TOML.
    /// Its version is that of the text.
    pub fn from_toml_str(text: &str) -> Result<Self, CatalogError> {
        let spec: CatalogSpec = toml::from_str(text)?;
        let mut catalog = Self::from_spec(spec)?;
        catalog.version = version_of(text.as_bytes());
        Ok(catalog)
    }

    /// Reads, parses and validates a catalog file; it remembers the file, so a [`CatalogHandle`]
    /// can reload it when it changes.
    pub fn from_file(path: &Path) -> Result<Self, CatalogError> {
        let bytes = std::fs::read(path).map_err(|source| CatalogError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_file_bytes(path, &bytes)
    }

    /// A catalog from bytes read from `path` (which is only remembered, not read).
    pub fn from_file_bytes(path: &Path, bytes: &[u8]) -> Result<Self, CatalogError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            CatalogError::Invalid(format!("{} is not UTF-8 text: {e}", path.display()))
        })?;
        let mut catalog = Self::from_toml_str(text)?;
        catalog.source = Some(path.to_path_buf());
        Ok(catalog)
    }

    /// A short, stable name for the catalog's content: the first 12 hex digits of the SHA-256 of
    /// the file (or text) it was read from, so every win can say which catalog valued it. Empty
    /// for a catalog written inline in herald.toml or built in code.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The file this catalog was read from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Validates a catalog and builds its indexes.
    pub fn from_spec(spec: CatalogSpec) -> Result<Self, CatalogError> {
        validate::check(&spec)?;
        let mut catalog = Catalog::default();
        for (i, service) in spec.services.iter().enumerate() {
            for name in service.match_keys() {
                catalog.service_keys.insert(key(name), i);
            }
        }
        for (i, team) in spec.teams.iter().enumerate() {
            for name in team.match_keys() {
                catalog.team_keys.insert(key(name), i);
            }
        }
        for (i, person) in spec.people.iter().enumerate() {
            catalog.person_ids.insert(person.id.clone(), i);
            if let Some(email) = &person.email {
                catalog.person_emails.insert(key(email), i);
            }
            catalog
                .person_display_names
                .insert(key(&person.display_name), i);
            for (source, values) in &person.accounts {
                for value in values.values() {
                    catalog
                        .person_accounts
                        .insert((source.clone(), key(value)), i);
                }
            }
        }
        catalog.system_accounts = spec
            .system_accounts
            .iter()
            .map(|(source, values)| (source.clone(), values.iter().map(|v| key(v)).collect()))
            .collect();
        catalog.spec = spec;
        Ok(catalog)
    }

    pub fn organisation(&self) -> &Organisation {
        &self.spec.organisation
    }

    pub fn services(&self) -> &[BusinessService] {
        &self.spec.services
    }

    pub fn teams(&self) -> &[Team] {
        &self.spec.teams
    }

    pub fn people(&self) -> &[Person] {
        &self.spec.people
    }

    pub fn is_empty(&self) -> bool {
        self.spec.services.is_empty() && self.spec.teams.is_empty() && self.spec.people.is_empty()
    }

    /// The first candidate that names a service (by id, name or alias) wins.
    pub fn match_service<'a>(
        &self,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Option<&BusinessService> {
        candidates
            .into_iter()
            .find_map(|c| self.service_keys.get(&key(c)))
            .map(|&i| &self.spec.services[i])
    }

    /// The team named by id, name or alias.
    pub fn match_team(&self, value: &str) -> Option<&Team> {
        self.team_keys
            .get(&key(value))
            .map(|&i| &self.spec.teams[i])
    }

    /// The person behind an account value of a source (`servicenow`, `jira`, …), then by e-mail.
    pub fn match_person(&self, source: &str, value: &str) -> Option<&Person> {
        let k = key(value);
        if k.is_empty() {
            return None;
        }
        self.person_accounts
            .get(&(source.to_string(), k.clone()))
            .or_else(|| self.person_emails.get(&k))
            .map(|&i| &self.spec.people[i])
    }

    /// The person with this display name (only for sources that give nothing better).
    pub fn match_person_by_display_name(&self, value: &str) -> Option<&Person> {
        self.person_display_names
            .get(&key(value))
            .map(|&i| &self.spec.people[i])
    }

    /// Whether an account value of a source belongs to a system account rather than a person.
    pub fn is_system_account(&self, source: &str, value: &str) -> bool {
        let k = key(value);
        self.system_accounts
            .get(source)
            .is_some_and(|values| values.contains(&k))
    }

    pub fn service(&self, id: &str) -> Option<&BusinessService> {
        self.spec.services.iter().find(|s| s.id == id)
    }

    pub fn team(&self, id: &str) -> Option<&Team> {
        self.spec.teams.iter().find(|t| t.id == id)
    }

    pub fn person(&self, id: &str) -> Option<&Person> {
        self.person_ids.get(id).map(|&i| &self.spec.people[i])
    }

    /// How a person may be named in public: their display name, or "a member of <team>" when they
    /// opted out of spotlights. Unknown ids are shown as given.
    pub fn public_name(&self, person_id: &str) -> PublicName {
        match self.person(person_id) {
            Some(person) if person.spotlight == SpotlightPolicy::OptOut => {
                let team = person
                    .team
                    .as_deref()
                    .and_then(|t| self.team(t))
                    .map(|t| t.name.as_str())
                    .unwrap_or("the team");
                PublicName {
                    name: format!("a member of {team}"),
                    anonymised: true,
                }
            }
            Some(person) => PublicName {
                name: person.display_name.clone(),
                anonymised: false,
            },
            None => PublicName {
                name: person_id.to_string(),
                anonymised: false,
            },
        }
    }

    /// A team's display name, or the id when the team is unknown.
    pub fn team_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.team(id).map(|t| t.name.as_str()).unwrap_or(id)
    }

    /// A service's display name, or the id when the service is unknown.
    pub fn service_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.service(id).map(|s| s.name.as_str()).unwrap_or(id)
    }
}

/// A name fit for announcements, digests and leaderboards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicName {
    pub name: String,
    pub anonymised: bool,
}

#[cfg(test)]
mod tests;
