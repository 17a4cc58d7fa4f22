//! Locked doors: with tokens configured, every gRPC call and every page that shows figures needs
//! one (a read token for queries, an admin token for anything that acts), while webhooks, health
//! and signed links stay open; without tokens, nothing listens beyond loopback.

use std::time::Duration;

use serde_json::Value;

use crate::support::{WEBHOOK_PATH, describe as text, herald_cli_with, standalone::Standalone};

const READ: &str = "read-7f3a9c1e5b2d4f60";
const ADMIN: &str = "admin-0b8e6d4c2a1f3e57";
const WAIT: Duration = Duration::from_secs(60);

/// The `herald` CLI with `HERALD_TOKEN` set to `token` (or unset).
async fn cli(token: Option<&str>, args: &[&str]) -> anyhow::Result<std::process::Output> {
    match token {
        Some(token) => herald_cli_with(args, &[("HERALD_TOKEN", token)]).await,
        None => herald_cli_with(args, &[]).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_lock_the_api_and_the_figures_but_not_webhooks_or_health() -> anyhow::Result<()> {
    let extra = format!(
        r#"
[auth]
read_tokens = ["{READ}"]
admin_tokens = ["{ADMIN}"]
"#
    );
    let mut herald = Standalone::start_with(&extra).await?;
    let result = check(&herald).await;
    if result.is_err() {
        eprintln!("{}", herald.process.output());
    }
    herald.process.terminate(Duration::from_secs(20)).await?;
    result?;
    let logs = herald.process.output();
    for token in [READ, ADMIN] {
        assert!(!logs.contains(token), "a token reached the log:\n{logs}");
    }
    Ok(())
}

async fn check(herald: &Standalone) -> anyhow::Result<()> {
    // Webhooks carry their own signature: no token needed, and the win goes out.
    let body =
        std::fs::read(herald_testkit::fixtures_dir().join("servicenow/incident-resolved-p1.json"))?;
    assert_eq!(herald.post(body).await?.status().as_u16(), 202);
    herald.webhook.wait_for(WEBHOOK_PATH, 1, WAIT).await?;
    let url = herald.grpc.as_str();

    // No token: refused, saying how to send one.
    let anonymous = cli(None, &["deliveries", "list", "--json", "--url", url]).await?;
    assert!(!anonymous.status.success(), "{}", text(&anonymous));
    let said = String::from_utf8_lossy(&anonymous.stderr);
    assert!(
        said.contains("Unauthenticated") && said.contains("HERALD_TOKEN"),
        "{}",
        text(&anonymous)
    );
    // A wrong token: refused too.
    let wrong = cli(
        Some("not-one-of-the-tokens-at-all"),
        &["deliveries", "list", "--url", url],
    )
    .await?;
    assert!(!wrong.status.success(), "{}", text(&wrong));

    // A read token reads...
    let listed = cli(Some(READ), &["deliveries", "list", "--json", "--url", url]).await?;
    assert!(listed.status.success(), "{}", text(&listed));
    let rows: Value = serde_json::from_slice(&listed.stdout)?;
    let id = rows
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["status"] == "delivered"))
        .and_then(|r| r["id"].as_str())
        .ok_or_else(|| anyhow::anyhow!("no delivered delivery: {rows}"))?
        .to_string();
    let leaderboard = cli(Some(READ), &["leaderboard", "--url", url]).await?;
    assert!(leaderboard.status.success(), "{}", text(&leaderboard));

    // ...but cannot act.
    let before = herald.webhook.requests_to(WEBHOOK_PATH).len();
    let replay = cli(Some(READ), &["deliveries", "replay", &id, "--url", url]).await?;
    assert!(!replay.status.success(), "{}", text(&replay));
    assert!(
        String::from_utf8_lossy(&replay.stderr).contains("PermissionDenied"),
        "{}",
        text(&replay)
    );
    let dlq = cli(Some(READ), &["dlq", "list", "--url", url]).await?;
    assert!(!dlq.status.success(), "{}", text(&dlq));

    // An admin token acts.
    let replayed = cli(Some(ADMIN), &["deliveries", "replay", &id, "--url", url]).await?;
    assert!(replayed.status.success(), "{}", text(&replayed));
    herald
        .webhook
        .wait_for(WEBHOOK_PATH, before + 1, WAIT)
        .await?;

    // HTTP: probes open; the figures need a read token.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let get = |path: &str| client.get(format!("{}{path}", herald.http));
    assert_eq!(get("/readyz").send().await?.status().as_u16(), 200);
    for path in ["/metrics", "/", "/api/dashboard"] {
        let refused = get(path).send().await?;
        assert_eq!(refused.status().as_u16(), 401, "{path} without a token");
        let allowed = get(path).bearer_auth(READ).send().await?;
        assert_eq!(allowed.status().as_u16(), 200, "{path} with the read token");
    }
    assert_eq!(
        get("/metrics")
            .bearer_auth("not-one-of-the-tokens-at-all")
            .send()
            .await?
            .status()
            .as_u16(),
        401
    );
    // A wall screen opens the dashboard once with ?token=: it gets a cookie and an address
    // without the token.
    let opened = get(&format!("/?token={READ}&kiosk=1")).send().await?;
    assert_eq!(opened.status().as_u16(), 303);
    let location = opened
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(location, "/?kiosk=1");
    let cookie = opened
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let pair = cookie.split(';').next().unwrap_or_default().to_string();
    let with_cookie = get(&location).header("cookie", pair).send().await?;
    assert_eq!(with_cookie.status().as_u16(), 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tokens_herald_will_not_listen_beyond_loopback() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let port = herald_testkit::free_port()?;
    let output = tokio::time::timeout(
        WAIT,
        cli(
            None,
            &[
                "up",
                "--data-dir",
                &dir.path().join("data").display().to_string(),
                "--http",
                &format!("0.0.0.0:{port}"),
                "--grpc",
                "127.0.0.1:0",
            ],
        ),
    )
    .await??;
    assert!(!output.status.success(), "{}", text(&output));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains(&format!("0.0.0.0:{port}"))
            && said.contains("not a loopback address")
            && said.contains("read_tokens"),
        "{}",
        text(&output)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_certificate_both_listeners_speak_tls_only() -> anyhow::Result<()> {
    herald_runtime::install_tls_provider();
    let dir = tempfile::tempdir()?;
    let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])?;
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, issued.cert.pem())?;
    std::fs::write(&key, issued.signing_key.serialize_pem())?;
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!("[tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n"),
    )?;
    let (http, grpc) = (herald_testkit::free_port()?, herald_testkit::free_port()?);
    let args = herald_testkit::herald_up_args(&config, &dir.path().join("data"), http, grpc);
    let mut herald = herald_testkit::ServiceProcess::spawn("herald", &args, &[]).await?;
    let result = check_tls(http, grpc, &cert).await;
    if result.is_err() {
        eprintln!("{}", herald.output());
    }
    herald.terminate(Duration::from_secs(20)).await?;
    result
}

async fn check_tls(http: u16, grpc: u16, cert: &std::path::Path) -> anyhow::Result<()> {
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(cert)?)?)
        .build()?;
    let ready = format!("https://127.0.0.1:{http}/readyz");
    herald_testkit::eventually("herald up ready over HTTPS", WAIT, || {
        let (client, url) = (trusting.clone(), ready.clone());
        async move {
            let status = client.get(&url).send().await.ok()?.status();
            (status == 200).then_some(())
        }
    })
    .await?;
    // Plain HTTP on the same port gets no answer it can use.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{http}/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP was answered: {:?}",
        plain.map(|r| r.status())
    );
    // The CLI over gRPC with TLS: trusted through HERALD_CA_FILE, refused without it.
    let url = format!("https://127.0.0.1:{grpc}");
    let ca = cert.display().to_string();
    let trusted = herald_cli_with(&["value", "--url", &url], &[("HERALD_CA_FILE", &ca)]).await?;
    assert!(trusted.status.success(), "{}", text(&trusted));
    let untrusted = cli(None, &["value", "--url", &url]).await?;
    assert!(!untrusted.status.success(), "{}", text(&untrusted));
    Ok(())
}
