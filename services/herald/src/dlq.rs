//! `herald dlq list` and `herald dlq replay`: the messages a stage gave up on, and sending them
//! through again once the fault is fixed (`herald.v1.DeadLetters`, served by ingest and by
//! `herald up`).
#![allow(clippy::print_stdout)] // printing is this module's job

use clap::{Args, Subcommand};
use herald_proto::{
    time::opt_from_timestamp,
    v1::{
        DeadLetterEntry, ListDeadLettersRequest, ListDeadLettersResponse, ReplayDeadLettersRequest,
        ReplayDeadLettersResponse, ReplayOutcome, dead_letters_client::DeadLettersClient,
    },
};
use serde_json::json;

use crate::client::{Api, IngestAddress};

/// Dead letters: messages a stage gave up on. List them; replay them once the fault is fixed.
#[derive(Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    address: IngestAddress,
}

/// The stages that dead-letter messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    Scoring,
    Spotlight,
    Notify,
}

impl Stage {
    fn token(self) -> &'static str {
        match self {
            Stage::Scoring => "scoring",
            Stage::Spotlight => "spotlight",
            Stage::Notify => "notify",
        }
    }
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Dead letters, oldest first: stage, when, how often it was tried, the event, the reason.
    List {
        /// Only this stage's dead letters.
        #[arg(long, value_enum)]
        stage: Option<Stage>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Only dead letters with a higher id (the next page).
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
    /// Publishes dead letters again on their original subject, then removes them. Without ids:
    /// every dead letter (of --stage).
    Replay {
        /// Dead letter ids, as `herald dlq list` shows them.
        ids: Vec<u64>,
        /// Only this stage's dead letters.
        #[arg(long, value_enum)]
        stage: Option<Stage>,
    },
}

fn status_error(e: tonic::Status) -> anyhow::Error {
    crate::client::status_error(Api::Ingest, e)
}

/// Runs `herald dlq …` against the DeadLetters API.
pub async fn run(args: DlqArgs) -> anyhow::Result<()> {
    let target = args.address.target();
    let mut client = DeadLettersClient::new(target.connect().await?);
    let json = args.json;
    match args.command {
        DlqCommand::List {
            stage,
            limit,
            after,
        } => {
            let stage = stage.map(Stage::token);
            let response = client
                .list(ListDeadLettersRequest {
                    stage: stage.unwrap_or_default().to_string(),
                    limit,
                    after,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            print_list(&response, stage, json);
            Ok(())
        }
        DlqCommand::Replay { ids, stage } => {
            let response = client
                .replay(ReplayDeadLettersRequest {
                    ids,
                    stage: stage.map(Stage::token).unwrap_or_default().to_string(),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            print_replay(&response, json);
            if response.failed > 0 {
                anyhow::bail!(
                    "{} of {} dead letters could not be replayed",
                    response.failed,
                    response.outcomes.len()
                );
            }
            Ok(())
        }
    }
}

fn failed_at(entry: &DeadLetterEntry) -> String {
    opt_from_timestamp(entry.failed_at.as_ref())
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".to_string())
}

/// What the dead letter was about: the event's source, kind and record, else the message id.
fn about(entry: &DeadLetterEntry) -> String {
    match &entry.event {
        Some(event) => format!("{} {} {}", event.source, event.kind, event.record_number)
            .trim_end()
            .to_string(),
        None if !entry.original_msg_id.is_empty() => entry.original_msg_id.clone(),
        None => entry.original_subject.clone(),
    }
}

fn entry_json(entry: &DeadLetterEntry) -> serde_json::Value {
    json!({
        "id": entry.id,
        "stage": entry.stage,
        "failed_at": opt_from_timestamp(entry.failed_at.as_ref()).map(|t| t.to_rfc3339()),
        "deliveries": entry.deliveries,
        "original_subject": entry.original_subject,
        "original_msg_id": entry.original_msg_id,
        "reason": entry.reason,
        "payload_bytes": entry.payload_bytes,
        "event": entry.event.as_ref().map(|e| json!({
            "id": e.id, "source": e.source, "kind": e.kind, "record_number": e.record_number,
        })),
    })
}

fn print_list(response: &ListDeadLettersResponse, stage: Option<&str>, as_json: bool) {
    if as_json {
        let entries: Vec<_> = response.entries.iter().map(entry_json).collect();
        println!(
            "{}",
            json!({"dead_letters": entries, "next_after": response.next_after})
        );
        return;
    }
    if response.entries.is_empty() {
        match stage {
            Some(stage) => println!("no dead letters for {stage}"),
            None => println!("no dead letters"),
        }
        return;
    }
    let about: Vec<String> = response.entries.iter().map(about).collect();
    let width = about
        .iter()
        .map(|a| a.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let id_width = response
        .entries
        .iter()
        .map(|e| e.id.to_string().len())
        .max()
        .unwrap_or(2)
        .max(2);
    println!(
        "{:>id_width$}  {:<9}  {:<19}  {:>5}  {:<width$}  REASON",
        "ID", "STAGE", "FAILED (UTC)", "TRIES", "EVENT"
    );
    for (entry, about) in response.entries.iter().zip(&about) {
        println!(
            "{:>id_width$}  {:<9}  {:<19}  {:>5}  {:<width$}  {}",
            entry.id,
            entry.stage,
            failed_at(entry),
            entry.deliveries,
            about,
            entry.reason
        );
    }
    let count = response.entries.len();
    println!(
        "{count} dead letter{}{}",
        if count == 1 { "" } else { "s" },
        if response.next_after > 0 {
            format!(
                "; more with `herald dlq list --after {}`",
                response.next_after
            )
        } else {
            String::new()
        }
    );
}

fn outcome_json(outcome: &ReplayOutcome) -> serde_json::Value {
    json!({
        "id": outcome.id,
        "stage": outcome.stage,
        "original_subject": outcome.original_subject,
        "original_msg_id": outcome.original_msg_id,
        "replayed": outcome.replayed,
        "sequence": outcome.sequence,
        "error": (!outcome.error.is_empty()).then_some(&outcome.error),
    })
}

fn print_replay(response: &ReplayDeadLettersResponse, as_json: bool) {
    if as_json {
        let outcomes: Vec<_> = response.outcomes.iter().map(outcome_json).collect();
        println!(
            "{}",
            json!({"outcomes": outcomes, "replayed": response.replayed, "failed": response.failed})
        );
        return;
    }
    if response.outcomes.is_empty() {
        println!("no dead letters to replay");
        return;
    }
    for outcome in &response.outcomes {
        if outcome.replayed {
            println!(
                "replayed {} ({}): {} to {} (sequence {})",
                outcome.id,
                outcome.stage,
                if outcome.original_msg_id.is_empty() {
                    "message"
                } else {
                    outcome.original_msg_id.as_str()
                },
                outcome.original_subject,
                outcome.sequence
            );
        } else {
            println!("not replayed {}: {}", outcome.id, outcome.error);
        }
    }
    println!("{} replayed, {} failed", response.replayed, response.failed);
}
