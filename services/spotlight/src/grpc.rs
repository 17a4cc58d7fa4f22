//! `herald.v1.Spotlight`: leaderboards, value summaries, and the ledger check.

use herald_catalog::CatalogHandle;
use herald_proto::{
    time::opt_from_timestamp,
    v1::{
        GetLeaderboardRequest, GetMyPositionRequest, GetRecognitionSpreadRequest,
        GetValueSummaryRequest, LabelTotal, Leaderboard, LeaderboardEntry, LedgerDifference,
        MyPosition, PeriodKind as ProtoPeriodKind, RebuildLedgerRequest, RebuildLedgerResponse,
        RecognitionSpread, Scope, ValueLabel, ValueSummary, spotlight_server::Spotlight,
    },
};
use herald_runtime::{ApiError, ErrorKind};
use tonic::{Request, Response, Status};

use crate::{
    config::RecognitionSettings,
    periods::{Period, PeriodKind},
    store::{Ranked, Store},
};

pub struct SpotlightApi {
    pub store: Store,
    /// Read per call: the catalog file may be reloaded meanwhile.
    pub catalog: CatalogHandle,
    pub recognition: RecognitionSettings,
}

fn invalid(message: &str) -> Status {
    ApiError::new(ErrorKind::Unprocessable, "invalid_argument", message).into()
}

fn internal(e: crate::store::StoreError) -> Status {
    tracing::error!(error = %e, "spotlight query failed");
    ApiError::internal("the rollups could not be read; see the spotlight logs").into()
}

impl SpotlightApi {
    fn period(&self, period: Option<herald_proto::v1::Period>) -> Result<Period, Status> {
        let period = period.unwrap_or_default();
        let kind =
            match ProtoPeriodKind::try_from(period.kind).unwrap_or(ProtoPeriodKind::Unspecified) {
                ProtoPeriodKind::Week => PeriodKind::Week,
                ProtoPeriodKind::Month => PeriodKind::Month,
                ProtoPeriodKind::Quarter => PeriodKind::Quarter,
                ProtoPeriodKind::Season => PeriodKind::Season {
                    months: self.recognition.season_months,
                },
                ProtoPeriodKind::Unspecified => {
                    return Err(invalid(
                        "period.kind must be PERIOD_KIND_WEEK, _MONTH, _QUARTER or _SEASON",
                    ));
                }
            };
        let at = match &period.at {
            Some(ts) => opt_from_timestamp(Some(ts))
                .ok_or_else(|| invalid("period.at is not a valid time"))?,
            None => chrono::Utc::now(),
        };
        Ok(Period::containing(
            kind,
            at,
            self.catalog.current().organisation().tz(),
        ))
    }

    fn entry(&self, scope: Scope, rank: usize, row: Ranked) -> LeaderboardEntry {
        let (id, display_name, anonymised) = match scope {
            Scope::Person => {
                let name = self.catalog.current().public_name(&row.subject_id);
                // Someone who opted out is shown by team only, and their id is withheld too.
                let id = if name.anonymised {
                    String::new()
                } else {
                    row.subject_id.clone()
                };
                (id, name.name, name.anonymised)
            }
            Scope::Team => (
                row.subject_id.clone(),
                self.catalog
                    .current()
                    .team_name(&row.subject_id)
                    .to_string(),
                false,
            ),
            _ => (
                row.subject_id.clone(),
                self.catalog
                    .current()
                    .service_name(&row.subject_id)
                    .to_string(),
                false,
            ),
        };
        let value_withheld = scope == Scope::Person && !self.recognition.people_money;
        LeaderboardEntry {
            rank: u32::try_from(rank + 1).unwrap_or(u32::MAX),
            id,
            display_name,
            value: if value_withheld { 0.0 } else { row.value },
            value_withheld,
            hours: row.hours,
            wins: u32::try_from(row.wins).unwrap_or(u32::MAX),
            anonymised,
        }
    }
}

fn scope_token(scope: Scope) -> Option<&'static str> {
    match scope {
        Scope::Person => Some("person"),
        Scope::Team => Some("team"),
        Scope::Service => Some("service"),
        Scope::Unspecified => None,
    }
}

#[tonic::async_trait]
impl Spotlight for SpotlightApi {
    async fn get_leaderboard(
        &self,
        request: Request<GetLeaderboardRequest>,
    ) -> Result<Response<Leaderboard>, Status> {
        let request = request.into_inner();
        let period = self.period(request.period)?;
        let scope = Scope::try_from(request.scope).unwrap_or(Scope::Unspecified);
        let token = scope_token(scope)
            .ok_or_else(|| invalid("scope must be SCOPE_PERSON, SCOPE_TEAM or SCOPE_SERVICE"))?;
        let limit = match request.limit {
            0 => 10,
            n => n.min(100),
        };
        // Public leaderboards of people stop at the top few: nobody is shown at the bottom.
        let limit = if scope == Scope::Person {
            limit.min(self.recognition.public_top_people)
        } else {
            limit
        };
        let by = if scope == Scope::Person {
            self.recognition.people_rank_by()
        } else {
            crate::store::rankings::RankBy::Value
        };
        let rows = self
            .store
            .ranking(&period, token, by, i64::from(limit))
            .await
            .map_err(internal)?;
        Ok(Response::new(Leaderboard {
            period_start: period.start.to_string(),
            period_end: period.end.to_string(),
            scope: scope as i32,
            currency: self.catalog.current().organisation().currency.clone(),
            entries: rows
                .into_iter()
                .enumerate()
                .map(|(i, r)| self.entry(scope, i, r))
                .collect(),
        }))
    }

