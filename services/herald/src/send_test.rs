//! `herald send-test <channel>`: one test message to a configured channel, now, and what the
//! channel answered: the way to check a webhook URL or an SMTP relay before a win depends on it.
#![allow(clippy::print_stdout)] // printing is this module's job

use herald_proto::v1::{SendTestRequest, notify_client::NotifyClient};
use serde_json::json;

use crate::client::{Api, NotifyAddress, status_error};

/// Send a test message to one configured channel and show what it answered.
#[derive(clap::Args)]
pub struct Args {
    /// The channel's name, as in [[notify.channels]].
    channel: String,
    /// Print JSON instead of a line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    address: NotifyAddress,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let target = args.address.target();
    let mut client = NotifyClient::new(target.connect().await?);
    let answer = client
        .send_test(SendTestRequest {
            channel: args.channel.clone(),
        })
        .await
        .map_err(|s| status_error(Api::Notify, s))?
        .into_inner();
    if args.json {
        println!(
            "{}",
            json!({
                "channel": args.channel, "kind": answer.kind, "delivered": answer.delivered,
                "http_status": (answer.http_status > 0).then_some(answer.http_status),
                "outcome": answer.outcome, "duration_ms": answer.duration_ms,
            })
        );
    } else if answer.delivered {
        println!(
            "sent a test message to {} ({}) in {} ms: {}",
            args.channel, answer.kind, answer.duration_ms, answer.outcome
        );
    } else {
        println!(
            "the test message to {} ({}) did not go through after {} ms: {}",
            args.channel, answer.kind, answer.duration_ms, answer.outcome
        );
    }
    if !answer.delivered {
        anyhow::bail!("{} did not accept the test message", args.channel);
    }
    Ok(())
}
