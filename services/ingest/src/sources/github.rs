//! GitHub repository and organisation webhooks: merged pull requests and successful deployments.
//! Signed with `X-Hub-Signature-256`; the legacy SHA-1 `X-Hub-Signature` is never enough.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use herald_proto::{
    time::to_timestamp,
    v1::{EventKind, Record, Source},
};
use herald_runtime::ApiError;
use http::HeaderMap;
use serde_json::Value;

use super::{
    Context, Normalised, SourceHandler,
    fields::{Directory, instant, required, text},
    parse_json, unusable,
};
use crate::verify::{Keys, verify_hex_sha256};

pub struct GitHub;

impl SourceHandler for GitHub {
    fn source(&self) -> Source {
        Source::Github
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        keys: &Keys,
        _now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        verify_hex_sha256(
            headers,
            "x-hub-signature-256",
            "X-Hub-Signature-256",
            body,
            keys,
        )
    }

    fn normalise(
        &self,
        ctx: &Context<'_>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Normalised, ApiError> {
        // The body alone does not say which event it is.
        let event = headers
            .get("x-github-event")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| unusable("the X-GitHub-Event header is required"))?
            .to_string();
        let value = parse_json(body)?;
        if !value.is_object() {
            return Err(unusable("a GitHub webhook body is a JSON object"));
        }
        let dir = Directory {
            catalog: ctx.catalog,
            source: "github",
        };
        match event.as_str() {
            "pull_request" => pull_request(&dir, &value),
            "deployment_status" => deployment_status(&dir, &value),
            other => Ok(Normalised::Ignored {
                id: None,
                note: format!("GitHub event {other:?} is not one Herald uses"),
            }),
        }
    }
}

/// A GitHub user who is a person: not a bot and not a system account.
fn human(dir: &Directory<'_>, user: Option<&Value>) -> Option<String> {
    let user = user.filter(|u| !u.is_null())?;
    if is_bot(dir, Some(user)) {
        return None;
    }
    text(user, &["login"]).and_then(|login| dir.person(&login))
}

fn is_bot(dir: &Directory<'_>, user: Option<&Value>) -> bool {
    let Some(user) = user.filter(|u| !u.is_null()) else {
        return false;
    };
    text(user, &["type"]).as_deref() == Some("Bot")
        || text(user, &["login"]).is_some_and(|l| dir.is_system(&l))
}

fn repository(dir: &Directory<'_>, body: &Value) -> Result<(String, Option<String>), ApiError> {
    let full_name = required(body, &["repository", "full_name"])?;
    let name = text(body, &["repository", "name"]);
    let service = dir.service(
        [Some(full_name.as_str()), name.as_deref()]
            .into_iter()
            .flatten(),
    );
    Ok((full_name, service))
}

fn pull_request(dir: &Directory<'_>, body: &Value) -> Result<Normalised, ApiError> {
    let pr = body
        .get("pull_request")
        .filter(|p| p.is_object())
        .ok_or_else(|| unusable("pull_request is required"))?;
    let pr_id = required(pr, &["id"])?;
    let action = text(body, &["action"]).unwrap_or_default();
    let merged = pr.get("merged").and_then(Value::as_bool) == Some(true);
    if action != "closed" || !merged {
        return Ok(Normalised::Ignored {
            id: None,
            note: format!("pull request {action:?} without a merge is not an outcome"),
        });
    }
    let (full_name, service) = repository(dir, body)?;
    let number = text(pr, &["number"]).or_else(|| text(body, &["number"]));
    let number = number.ok_or_else(|| unusable("pull_request.number is required"))?;
    let merged_at = instant(pr, &["merged_at"])?
        .ok_or_else(|| unusable("pull_request.merged_at is required for a merged pull request"))?;
    let author = human(dir, pr.get("user"));
    let merged_by = human(dir, pr.get("merged_by"));
    let mut contributors: BTreeSet<String> = author.iter().chain(&merged_by).cloned().collect();
    for assignee in pr
        .get("assignees")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        contributors.extend(human(dir, Some(assignee)));
    }
    let record = Record {
        number: format!("{full_name}#{number}"),
        title: text(pr, &["title"]),
        url: text(pr, &["html_url"]),
        business_service: service,
        assignee: author,
        contributors: contributors.into_iter().collect(),
        resolved_by: merged_by,
        opened_at: instant(pr, &["created_at"])?.map(to_timestamp),
        resolved_at: Some(to_timestamp(merged_at)),
        automated: Some(is_bot(dir, pr.get("merged_by"))),
        ..Default::default()
    };
    Ok(Normalised::event(
        Source::Github,
        EventKind::PullRequestMerged,
        format!("github:pull_request:{pr_id}:merged"),
        merged_at,
        record,
        format!("github:{full_name}#{number}"),
    ))
}

fn deployment_status(dir: &Directory<'_>, body: &Value) -> Result<Normalised, ApiError> {
    let status = body
        .get("deployment_status")
        .filter(|s| s.is_object())
        .ok_or_else(|| unusable("deployment_status is required"))?;
    // Ids are 64-bit: `text` keeps the integer as sent.
    let status_id = required(status, &["id"])?;
    let id = format!("github:deployment_status:{status_id}");
    let state = text(status, &["state"]).unwrap_or_default();
    if state != "success" {
        return Ok(Normalised::Ignored {
            id: Some(id),
            note: format!("deployment state {state:?} is not a success"),
        });
    }
    let deployment = body
        .get("deployment")
        .filter(|d| d.is_object())
        .ok_or_else(|| unusable("deployment is required"))?;
    let deployment_id = required(deployment, &["id"])?;
    let (full_name, service) = repository(dir, body)?;
    let finished = instant(status, &["created_at"])?
        .ok_or_else(|| unusable("deployment_status.created_at is required"))?;
    let creator = deployment.get("creator");
    let person = human(dir, creator);
    let record = Record {
        number: format!("{full_name}/deployments/{deployment_id}"),
        title: text(status, &["description"]).or_else(|| text(deployment, &["description"])),
        url: text(status, &["log_url"]).or_else(|| text(status, &["target_url"])),
        business_service: service,
        contributors: person.iter().cloned().collect(),
        assignee: person,
        opened_at: instant(deployment, &["created_at"])?.map(to_timestamp),
        resolved_at: Some(to_timestamp(finished)),
        environment: text(status, &["environment"]).or_else(|| text(deployment, &["environment"])),
        automated: Some(is_bot(dir, creator)),
        // The deployer's free-form payload may name the change it carries out.
        linked_change: text(deployment, &["payload", "change"])
            .or_else(|| text(deployment, &["payload", "change_request"])),
        ..Default::default()
    };
    Ok(Normalised::event(
        Source::Github,
        EventKind::DeploymentSucceeded,
        id,
        finished,
        record,
        format!("github:{full_name}/deployments/{deployment_id}"),
    ))
}
