//! The month's GitHub deliveries for the Shipping Portal repository: merged pull requests
//! (`pull_request`, action `closed`, merged) and successful production deployments
//! (`deployment_status`, state `success`), each deployment naming the change it implements, in
//! the shape of `tests/fixtures/github/`.

use chrono::{DateTime, Duration, Utc};
use herald_catalog::Person;
use herald_proto::v1::Source;
use serde_json::{Value, json};

use super::{
    Submission,
    organisation::{Org, Rng, account, hex_id},
};

const OWNER: &str = "larkspur-logistics";
const REPO: &str = "shipping-portal";

/// A production release of the Shipping Portal, carried out under a ServiceNow change.
pub struct Release {
    pub change: &'static str,
    pub version: &'static str,
    /// When the deployment was created and when it reported success.
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
}

fn gh_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn full_name() -> String {
    format!("{OWNER}/{REPO}")
}

/// A GitHub numeric id, the same for the same seed, in `base..base + 10^7`.
fn numeric_id(base: u64, seed: &str) -> u64 {
    let hex = hex_id(seed);
    base + u64::from_str_radix(&hex[..8], 16).unwrap_or(0) % 10_000_000
}

fn gh_user(login: &str, kind: &str) -> Value {
    json!({
        "login": login,
        "id": numeric_id(41_000_000, login),
        "node_id": format!("U_kgDO{}", numeric_id(41_000_000, login)),
        "type": kind,
        "site_admin": false,
        "html_url": format!("https://github.com/{login}"),
        "url": format!("https://api.github.com/users/{login}"),
    })
}

fn repository() -> Value {
    json!({
        "id": 734_455_120u64,
        "node_id": "R_kgDOK8bO0A",
        "name": REPO,
        "full_name": full_name(),
        "private": true,
        "owner": gh_user(OWNER, "Organization"),
        "html_url": format!("https://github.com/{}", full_name()),
        "description": "Customer Shipping Portal",
        "fork": false,
        "url": format!("https://api.github.com/repos/{}", full_name()),
        "default_branch": "main",
        "visibility": "private",
    })
}

fn organization() -> Value {
    json!({
        "login": OWNER,
        "id": 98_120_455u64,
        "node_id": "O_kgDOBdkQhw",
        "url": format!("https://api.github.com/orgs/{OWNER}"),
        "description": "Larkspur Logistics engineering",
    })
}

/// One merged pull request.
struct Pull<'a> {
    number: u32,
    title: &'a str,
    author: String,
    merger: String,
    opened: DateTime<Utc>,
    merged: DateTime<Utc>,
}

fn pull_request_merged(pull: &Pull<'_>) -> Submission {
    let id = numeric_id(2_338_000_000, &format!("demo-pr-{}", pull.number));
    let api = format!("https://api.github.com/repos/{}", full_name());
    let author = gh_user(&pull.author, "User");
    let body = json!({
        "action": "closed",
        "number": pull.number,
        "pull_request": {
            "url": format!("{api}/pulls/{}", pull.number),
            "id": id,
            "html_url": format!("https://github.com/{}/pull/{}", full_name(), pull.number),
            "number": pull.number,
            "state": "closed",
            "locked": false,
            "title": pull.title,
            "user": author,
            "created_at": gh_time(pull.opened),
            "updated_at": gh_time(pull.merged + Duration::seconds(1)),
            "closed_at": gh_time(pull.merged),
            "merged_at": gh_time(pull.merged),
            "merge_commit_sha": hex_id(&format!("demo-pr-sha-{}", pull.number)) + &hex_id(&pull.number.to_string())[..8],
            "assignee": author,
            "assignees": [author],
            "requested_reviewers": [],
            "draft": false,
            "base": {"label": format!("{OWNER}:main"), "ref": "main", "repo": repository()},
            "author_association": "MEMBER",
            "auto_merge": null,
            "merged": true,
            "merged_by": gh_user(&pull.merger, "User"),
            "comments": 2,
            "review_comments": 4,
            "commits": 3,
        },
        "repository": repository(),
        "organization": organization(),
        "sender": gh_user(&pull.merger, "User"),
    });
    Submission {
        source: Source::Github,
        content_type: "application/json",
        body: body.to_string().into_bytes(),
        at: pull.merged,
        wait_for: None,
    }
}

