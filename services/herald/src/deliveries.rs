//! `herald deliveries [list]`: what was delivered to which channel, newest first, with every
//! attempt; `herald deliveries replay <id>`: send one again.
#![allow(clippy::print_stdout)] // printing is this module's job

use herald_proto::{
    time::opt_from_timestamp,
    v1::{
        Delivery, DeliveryAttempt, DeliveryStatus, ListDeliveriesRequest, ListDeliveriesResponse,
        ReplayDeliveryRequest, notify_client::NotifyClient,
    },
};
use serde_json::json;

use crate::client::{Api, NotifyAddress, status_error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    Pending,
    Delivered,
    Failed,
    /// Never sent: the win was withdrawn first.
    Withdrawn,
}

/// Deliveries to channels, newest first: what each carried and every attempt (`list`, the
/// default); `replay <id>` sends one again.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Option<DeliveriesCommand>,
    /// Only the deliveries of this announcement.
    #[arg(long, global = true)]
    announcement: Option<String>,
    #[arg(long, value_enum, global = true)]
    status: Option<StatusArg>,
    #[arg(long, default_value_t = 20, global = true)]
    limit: u32,
    /// Print JSON instead of a list.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    address: NotifyAddress,
}

#[derive(clap::Subcommand)]
enum DeliveriesCommand {
    /// Deliveries, newest first, with every attempt (the default).
    List,
    /// Puts a delivered, failed or withdrawn delivery back in the queue, due at once with a fresh
    /// attempt budget (its attempt log is kept). A webhook receiver sees the same webhook-id again;
    /// a chat channel gets the message again.
    Replay {
        /// The delivery's id (`d-…`), as `herald deliveries list` shows it.
        id: String,
    },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let target = args.address.target();
    let mut client = NotifyClient::new(target.connect().await?);
    if let Some(DeliveriesCommand::Replay { id }) = &args.command {
        let delivery = client
            .replay_delivery(ReplayDeliveryRequest { id: id.clone() })
            .await
            .map_err(|s| status_error(Api::Notify, s))?
            .into_inner();
        if args.json {
            println!("{}", json!(delivery_json(&delivery)));
        } else {
            println!(
                "replayed {} ({} → {}, route {}): queued again, due now",
                delivery.id, delivery.announcement_kind, delivery.channel, delivery.route
            );
            println!(
                "    follow it with: herald deliveries --announcement {}",
                delivery.announcement_id
            );
        }
        return Ok(());
    }
    let status = match args.status {
        None => DeliveryStatus::Unspecified,
        Some(StatusArg::Pending) => DeliveryStatus::Pending,
        Some(StatusArg::Delivered) => DeliveryStatus::Delivered,
        Some(StatusArg::Failed) => DeliveryStatus::Failed,
        Some(StatusArg::Withdrawn) => DeliveryStatus::Withdrawn,
    };
    let list = client
        .list_deliveries(ListDeliveriesRequest {
            announcement_id: args.announcement.unwrap_or_default(),
            status: status as i32,
            limit: args.limit,
        })
        .await
        .map_err(|s| status_error(Api::Notify, s))?
        .into_inner();
    if args.json {
        print_json(&list);
    } else {
        print_text(&list);
    }
    Ok(())
}

fn status(d: &Delivery) -> &'static str {
    match DeliveryStatus::try_from(d.status).unwrap_or(DeliveryStatus::Unspecified) {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Withdrawn => "withdrawn",
        DeliveryStatus::Unspecified => "unknown",
    }
}

/// What an attempt did; servers older than the `outcome` field still get a readable line.
fn outcome(a: &DeliveryAttempt) -> String {
    if !a.outcome.is_empty() {
        a.outcome.clone()
    } else if !a.error.is_empty() {
        a.error.clone()
    } else if a.http_status > 0 {
        format!("HTTP {}", a.http_status)
    } else {
        "written".to_string()
    }
}

fn delivery_json(d: &Delivery) -> serde_json::Value {
    json!({
        "id": d.id, "announcement_id": d.announcement_id, "announcement_kind": d.announcement_kind,
        "headline": d.headline, "route": d.route, "channel": d.channel, "status": status(d),
        "attempts": d.attempts, "last_error": d.last_error,
        "merged_into": (!d.merged_into.is_empty()).then_some(&d.merged_into),
        "attempt_log": d.attempt_log.iter().map(|a| json!({
            "attempt": a.attempt, "http_status": (a.http_status > 0).then_some(a.http_status),
            "outcome": outcome(a), "answer": (!a.answer.is_empty()).then_some(&a.answer),
            "duration_ms": a.duration_ms,
        })).collect::<Vec<_>>(),
    })
}

fn print_json(list: &ListDeliveriesResponse) {
    let rows: Vec<_> = list.deliveries.iter().map(delivery_json).collect();
    println!("{}", json!(rows));
}

fn print_text(list: &ListDeliveriesResponse) {
    if list.deliveries.is_empty() {
        println!("no deliveries");
    }
    for d in &list.deliveries {
        let created = opt_from_timestamp(d.created_at.as_ref())
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let headline = if d.headline.is_empty() {
            "(announcement unreadable)"
        } else {
            d.headline.as_str()
        };
        println!(
            "{created}  {:<9}  {} → {} ({})  {headline}",
            status(d),
            d.announcement_kind,
            d.channel,
            d.route,
        );
        println!("    {}  announcement {}", d.id, d.announcement_id);
        if !d.merged_into.is_empty() {
            println!("    sent in the summary carried by {}", d.merged_into);
        }
        for a in &d.attempt_log {
            let answer = if a.answer.is_empty() || a.answer == outcome(a) {
                String::new()
            } else {
                format!("  ({})", a.answer)
            };
            println!(
                "    #{} {} ms  {}{answer}",
                a.attempt,
                a.duration_ms,
                outcome(a)
            );
        }
    }
}
