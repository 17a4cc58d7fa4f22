//! The chat channels (Teams, Discord, Mattermost, Google Chat, and Slack beside them) as a running
//! stage sends them to real HTTP receivers: each payload checked against its channel's contract and
//! every size limit, an oversized card that must still go out, hostile ticket data that must arrive
//! inert, and channel URLs whose tokens never show in an attempt's error.

use std::time::Duration;

use herald_proto::{
    time::to_timestamp,
    v1::{
        Announcement, AnnouncementKind, Card, CreditedPerson, DeliveryStatus, EventKind, Link,
        ValueLabel, ValueLine,
    },
};
use herald_testkit::{HttpReceiver, InProcess, ReceivedRequest, Reply};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);
const RECORD_LINK: &str = "https://larkspur.service-now.com/incident.do?sys_id=48213";

/// Where each channel posts on the one receiver, the way each vendor's URL looks.
const TEAMS: &str = "/workflows/5f1c/triggers/manual/paths/invoke";
const DISCORD: &str = "/api/webhooks/1234567/DISCORD-TOKEN-abc";
const MATTERMOST: &str = "/hooks/mm7qx3token";
const GOOGLE_CHAT: &str = "/v1/spaces/AAAAsp4ce/messages";
const SLACK: &str = "/services/T000/B000/XXXX";
const CHAT_QUERY: &str = "key=CHAT-KEY-1&token=CHAT-TOKEN-2";

fn announcement(id: &str, card: Card) -> Announcement {
    Announcement {
        id: id.into(),
        kind: AnnouncementKind::HeadlineWin as i32,
        created_at: Some(to_timestamp(chrono::Utc::now())),
        card: Some(card),
        win_id: format!("w-{id}"),
        event_kind: EventKind::IncidentResolved as i32,
        business_service: Some("svc-warehouse".into()),
        team: Some("team-platform".into()),
        value_amount: 216_474.6,
        currency: "EUR".into(),
        corrects: String::new(),
        digest: String::new(),
    }
}

fn card() -> Card {
    Card {
        title: "Warehouse Management restored in 1 h 12 min: 2,040 people back at work".into(),
        summary: "RF scanners cannot confirm picks (INC0048213).".into(),
        value_lines: vec![ValueLine {
            label: ValueLabel::Avoided as i32,
            text: "€216,475 of lost work avoided".into(),
            formula: "people affected × blocked share × working hours saved × loaded hourly rate"
                .into(),
        }],
        people: vec![
            CreditedPerson {
                name: "Ingrid Lindqvist".into(),
                role: "resolved it".into(),
                anonymised: false,
            },
            CreditedPerson {
                name: "a member of Platform SRE".into(),
                role: "worked on it".into(),
                anonymised: true,
            },
        ],
        teams: vec!["Platform SRE".into()],
        links: vec![Link {
            title: "Open INC0048213".into(),
            url: RECORD_LINK.into(),
        }],
        business_service: Some("Warehouse Management".into()),
    }
}

/// A card far beyond every channel's limits: a 5,000-character title, a 10,000-character summary
/// with a 3,000-character quote, 40 people, long formulas and team names.
fn oversized() -> Card {
    let mut card = card();
    card.title = format!("Warehouse 👩🏽‍💻 restored {}", "é".repeat(5000));
    card.summary = format!(
        "{} The requester said: “{}”",
        "Scanners down across three sites. ".repeat(300),
        "Thank you so much, 👍🏽 ".repeat(130)
    );
    assert!(card.title.chars().count() >= 5000 && card.summary.chars().count() >= 13_000);
    card.value_lines = (0..12)
        .map(|i| ValueLine {
            label: ValueLabel::Capacity as i32,
            text: format!("{i}: {} hours given back", "9".repeat(400)),
            formula: "people × hours × rate ".repeat(100),
        })
        .collect();
    card.people = (0..40)
        .map(|i| CreditedPerson {
            name: format!("Person {i} {}", "Lindqvist-Herrera ".repeat(10)),
            role: "worked on it through the night".into(),
            anonymised: false,
        })
        .collect();
    card.teams = (0..8)
        .map(|i| format!("Team {i} {}", "Platform ".repeat(40)))
        .collect();
    card.links = (0..12)
        .map(|i| Link {
            title: format!("Record {i} {}", "R".repeat(300)),
            url: format!("{RECORD_LINK}&n={i}"),
        })
        .collect();
    card
}