/// The release's deployment reporting success, created by the release manager through the
/// workflow; the change it implements is in the deployment's description and payload.
fn deployment_succeeded(release: &Release, creator: &str) -> Submission {
    let deployment_id = numeric_id(2_154_000_000, &format!("demo-deploy-{}", release.change));
    // Status ids are past the 32-bit range, as GitHub's are.
    let status_id = numeric_id(21_877_000_000, &format!("demo-status-{}", release.change));
    let api = format!("https://api.github.com/repos/{}", full_name());
    let run = format!(
        "https://github.com/{}/actions/runs/{}",
        full_name(),
        numeric_id(13_712_000_000, release.change)
    );
    let bot = gh_user("github-actions[bot]", "Bot");
    let body = json!({
        "action": "created",
        "deployment_status": {
            "url": format!("{api}/deployments/{deployment_id}/statuses/{status_id}"),
            "id": status_id,
            "state": "success",
            "creator": bot,
            "description": format!("Deployed release {} to production (blue/green) under {}", release.version, release.change),
            "environment": "production",
            "target_url": run,
            "log_url": run,
            "environment_url": "https://portal.larkspur.example",
            "created_at": gh_time(release.finished),
            "updated_at": gh_time(release.finished),
            "deployment_url": format!("{api}/deployments/{deployment_id}"),
            "repository_url": api,
            "performed_via_github_app": null,
        },
        "deployment": {
            "url": format!("{api}/deployments/{deployment_id}"),
            "id": deployment_id,
            "task": "deploy",
            "original_environment": "production",
            "environment": "production",
            "description": format!("Release {} ({})", release.version, release.change),
            "created_at": gh_time(release.started),
            "updated_at": gh_time(release.finished),
            "statuses_url": format!("{api}/deployments/{deployment_id}/statuses"),
            "repository_url": api,
            "creator": gh_user(creator, "User"),
            "sha": hex_id(&format!("demo-release-{}", release.version)) + "0a1b2c3d",
            "ref": format!("v{}.0", release.version),
            "payload": {"change_request": release.change},
            "transient_environment": false,
            "production_environment": true,
            "performed_via_github_app": null,
        },
        "repository": repository(),
        "organization": organization(),
        "sender": bot,
    });
    Submission {
        source: Source::Github,
        content_type: "application/json",
        body: body.to_string().into_bytes(),
        at: release.finished,
        wait_for: None,
    }
}

/// Pull requests merged through the month and a deployment per release.
pub fn deliveries(
    org: &Org<'_>,
    rng: &mut Rng,
    now: DateTime<Utc>,
    releases: &[Release],
) -> Vec<Submission> {
    let login = |id: &str| {
        org.catalog
            .person(id)
            .and_then(|p: &Person| account(p, "github", "login"))
    };
    let (Some(hana), Some(rahul), Some(kwame), Some(ingrid)) = (
        login("p-hana-sato"),
        login("p-rahul-iyer"),
        login("p-kwame-mensah"),
        login("p-ingrid-lindqvist"),
    ) else {
        return Vec::new();
    };
    // (title, author, merged by, days ago, hours open)
    let pulls = [
        (
            "Bookings: retry label-print calls with jittered backoff",
            &hana,
            &rahul,
            26,
            50,
        ),
        (
            "Tracking: cache carrier status lookups for 60 s",
            &hana,
            &rahul,
            20,
            30,
        ),
        (
            "Blue/green: health check waits for the booking queue to drain",
            &kwame,
            &ingrid,
            15,
            20,
        ),
        (
            "Labels: stream PDFs instead of buffering them",
            &hana,
            &kwame,
            9,
            70,
        ),
        (
            "Bookings: idempotency keys on POST /bookings",
            &rahul,
            &hana,
            5,
            26,
        ),
        (
            "Observability: trace ids in every carrier API call",
            &ingrid,
            &rahul,
            2,
            8,
        ),
    ];
    let mut out: Vec<Submission> = pulls
        .into_iter()
        .enumerate()
        .filter_map(|(i, (title, author, merger, days, hours))| {
            let merged = now - Duration::days(days) - rng.minutes(60, 8 * 60);
            let pull = Pull {
                number: 840 + u32::try_from(i).unwrap_or(0) * 3,
                title,
                author: author.clone(),
                merger: merger.clone(),
                opened: merged - Duration::hours(hours),
                merged,
            };
            (merged <= now).then(|| pull_request_merged(&pull))
        })
        .collect();
    out.extend(
        releases
            .iter()
            .filter(|r| r.finished <= now)
            .map(|r| deployment_succeeded(r, &rahul)),
    );
    out
}
