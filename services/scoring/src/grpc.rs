//! `herald.v1.Scoring`: look up a win and explain its number. A win is found by its id, by the id
//! of the event it came from, or by the number of the record it is about (a ticket number).

use std::pin::Pin;

use futures::Stream;
use herald_catalog::{Catalog, CatalogHandle};
use herald_proto::v1::{
    ExplainMatch, ExplainRequest, Explanation, GetWinRequest, ListWinsRequest, ListWinsResponse,
    MonthlyReportDocument, MonthlyReportRequest, RescorePage, RescoreReply, RescoreRequest, Win,
    WinStatus, rescore_reply::Item, scoring_server::Scoring,
};
use herald_runtime::{ApiError, ErrorKind};
use tonic::{Request, Response, Status};

use crate::{
    config::ScoringSettings,
    explain, report, rescore, score,
    store::{Store, StoreError},
    verification,
};

pub struct ScoringApi {
    pub store: Store,
    /// Read once per call: the catalog file may be reloaded meanwhile.
    pub catalog: CatalogHandle,
    /// What `Rescore` replays events with, as the stage scores them.
    pub settings: ScoringSettings,
}

type RescoreStream = Pin<Box<dyn Stream<Item = Result<RescoreReply, Status>> + Send>>;

fn internal(e: StoreError) -> Status {
    tracing::error!(error = %e, "scoring query failed");
    ApiError::internal("the win could not be read; see the scoring logs").into()
}

/// A win found for an id, and how.
struct Found {
    win: Win,
    matched: ExplainMatch,
    /// Every win of the record, newest first, when the id was a record number with several.
    record_wins: Vec<Win>,
}

impl ScoringApi {
    /// Looks `id` up as a win id, then an event id, then a record number. NotFound says what was
    /// searched, or why the event or record earned nothing.
    async fn find(&self, id: &str) -> Result<Found, Status> {
        let found = |win, matched| Found {
            win,
            matched,
            record_wins: Vec::new(),
        };
        if let Some(win) = self.store.win(id).await.map_err(internal)? {
            return Ok(found(win, ExplainMatch::Win));
        }
        if let Some(outcome) = self.store.event_outcome(id).await.map_err(internal)? {
            return match outcome.win {
                Some(win) => Ok(found(win, ExplainMatch::Event)),
                None => Err(ApiError::not_found(format!(
                    "event {id} earned no win: {}",
                    outcome.note.unwrap_or(outcome.outcome)
                ))
                .into()),
            };
        }
        let mut wins = self.store.wins_of_record(id).await.map_err(internal)?;
        if wins.is_empty() {
            return Err(self.record_without_win(id).await);
        }
        let win = wins.remove(0);
        let record_wins = if wins.is_empty() {
            Vec::new()
        } else {
            std::iter::once(win.clone()).chain(wins).collect()
        };
        Ok(Found {
            win,
            matched: ExplainMatch::Record,
            record_wins,
        })
    }

    /// NotFound for an id that is no win and no event: what the record's newest event became, or
    /// what was searched.
    async fn record_without_win(&self, id: &str) -> Status {
        match self.store.latest_event_of_record(id).await {
            Err(e) => internal(e),
            Ok(Some((event_id, outcome))) => ApiError::not_found(format!(
                "record {id} has no win: its newest event {event_id} earned none ({})",
                outcome.note.unwrap_or(outcome.outcome)
            ))
            .into(),
            Ok(None) => ApiError::not_found(format!(
                "no win for {id:?}: searched win ids, event ids and record numbers (ticket numbers \
                 such as INC0050105); scoring has not seen it"
            ))
            .into(),
        }
    }
}

#[tonic::async_trait]
impl Scoring for ScoringApi {
    async fn get_win(&self, request: Request<GetWinRequest>) -> Result<Response<Win>, Status> {
        let id = request.into_inner().win_id;
        Ok(Response::new(self.find(&id).await?.win))
    }

    async fn explain(
        &self,
        request: Request<ExplainRequest>,
    ) -> Result<Response<Explanation>, Status> {
        let id = request.into_inner().id;
        let found = self.find(id.trim()).await?;
        let ledger = self
            .store
            .ledger_of(&found.win.id)
            .await
            .map_err(internal)?;
        let mut text = explain::explain(&found.win, &self.catalog.current());
        text.push_str(&verification::describe(
            &found.win,
            &ledger,
            chrono::Utc::now(),
        ));
        if !found.win.catalog_version.is_empty() {
            text.push_str(&format!("Catalog: {}\n", found.win.catalog_version));
        }
        Ok(Response::new(Explanation {
            win: Some(found.win),
            text,
            matched: found.matched as i32,
            record_wins: found.record_wins,
        }))
    }

