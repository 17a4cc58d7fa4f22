//! `herald send <source> FILE`: one delivery to ingest, with the headers that source's tool sends
//! (signature or token, event-type headers), so a file behaves exactly like the tool's webhook.
#![allow(clippy::print_stdout)] // printing is this module's job

use std::{collections::HashMap, io::Read, path::PathBuf};

use anyhow::Context;
use herald_ingest::sign::{self, Credential};
use herald_proto::v1::{Source, SubmitRequest, SubmitResponse, ingest_client::IngestClient};
use serde_json::json;

use crate::{client::IngestAddress, source::SourceArg};

/// Sends a delivery (a file, byte for byte) to ingest, signed and headed as the source's tool does.
/// Exits non-zero when ingest does not accept it.
#[derive(clap::Args)]
pub struct Args {
    /// Which tool the delivery is from.
    #[arg(value_enum)]
    source: SourceArg,
    /// The body to send, as the tool would send it (`-` for standard input).
    file: PathBuf,
    /// The source's shared secret: signs with the tool's own scheme (X-Herald-Signature for
    /// servicenow and cloudevents, X-Hub-Signature for jira, X-Hub-Signature-256 for github,
    /// X-PagerDuty-Signature, X-Zendesk-Webhook-Signature). Unsigned when neither this nor
    /// --token is given.
    #[arg(long, env = "HERALD_SOURCE_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// The source's bearer token instead (opsgenie; servicenow and cloudevents configured with one).
    #[arg(
        long,
        env = "HERALD_SOURCE_TOKEN",
        hide_env_values = true,
        conflicts_with = "secret"
    )]
    token: Option<String>,
    /// GitHub's event name for X-GitHub-Event (pull_request, deployment_status, ping, …);
    /// guessed from the body when absent.
    #[arg(long)]
    event: Option<String>,
    /// An extra header, `Name: value` (repeatable); replaces a computed header of the same name,
    /// e.g. -H 'ce-id: run-1' for CloudEvents binary mode.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Content type of the body; by default what the tool sends (CloudEvents: structured or
    /// batched, by the body).
    #[arg(long)]
    content_type: Option<String>,
    /// Print JSON instead of a line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    address: IngestAddress,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not a header: write it as 'Name: value'"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("{name:?} is not a header name"));
    }
    Ok((name.to_ascii_lowercase(), value.trim().to_string()))
}

fn read_body(file: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        let mut body = Vec::new();
        std::io::stdin()
            .read_to_end(&mut body)
            .context("cannot read the body from standard input")?;
        return Ok(body);
    }
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

/// The headers the tool would send, then the caller's overrides.
fn headers(args: &Args, body: &[u8]) -> anyhow::Result<HashMap<String, String>> {
    let source = args.source.0;
    if args.event.is_some() && source != Source::Github {
        anyhow::bail!("--event names a GitHub event; {} has none", source.token());
    }
    let credential = match (&args.secret, &args.token) {
        (Some(secret), _) => Some(Credential::Secret(secret)),
        (None, Some(token)) => Some(Credential::Token(token)),
        (None, None) => None,
    };
    let context = sign::Context {
        github_event: args.event.as_deref(),
        ..sign::Context::default()
    };
    let mut headers: HashMap<String, String> = sign::headers(source, body, credential, &context)?
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    if let Some(content_type) = &args.content_type {
        headers.insert("content-type".into(), content_type.clone());
    }
    headers.extend(args.headers.iter().cloned());
    Ok(headers)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let body = read_body(&args.file)?;
    let headers = headers(&args, &body)?;
    if args.secret.is_none() && args.token.is_none() {
        eprintln!(
            "note: sending unsigned (no --secret or --token); ingest refuses it unless \
             [sources.{}] allow_unsigned = true",
            args.source.token()
        );
    }
    let target = args.address.target();
    let mut client = IngestClient::new(target.connect().await?);
    let response = client
        .submit(SubmitRequest {
            historical: false,
            source: args.source.token().to_string(),
            body,
            headers,
        })
        .await
        .map_err(|s| {
            anyhow::anyhow!(
                "ingest did not accept the {} delivery of {} ({:?}): {}",
                args.source.token(),
                args.file.display(),
                s.code(),
                s.message()
            )
        })?
        .into_inner();
    print(&response, args.json);
    Ok(())
}

fn print(response: &SubmitResponse, as_json: bool) {
    if as_json {
        println!(
            "{}",
            json!({"accepted": true, "id": response.id, "duplicate": response.duplicate, "published": response.published, "note": response.note})
        );
    } else if response.duplicate {
        println!(
            "accepted {} (a duplicate: already accepted before)",
            response.id
        );
    } else if response.published {
        println!("accepted {}", response.id);
    } else {
        println!("accepted, not published: {}", response.note);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_name_colon_value() {
        assert_eq!(
            parse_header("X-Extra:  a: b "),
            Ok(("x-extra".to_string(), "a: b".to_string()))
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": value").is_err());
    }
}
