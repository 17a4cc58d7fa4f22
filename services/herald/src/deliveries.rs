//! `herald deliveries`: what was delivered to which channel, newest first, with every attempt.
#![allow(clippy::print_stdout)] // printing is this module's job

use herald_proto::{
    time::opt_from_timestamp,
    v1::{
        Delivery, DeliveryAttempt, DeliveryStatus, ListDeliveriesRequest, ListDeliveriesResponse,
        notify_client::NotifyClient,
    },
};
use serde_json::json;

use crate::client::{Api, Target, status_error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    Pending,
    Delivered,
    Failed,
    /// Never sent: the win was withdrawn first.
    Withdrawn,
}

/// Deliveries to channels, newest first: what each carried and every attempt.
#[derive(clap::Args)]
pub struct Args {
    /// Only the deliveries of this announcement.
    #[arg(long)]
    announcement: Option<String>,
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Print JSON instead of a list.
    #[arg(long)]
    pub json: bool,
    /// One gRPC address for every API (what `herald up` serves); overrides --notify.
    #[arg(long, env = "HERALD_URL")]
    url: Option<String>,
    /// Notify's gRPC address.
    #[arg(
        long,
        env = "HERALD_NOTIFY_URL",
        default_value = "http://127.0.0.1:9093"
    )]
    notify: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let target = Target::new(Api::Notify, args.url, args.notify);
    let mut client = NotifyClient::new(target.connect().await?);
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

fn print_json(list: &ListDeliveriesResponse) {
    let rows: Vec<_> = list
        .deliveries
        .iter()
        .map(|d| {
            json!({
                "id": d.id, "announcement_id": d.announcement_id, "announcement_kind": d.announcement_kind,
                "headline": d.headline, "route": d.route, "channel": d.channel, "status": status(d),
                "attempts": d.attempts, "last_error": d.last_error,
                "attempt_log": d.attempt_log.iter().map(|a| json!({
                    "attempt": a.attempt, "http_status": (a.http_status > 0).then_some(a.http_status),
                    "outcome": outcome(a), "duration_ms": a.duration_ms,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
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
        for a in &d.attempt_log {
            println!("    #{} {} ms  {}", a.attempt, a.duration_ms, outcome(a));
        }
    }
}