/// Notify with one channel of each chat kind, all on `receiver`, each with its own route.
async fn start(receiver: &HttpReceiver) -> anyhow::Result<InProcess> {
    let mut toml = String::from(
        "[notify]\nallow_private_networks = true\nretry_base = \"100ms\"\nretry_max = \"1s\"\n\
         max_attempts = 3\npoll_interval = \"100ms\"\nrequest_timeout = \"2s\"\n",
    );
    for (name, kind, path) in [
        ("teams", "teams", TEAMS.to_string()),
        ("discord", "discord", DISCORD.to_string()),
        ("mattermost", "mattermost", MATTERMOST.to_string()),
        (
            "google-chat",
            "google_chat",
            format!("{GOOGLE_CHAT}?{CHAT_QUERY}"),
        ),
        ("slack", "slack", SLACK.to_string()),
    ] {
        toml.push_str(&format!(
            "[[notify.channels]]\nname = \"{name}\"\nkind = \"{kind}\"\nurl = \"{}\"\n\
             min_interval = \"10ms\"\n\
             [[notify.routes]]\nname = \"to-{name}\"\nchannel = \"{name}\"\n",
            receiver.url(&path)
        ));
    }
    InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await
}

/// The one message each channel got for `announcement`, by channel path.
async fn payloads(
    stage: &InProcess,
    receiver: &HttpReceiver,
    announcement: &Announcement,
) -> anyhow::Result<Vec<(&'static str, ReceivedRequest)>> {
    stage
        .publish(
            "herald.announcements.headline_win",
            &announcement.id,
            announcement,
        )
        .await?;
    let mut out = Vec::new();
    for path in [TEAMS, DISCORD, MATTERMOST, GOOGLE_CHAT, SLACK] {
        let got = receiver.wait_for(path, 1, WAIT).await?;
        out.push((path, got[0].clone()));
    }
    // Every route delivered on its first attempt: the receivers took each payload as valid.
    herald_testkit::eventually("five deliveries", WAIT, || async {
        let list = stage
            .deliveries(&announcement.id, Some(DeliveryStatus::Delivered))
            .await
            .ok()?;
        (list.deliveries.len() == 5).then_some(())
    })
    .await?;
    Ok(out)
}

fn chars(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

fn str_of<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"))
}