    async fn get_value_summary(
        &self,
        request: Request<GetValueSummaryRequest>,
    ) -> Result<Response<ValueSummary>, Status> {
        let period = self.period(request.into_inner().period)?;
        let totals = self.store.totals(&period).await.map_err(internal)?;
        let services = self
            .store
            .leaderboard(&period, "service", 5)
            .await
            .map_err(internal)?;
        Ok(Response::new(ValueSummary {
            period_start: period.start.to_string(),
            period_end: period.end.to_string(),
            currency: self.catalog.current().organisation().currency.clone(),
            total_value: totals.iter().map(|t| t.value).sum(),
            hours_given_back: totals.iter().map(|t| t.hours).sum(),
            users_unblocked: totals.iter().map(|t| t.users).sum(),
            wins: u32::try_from(totals.iter().map(|t| t.wins).sum::<i64>()).unwrap_or(u32::MAX),
            by_label: totals
                .iter()
                .map(|t| LabelTotal {
                    label: ValueLabel::from_token(&t.label).unwrap_or(ValueLabel::Unspecified)
                        as i32,
                    amount: t.value,
                })
                .collect(),
            top_services: services
                .into_iter()
                .enumerate()
                .map(|(i, r)| self.entry(Scope::Service, i, r))
                .collect(),
        }))
    }

    async fn get_my_position(
        &self,
        request: Request<GetMyPositionRequest>,
    ) -> Result<Response<MyPosition>, Status> {
        let request = request.into_inner();
        let period = self.period(request.period)?;
        let catalog = self.catalog.current();
        let person = catalog
            .person(&request.person_id)
            .ok_or_else(|| {
                Status::not_found(format!("no person {:?} in the catalog", request.person_id))
            })?
            .clone();
        let position = self
            .store
            .position(
                &period,
                "person",
                self.recognition.people_rank_by(),
                &person.id,
            )
            .await
            .map_err(internal)?;
        let in_spotlight = match &position {
            Some(_) => {
                crate::selection::spotlight(&self.store, &catalog, &self.recognition, &period)
                    .await
                    .map_err(internal)?
                    .iter()
                    .any(|p| p.figures.subject_id == person.id)
            }
            None => false,
        };
        let mut answer = MyPosition {
            period_start: period.start.to_string(),
            period_end: period.end.to_string(),
            display_name: person.display_name.clone(),
            currency: catalog.organisation().currency.clone(),
            in_spotlight,
            ..Default::default()
        };
        if let Some(p) = position {
            answer.credited = true;
            answer.rank = u32::try_from(p.rank).unwrap_or(u32::MAX);
            answer.of = u32::try_from(p.of).unwrap_or(u32::MAX);
            answer.wins = u32::try_from(p.figures.wins).unwrap_or(u32::MAX);
            answer.hours = p.figures.hours;
            answer.value = p.figures.value;
        }
        Ok(Response::new(answer))
    }

    async fn get_recognition_spread(
        &self,
        request: Request<GetRecognitionSpreadRequest>,
    ) -> Result<Response<RecognitionSpread>, Status> {
        let period = self.period(request.into_inner().period)?;
        let catalog = self.catalog.current();
        let spread = crate::recognition::spread(
            &self.store,
            &catalog,
            &period,
            self.recognition.unrecognised_weeks,
            chrono::Utc::now(),
        )
        .await
        .map_err(internal)?;
        Ok(Response::new(spread))
    }

    async fn rebuild_ledger(
        &self,
        request: Request<RebuildLedgerRequest>,
    ) -> Result<Response<RebuildLedgerResponse>, Status> {
        let repair = request.into_inner().repair;
        let report = self
            .store
            .rebuild(self.catalog.current().organisation().tz(), repair)
            .await
            .map_err(internal)?;
        if !report.differences.is_empty() {
            tracing::warn!(
                differences = report.differences.len(),
                repaired = report.repaired,
                "live figures differ from the ledger"
            );
        }
        Ok(Response::new(RebuildLedgerResponse {
            entries: report.entries,
            rows_checked: report.rows_checked,
            differences: report
                .differences
                .into_iter()
                .map(|d| LedgerDifference {
                    row: d.row,
                    field: d.field.to_string(),
                    live: d.live as f64,
                    rebuilt: d.rebuilt as f64,
                })
                .collect(),
            repaired: report.repaired,
        }))
    }
}