    async fn list_wins(
        &self,
        request: Request<ListWinsRequest>,
    ) -> Result<Response<ListWinsResponse>, Status> {
        let request = request.into_inner();
        let status = match WinStatus::try_from(request.status) {
            Ok(WinStatus::Unspecified) => None,
            Ok(status) => Some(status),
            Err(_) => {
                return Err(ApiError::new(
                    ErrorKind::Malformed,
                    "unknown_status",
                    format!(
                        "status {} is not a win status; use provisional, confirmed or revoked",
                        request.status
                    ),
                )
                .into());
            }
        };
        let limit = match request.limit {
            0 => 100,
            n => i64::from(n.min(1000)),
        };
        let (wins, total) = self
            .store
            .list_wins(status, limit)
            .await
            .map_err(internal)?;
        Ok(Response::new(ListWinsResponse { wins, total }))
    }

    type RescoreStream = RescoreStream;

    async fn rescore(
        &self,
        request: Request<RescoreRequest>,
    ) -> Result<Response<RescoreStream>, Status> {
        let request = request.into_inner();
        if !request.rules_version.is_empty() && request.rules_version != score::RULES_VERSION {
            return Err(ApiError::new(
                ErrorKind::Unprocessable,
                "unknown_rules_version",
                format!(
                    "rules {} are not available here; this scoring replays under its own rules, {}",
                    request.rules_version,
                    score::RULES_VERSION
                ),
            )
            .into());
        }
        let catalog = Catalog::from_toml_str(&request.catalog_toml).map_err(|e| {
            Status::from(ApiError::new(
                ErrorKind::Unprocessable,
                "invalid_catalog",
                e.to_string(),
            ))
        })?;
        let (store, settings) = (self.store.clone(), self.settings.clone());
        let current_version = self.catalog.version();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<RescoreReply, Status>>(4);
        tokio::spawn(async move {
            let mut replay = rescore::Rescore::new(&store, &catalog, &settings);
            loop {
                let changes = match replay.next_page().await {
                    Ok(Some(changes)) if changes.is_empty() => continue,
                    Ok(Some(changes)) => changes,
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(internal(e))).await;
                        return;
                    }
                };
                let page = RescoreReply {
                    item: Some(Item::Page(RescorePage { changes })),
                };
                // Waiting for room paces the replay to the client; a client gone stops it.
                if tx.send(Ok(page)).await.is_err() {
                    return;
                }
            }
            let reply = match replay.finish().await {
                Ok(mut summary) => {
                    summary.current_catalog_version = current_version;
                    Ok(RescoreReply {
                        item: Some(Item::Summary(summary)),
                    })
                }
                Err(e) => Err(internal(e)),
            };
            let _ = tx.send(reply).await;
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|reply| (reply, rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_monthly_report(
        &self,
        request: Request<MonthlyReportRequest>,
    ) -> Result<Response<MonthlyReportDocument>, Status> {
        let request = request.into_inner();
        let bad = |message: String| {
            Status::from(ApiError::new(
                ErrorKind::Malformed,
                "bad_report_request",
                message,
            ))
        };
        let first = report::parse_month(&request.month).map_err(|e| bad(e.to_string()))?;
        let format = match request.format.trim() {
            "" | "html" => "html",
            "md" | "markdown" => "md",
            "pdf" => "pdf",
            other => {
                return Err(bad(format!("format {other:?} is not one of html, md, pdf")));
            }
        };
        let catalog = self.catalog.current();
        let built = report::build(&self.store, &catalog, &self.settings, first)
            .await
            .map_err(|e| match e {
                report::ReportError::BadMonth(m) => {
                    bad(format!("{m:?} is not a month like 2026-10"))
                }
                report::ReportError::Store(e) => internal(e),
            })?;
        let (content, content_type) = match format {
            "md" => (
                report::render::markdown(&built).into_bytes(),
                "text/markdown; charset=utf-8",
            ),
            "pdf" => (
                report::pdf::bytes(&built).map_err(|e| {
                    tracing::error!(error = %e, "the PDF report could not be written");
                    Status::from(ApiError::internal(
                        "the PDF could not be written; see the scoring logs",
                    ))
                })?,
                "application/pdf",
            ),
            _ => (
                report::render::html(&built).into_bytes(),
                "text/html; charset=utf-8",
            ),
        };
        Ok(Response::new(MonthlyReportDocument {
            content,
            content_type: content_type.to_string(),
            file_name: format!("it-value-report-{}.{format}", first.format("%Y-%m")),
            pitch: built.pitch,
        }))
    }
}