/// Every string in a payload, wherever it sits.
pub fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Teams Workflows: a `message` with one Adaptive Card 1.5 attachment, at most 28 KB.
fn check_teams(request: &ReceivedRequest) -> anyhow::Result<Value> {
    assert!(
        request.body.len() <= 28 * 1024,
        "{} bytes",
        request.body.len()
    );
    let json = request.json()?;
    assert_eq!(json["type"], "message");
    let attachments = json["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1);
    assert_eq!(
        attachments[0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let content = &attachments[0]["content"];
    assert_eq!(content["type"], "AdaptiveCard");
    assert_eq!(content["version"], "1.5");
    let body = content["body"].as_array().expect("body");
    assert!(!body.is_empty());
    for element in body {
        match str_of(&element["type"], "element type") {
            "TextBlock" => assert!(!str_of(&element["text"], "text").is_empty()),
            "FactSet" => {
                for fact in element["facts"].as_array().expect("facts") {
                    str_of(&fact["title"], "fact title");
                    str_of(&fact["value"], "fact value");
                }
            }
            other => panic!("unexpected element {other}"),
        }
    }
    Ok(json)
}

/// Discord execute webhook: content ≤ 2,000; embeds with their per-field limits and ≤ 6,000 in
/// all; mentions switched off.
fn check_discord(request: &ReceivedRequest) -> anyhow::Result<Value> {
    let json = request.json()?;
    assert!(chars(&json["content"]) <= 2000);
    assert_eq!(json["allowed_mentions"], serde_json::json!({ "parse": [] }));
    let embeds = json["embeds"].as_array().expect("embeds");
    assert!(!embeds.is_empty() && embeds.len() <= 10);
    let mut total = 0;
    for embed in embeds {
        let title = chars(&embed["title"]);
        let description = chars(&embed["description"]);
        let footer = chars(&embed["footer"]["text"]);
        assert!(title > 0 && title <= 256, "title {title}");
        assert!(description <= 4096, "description {description}");
        assert!(footer <= 2048, "footer {footer}");
        total += title + description + footer + chars(&embed["author"]["name"]);
        let fields = embed["fields"].as_array().expect("fields");
        assert!(fields.len() <= 25, "{} fields", fields.len());
        for field in fields {
            let (name, value) = (chars(&field["name"]), chars(&field["value"]));
            assert!(name > 0 && name <= 256, "field name {name}");
            assert!(value > 0 && value <= 1024, "field value {value}");
            total += name + value;
        }
        if let Some(url) = embed["url"].as_str() {
            assert!(url.starts_with("https://") || url.starts_with("http://"));
        }
    }
    assert!(total <= 6000, "{total} characters across embeds");
    Ok(json)
}

/// Mattermost incoming webhook: Markdown `text` within the 4,000 characters every server takes.
fn check_mattermost(request: &ReceivedRequest) -> anyhow::Result<Value> {
    let json = request.json()?;
    let text = str_of(&json["text"], "text");
    assert!(
        !text.is_empty() && text.chars().count() <= 4000,
        "{}",
        text.chars().count()
    );
    Ok(json)
}

/// Google Chat: cardsV2 with a header and sections, ≤ 32,000 bytes, the announcement id as
/// `requestId`, the URL's key and token kept.
fn check_google_chat(request: &ReceivedRequest, announcement: &str) -> anyhow::Result<Value> {
    assert!(request.body.len() <= 32_000, "{} bytes", request.body.len());
    assert_eq!(
        request.query_param("requestId").as_deref(),
        Some(announcement)
    );
    assert_eq!(request.query_param("key").as_deref(), Some("CHAT-KEY-1"));
    assert_eq!(
        request.query_param("token").as_deref(),
        Some("CHAT-TOKEN-2")
    );
    let json = request.json()?;
    let cards = json["cardsV2"].as_array().expect("cardsV2");
    assert_eq!(cards.len(), 1);
    assert!(!str_of(&cards[0]["cardId"], "cardId").is_empty());
    let card = &cards[0]["card"];
    assert!(!str_of(&card["header"]["title"], "header title").is_empty());
    let sections = card["sections"].as_array().expect("sections");
    assert!(!sections.is_empty());
    for section in sections {
        assert!(!section["widgets"].as_array().expect("widgets").is_empty());
    }
    // Nothing opts into Markdown: card text is Chat's HTML subset, escaped.
    assert!(!request.text().contains("textSyntax"));
    Ok(json)
}

fn check(path: &str, request: &ReceivedRequest, announcement: &str) -> anyhow::Result<Value> {
    match path {
        TEAMS => check_teams(request),
        DISCORD => check_discord(request),
        MATTERMOST => check_mattermost(request),
        GOOGLE_CHAT => check_google_chat(request, announcement),
        _ => Ok(request.json()?),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_chat_channel_gets_the_card_in_its_own_format() -> anyhow::Result<()> {
    let receiver = HttpReceiver::start().await?;
    let stage = start(&receiver).await?;
    let a = announcement("a-chat-1", card());
    for (path, request) in payloads(&stage, &receiver, &a).await? {
        let json = check(path, &request, &a.id)?;
        let mut all = Vec::new();
        strings(&json, &mut all);
        let text = all.join("\n");
        // Title, value with its label's meaning and formula, people, the team and the record.
        for expected in [
            "Warehouse Management restored in 1 h 12 min",
            "216,475 of lost work avoided",
            "cost that did not have to be paid",
            "blocked share",
            "Ingrid Lindqvist",
            "a member of Platform SRE",
            "Platform SRE",
            "larkspur.service-now.com/incident.do",
        ] {
            assert!(text.contains(expected), "{path} lacks {expected:?}: {text}");
        }
    }
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_card_still_goes_out_within_every_limit() -> anyhow::Result<()> {
    let receiver = HttpReceiver::start().await?;
    let stage = start(&receiver).await?;
    let a = announcement("a-chat-huge", oversized());
    for (path, request) in payloads(&stage, &receiver, &a).await? {
        let json = check(path, &request, &a.id)?;
        let text = json.to_string();
        // Cut, not dropped: the start of the title is there, and the cut is shown.
        assert!(text.contains("Warehouse"), "{path}: {text}");
        assert!(
            text.contains('…'),
            "{path}: no ellipsis where the text was cut"
        );
        // No grapheme was split: the emoji with its skin tone is whole wherever its first half is.
        let mut all = Vec::new();
        strings(&json, &mut all);
        for s in &all {
            for (i, _) in s.match_indices('👍') {
                assert!(s[i..].starts_with("👍🏽"), "{path}: split emoji in {s:?}");
            }
            for (i, _) in s.match_indices('👩') {
                assert!(s[i..].starts_with("👩🏽‍💻"), "{path}: split emoji in {s:?}");
            }
        }
    }
    stage.stop().await
}

const HOSTILE: &str = "<!channel> @everyone @here <@123> <script>alert(1)</script> \
                       [x](http://evil) *bold* _it_ `code` & <users/all>";

/// Mentions, markup and links that must appear in no channel as they were written.
const LIVE: [&str; 5] = [
    "<!channel>",
    "<script>",
    "<users/all>",
    "javascript:",
    "<@123>",
];

/// Markdown that Teams, Discord and Mattermost would act on. (Slack's mrkdwn and Google Chat's
/// HTML have no `[text](url)` links, and their renderers keep `*` and `_` as they are.)
const LIVE_MARKDOWN: [&str; 4] = ["[x](http://evil)", "*bold*", "_it_", "`code`"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ticket_data_arrives_inert_in_every_channel() -> anyhow::Result<()> {
    let receiver = HttpReceiver::start().await?;
    let stage = start(&receiver).await?;
    let mut card = card();
    card.title = format!("Restored {HOSTILE}");
    card.summary = HOSTILE.into();
    card.value_lines[0].text = HOSTILE.into();
    card.value_lines[0].formula = HOSTILE.into();
    card.people[0].name = HOSTILE.into();
    card.people[0].role = HOSTILE.into();
    card.teams = vec![HOSTILE.into()];
    card.links = vec![
        Link {
            title: HOSTILE.into(),
            url: RECORD_LINK.into(),
        },
        Link {
            title: "run me".into(),
            url: "javascript:alert(1)".into(),
        },
    ];
    let a = announcement("a-chat-hostile", card);
    for (path, request) in payloads(&stage, &receiver, &a).await? {
        let json = check(path, &request, &a.id)?;
        let mut all = Vec::new();
        strings(&json, &mut all);
        assert!(
            all.iter().any(|s| s.contains("alert")),
            "{path}: the text is shown"
        );
        for s in &all {
            for live in LIVE {
                assert!(!s.contains(live), "{path}: {live} live in {s:?}");
            }
            match path {
                // Mentions are written with `@` in Discord and Mattermost: never one left whole.
                DISCORD | MATTERMOST => {
                    for mention in ["@everyone", "@here", "@123"] {
                        assert!(!s.contains(mention), "{path}: {mention} in {s:?}");
                    }
                }
                _ => {}
            }
            match path {
                // Markdown channels: the only link is Herald's own, to the record.
                TEAMS | DISCORD | MATTERMOST => {
                    for live in LIVE_MARKDOWN {
                        assert!(!s.contains(live), "{path}: {live} live in {s:?}");
                    }
                    for (i, _) in s.match_indices("](") {
                        assert!(
                            s[..i].ends_with('\\')
                                || s[i..].starts_with("](https://larkspur.service-now.com/"),
                            "{path}: a link from ticket data in {s:?}"
                        );
                    }
                    if path == MATTERMOST {
                        // Mattermost reads Slack's `<!channel>` and `<url|text>`: no `<` at all.
                        assert!(!s.contains('<'), "{path}: {s:?}");
                    }
                }
                // HTML channels: the only tags are Herald's own.
                GOOGLE_CHAT => {
                    for (i, _) in s.match_indices('<') {
                        let tag = &s[i..];
                        assert!(
                            [
                                "<b>",
                                "</b>",
                                "<a href=\"https://larkspur.service-now.com/",
                                "</a>"
                            ]
                            .iter()
                            .any(|t| tag.starts_with(t)),
                            "{path}: markup from ticket data in {s:?}"
                        );
                    }
                }
                // Slack: the only control sequence is Herald's own link to the record.
                _ => {
                    for (i, _) in s.match_indices('<') {
                        assert!(
                            s[i..].starts_with("<https://larkspur.service-now.com/"),
                            "{path}: control sequence from ticket data in {s:?}"
                        );
                    }
                }
            }
        }
    }
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_url_token_never_shows_in_an_attempt_error() -> anyhow::Result<()> {
    // A Google Chat space nobody listens on, and a Discord webhook that answers with its own URL.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?
    };
    let discord = HttpReceiver::start().await?;
    discord.script([Reply::status(400).with_body(&format!(
        "{{\"message\": \"Unknown Webhook\", \"url\": \"{}\"}}",
        discord.url(DISCORD)
    ))]);
    let toml = format!(
        "[notify]\nallow_private_networks = true\nretry_base = \"50ms\"\nretry_max = \"200ms\"\n\
         max_attempts = 2\npoll_interval = \"100ms\"\nrequest_timeout = \"2s\"\n\
         [[notify.channels]]\nname = \"chat\"\nkind = \"google_chat\"\n\
         url = \"http://{closed}{GOOGLE_CHAT}?{CHAT_QUERY}\"\n\
         [[notify.channels]]\nname = \"discord\"\nkind = \"discord\"\nurl = \"{}\"\n\
         [[notify.routes]]\nname = \"to-chat\"\nchannel = \"chat\"\n\
         [[notify.routes]]\nname = \"to-discord\"\nchannel = \"discord\"\n",
        discord.url(DISCORD)
    );
    let stage = InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await?;
    let a = announcement("a-chat-secret", card());
    stage
        .publish("herald.announcements.headline_win", &a.id, &a)
        .await?;
    let failed = herald_testkit::eventually("both deliveries failed", WAIT, || async {
        let list = stage
            .deliveries(&a.id, Some(DeliveryStatus::Failed))
            .await
            .ok()?;
        (list.deliveries.len() == 2).then_some(list.deliveries)
    })
    .await?;
    for delivery in &failed {
        let mut errors = vec![delivery.last_error.clone()];
        errors.extend(delivery.attempt_log.iter().map(|a| a.error.clone()));
        assert!(errors.iter().all(|e| !e.is_empty()), "{delivery:?}");
        for error in &errors {
            for secret in [
                "CHAT-KEY-1",
                "CHAT-TOKEN-2",
                "AAAAsp4ce",
                "DISCORD-TOKEN-abc",
                "1234567",
            ] {
                assert!(
                    !error.contains(secret),
                    "{} shows {secret}: {error}",
                    delivery.route
                );
            }
        }
        match delivery.route.as_str() {
            // Unreachable: tried again, then given up, each error naming the redacted address.
            "to-chat" => {
                assert_eq!(delivery.attempts, 2);
                assert!(
                    errors[0].contains(&format!("http://{closed}/v1/…")),
                    "{}",
                    errors[0]
                );
            }
            // A 400 is final; the answer is kept, without the token it echoed.
            _ => {
                assert_eq!(delivery.attempts, 1);
                assert!(errors[0].contains("HTTP 400"), "{}", errors[0]);
                assert!(errors[0].contains("Unknown Webhook"), "{}", errors[0]);
            }
        }
    }
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_is_paced_by_its_rate_limit_headers() -> anyhow::Result<()> {
    let receiver = HttpReceiver::start().await?;
    // The first answer says the bucket is empty for 1.5 s; the channel's own pace is 10 ms.
    receiver.script([Reply::status(204)
        .with_header("x-ratelimit-limit", "5")
        .with_header("x-ratelimit-remaining", "0")
        .with_header("x-ratelimit-reset-after", "1.5")]);
    let toml = format!(
        "[notify]\nallow_private_networks = true\npoll_interval = \"100ms\"\n\
         request_timeout = \"3s\"\n\
         [[notify.channels]]\nname = \"discord\"\nkind = \"discord\"\nurl = \"{}\"\n\
         min_interval = \"10ms\"\n\
         [[notify.routes]]\nname = \"to-discord\"\nchannel = \"discord\"\n",
        receiver.url(DISCORD)
    );
    let stage = InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await?;
    for id in ["a-rate-1", "a-rate-2"] {
        let a = announcement(id, card());
        stage
            .publish("herald.announcements.headline_win", id, &a)
            .await?;
    }
    let got = receiver.wait_for(DISCORD, 2, WAIT).await?;
    let gap = got[1].received_at - got[0].received_at;
    assert!(
        gap >= Duration::from_millis(1400),
        "the second message did not wait for the bucket to refill: {gap:?}"
    );
    stage.stop().await
}
