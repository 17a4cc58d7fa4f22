//! E-mail against a real SMTP server (the test kit's aiosmtpd sink): multipart/alternative with
//! text before HTML, `Auto-Submitted`, a Message-ID stable per announcement, every recipient; 451
//! retried and 550 final; a relay on a private address refused unless allowed.

use std::time::Duration;

use base64::Engine;
use herald_proto::{
    time::to_timestamp,
    v1::{
        Announcement, AnnouncementKind, Card, CreditedPerson, DeliveryStatus, EventKind, Link,
        ValueLabel, ValueLine,
    },
};
use herald_testkit::{InProcess, SinkTls, SmtpSink};

const WAIT: Duration = Duration::from_secs(20);

fn announcement(id: &str) -> Announcement {
    Announcement {
        id: id.into(),
        kind: AnnouncementKind::HeadlineWin as i32,
        created_at: Some(to_timestamp(chrono::Utc::now())),
        card: Some(Card {
            title: "Warehouse Management restored <fast> & well".into(),
            summary: "RF scanners cannot confirm picks.".into(),
            value_lines: vec![ValueLine {
                label: ValueLabel::Avoided as i32,
                text: "216,475 EUR of lost work avoided".into(),
                formula: "people x share x hours x rate".into(),
            }],
            people: vec![CreditedPerson {
                name: "Ingrid Lindqvist".into(),
                role: "resolved it".into(),
                anonymised: false,
            }],
            teams: vec!["Platform SRE".into()],
            links: vec![Link {
                title: "Open INC0048213".into(),
                url: "https://larkspur.service-now.com/incident.do".into(),
            }],
            business_service: None,
        }),
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

fn channel(name: &str, sink: &SmtpSink) -> String {
    format!(
        "[[notify.channels]]\nname = \"{name}\"\nkind = \"email\"\nhost = \"127.0.0.1\"\n\
         port = {}\ntls = \"none\"\nfrom = \"Herald <herald@larkspur.example>\"\n\
         to = [\"it-wins@larkspur.example\", \"Ana Cruz <ana@larkspur.example>\"]\n\
         [[notify.routes]]\nname = \"to-{name}\"\nchannel = \"{name}\"\n",
        sink.port()
    )
}

fn settings(allow_private: bool) -> String {
    format!(
        "[notify]\nallow_private_networks = {allow_private}\nretry_base = \"100ms\"\n\
         retry_max = \"1s\"\nmax_attempts = 3\npoll_interval = \"100ms\"\nrequest_timeout = \"5s\"\n"
    )
}

/// The decoded body of the part whose Content-Type starts with `content_type`, and where it starts.
fn part(message: &str, content_type: &str) -> Option<(usize, String)> {
    let at = message.find(&format!("Content-Type: {content_type}"))?;
    let rest = &message[at..];
    let body_start = rest.find("\r\n\r\n")? + 4;
    let headers = &rest[..body_start];
    let body = &rest[body_start..];
    let body = &body[..body.find("\r\n--").unwrap_or(body.len())];
    let decoded = if headers.contains("Content-Transfer-Encoding: base64") {
        let joined: String = body.split_whitespace().collect();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(joined)
                .ok()?,
        )
        .ok()?
    } else if headers.contains("Content-Transfer-Encoding: quoted-printable") {
        let unwrapped = body.replace("=\r\n", "");
        let bytes = unwrapped.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && let Some(Ok(b)) = unwrapped
                    .get(i + 1..i + 3)
                    .map(|hex| u8::from_str_radix(hex, 16))
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8(out).ok()?
    } else {
        body.to_string()
    };
    Some((at, decoded))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_is_mailed_as_text_then_html_to_every_recipient() -> anyhow::Result<()> {
    let sink = SmtpSink::start().await?;
    let toml = format!("{}{}", settings(true), channel("mail", &sink));
    let stage = InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await?;
    let a = announcement("a-mail-1");
    stage
        .publish("herald.announcements.headline_win", &a.id, &a)
        .await?;
    let exchanges = sink.wait_for(1, WAIT).await?;
    let exchange = &exchanges[0];
    assert_eq!(exchange.from, "herald@larkspur.example");
    let mut to = exchange.to.clone();
    to.sort();
    assert_eq!(to, vec!["ana@larkspur.example", "it-wins@larkspur.example"]);
    let message = exchange.message.clone().expect("accepted");
    assert!(
        message.contains("Auto-Submitted: auto-generated"),
        "{message}"
    );
    assert!(
        message.contains("Message-ID: <a-mail-1.herald@larkspur.example>"),
        "{message}"
    );
    assert!(
        message.contains("Content-Type: multipart/alternative"),
        "{message}"
    );
    let (text_at, text) = part(&message, "text/plain").expect("a text part");
    let (html_at, html) = part(&message, "text/html").expect("an HTML part");
    assert!(text_at < html_at, "text comes before HTML");
    for body in [&text, &html] {
        for expected in [
            "216,475 EUR of lost work avoided",
            "cost that did not have to be paid",
            "people x share x hours x rate",
            "Ingrid Lindqvist",
            "Platform SRE",
            "https://larkspur.service-now.com/incident.do",
        ] {
            assert!(body.contains(expected), "{expected} missing from {body}");
        }
    }
    assert!(text.contains("restored <fast> & well"), "{text}");
    assert!(html.contains("restored &lt;fast&gt; &amp; well"), "{html}");
    let delivered = stage
        .first_delivery(&a.id, DeliveryStatus::Delivered, WAIT)
        .await?;
    assert_eq!(delivered.attempt_log.len(), 1);
    assert_eq!(
        delivered.attempt_log[0].outcome,
        "accepted by the SMTP relay"
    );
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_451_is_retried_and_550_is_final() -> anyhow::Result<()> {
    let busy = SmtpSink::with_replies(&["451 4.3.0 Try again later"]).await?;
    let refusing = SmtpSink::with_replies(&["550 5.1.1 Mailbox unavailable"]).await?;
    let toml = format!(
        "{}{}{}",
        settings(true),
        channel("busy", &busy),
        channel("refusing", &refusing)
    );
    let stage = InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await?;
    let a = announcement("a-mail-2");
    stage
        .publish("herald.announcements.headline_win", &a.id, &a)
        .await?;
    let delivered = herald_testkit::eventually("the 451 retried and delivered", WAIT, || async {
        let list = stage
            .deliveries(&a.id, Some(DeliveryStatus::Delivered))
            .await
            .ok()?;
        list.deliveries.into_iter().find(|d| d.route == "to-busy")
    })
    .await?;
    assert_eq!(delivered.attempt_log.len(), 2, "{delivered:?}");
    assert!(
        delivered.attempt_log[0].error.contains("451"),
        "{}",
        delivered.attempt_log[0].error
    );
    let busy_seen = busy.wait_for(2, WAIT).await?;
    assert!(busy_seen[0].reply.starts_with("451") && busy_seen[1].reply.starts_with("250"));
    // The Message-ID is the same on the retry, so a relay or reader can tell it is one message.
    assert!(
        busy_seen[1]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("Message-ID: <a-mail-2.herald@larkspur.example>"))
    );

    let failed = herald_testkit::eventually("the 550 final", WAIT, || async {
        let list = stage
            .deliveries(&a.id, Some(DeliveryStatus::Failed))
            .await
            .ok()?;
        list.deliveries
            .into_iter()
            .find(|d| d.route == "to-refusing")
    })
    .await?;
    assert_eq!(failed.attempts, 1, "a 550 is not retried");
    assert!(failed.next_attempt_at.is_none(), "{failed:?}");
    assert!(failed.last_error.contains("550"), "{}", failed.last_error);
    assert_eq!(refusing.exchanges().len(), 1);
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_on_a_private_address_is_refused_unless_allowed() -> anyhow::Result<()> {
    let sink = SmtpSink::start().await?;
    let toml = format!("{}{}", settings(false), channel("mail", &sink));
    let stage = InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await?;
    let a = announcement("a-mail-3");
    stage
        .publish("herald.announcements.headline_win", &a.id, &a)
        .await?;
    let failed = stage
        .first_delivery(&a.id, DeliveryStatus::Failed, WAIT)
        .await?;
    assert_eq!(failed.attempts, 1);
    assert!(
        failed.last_error.contains("private or reserved"),
        "{}",
        failed.last_error
    );
    assert!(sink.exchanges().is_empty(), "nothing reached the relay");
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_over_starttls_and_implicit_tls_to_a_relay_with_its_own_ca() -> anyhow::Result<()>
{
    let starttls = SmtpSink::with_tls(SinkTls::Starttls).await?;
    let implicit = SmtpSink::with_tls(SinkTls::Implicit).await?;
    let mut toml = settings(true);
    for (name, sink, tls) in [
        ("starttls", &starttls, "starttls"),
        ("implicit", &implicit, "implicit"),
    ] {
        toml.push_str(&format!(
            "[[notify.channels]]\nname = \"{name}\"\nkind = \"email\"\nhost = \"127.0.0.1\"\n\
             port = {}\ntls = \"{tls}\"\nca = {:?}\nfrom = \"herald@larkspur.example\"\n\
             to = [\"it-wins@larkspur.example\"]\n\
             [[notify.routes]]\nname = \"to-{name}\"\nchannel = \"{name}\"\n",
            sink.port(),
            sink.ca().display().to_string(),
        ));
    }
    let stage = InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await?;
    let a = announcement("a-mail-tls");
    stage
        .publish("herald.announcements.headline_win", &a.id, &a)
        .await?;
    // The STARTTLS sink refuses MAIL before STARTTLS, and the implicit one speaks only TLS: a
    // message there went over TLS, verified against the channel's CA.
    for sink in [&starttls, &implicit] {
        let got = sink.wait_for(1, WAIT).await?;
        assert!(got[0].reply.starts_with("250"), "{:?}", got[0]);
        assert!(
            got[0]
                .message
                .as_deref()
                .is_some_and(|m| m.contains("Message-ID: <a-mail-tls.herald@larkspur.example>"))
        );
    }
    herald_testkit::eventually("both delivered", WAIT, || async {
        let list = stage
            .deliveries(&a.id, Some(DeliveryStatus::Delivered))
            .await
            .ok()?;
        (list.deliveries.len() == 2).then_some(())
    })
    .await?;
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_certificate_is_not_trusted_gets_nothing() -> anyhow::Result<()> {
    let sink = SmtpSink::with_tls(SinkTls::Implicit).await?;
    let toml = format!(
        "{}[[notify.channels]]\nname = \"mail\"\nkind = \"email\"\nhost = \"127.0.0.1\"\n\
         port = {}\ntls = \"implicit\"\nfrom = \"herald@larkspur.example\"\n\
         to = [\"it-wins@larkspur.example\"]\n\
         [[notify.routes]]\nname = \"to-mail\"\nchannel = \"mail\"\n",
        settings(true),
        sink.port()
    );
    let stage = InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await?;
    let a = announcement("a-mail-untrusted");
    stage
        .publish("herald.announcements.headline_win", &a.id, &a)
        .await?;
    let delivery = herald_testkit::eventually("attempted", WAIT, || async {
        let list = stage.deliveries(&a.id, None).await.ok()?;
        list.deliveries
            .into_iter()
            .find(|d| !d.attempt_log.is_empty())
    })
    .await?;
    assert_ne!(delivery.status, DeliveryStatus::Delivered as i32);
    assert!(
        delivery.last_error.contains("invalid peer certificate"),
        "{}",
        delivery.last_error
    );
    assert!(sink.exchanges().is_empty());
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ticket_data_adds_no_header_recipient_or_markup_to_a_mail() -> anyhow::Result<()> {
    let sink = SmtpSink::start().await?;
    let toml = format!("{}{}", settings(true), channel("mail", &sink));
    let stage = InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await?;
    let mut a = announcement("a-mail-hostile");
    let hostile = "Restored\r\nBcc: victim@evil.example\r\n\r\n<script>alert(1)</script> \
                   <a href=\"http://evil\">x</a> [x](http://evil)";
    if let Some(card) = a.card.as_mut() {
        card.title = hostile.into();
        card.summary = hostile.into();
        card.people[0].name = hostile.into();
        card.links.push(Link {
            title: hostile.into(),
            url: "javascript:alert(1)".into(),
        });
    }
    stage
        .publish("herald.announcements.headline_win", &a.id, &a)
        .await?;
    let got = sink.wait_for(1, WAIT).await?;
    let mut to = got[0].to.clone();
    to.sort();
    assert_eq!(
        to,
        vec!["ana@larkspur.example", "it-wins@larkspur.example"],
        "a recipient came from ticket data"
    );
    let message = got[0].message.clone().expect("accepted");
    let headers = &message[..message.find("\r\n\r\n").expect("headers end")];
    assert!(
        !headers.to_lowercase().contains("\r\nbcc:"),
        "a header came from ticket data: {headers}"
    );
    let (_, html) = part(&message, "text/html").expect("an HTML part");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    for live in ["<script>", "<a href=\"http://evil\"", "javascript:"] {
        assert!(!html.contains(live), "{live} live in {html}");
    }
    // The only link is Herald's own, to the record.
    for (i, _) in html.match_indices("<a ") {
        assert!(
            html[i..].starts_with("<a href=\"https://larkspur.service-now.com/"),
            "{html}"
        );
    }
    stage.stop().await
}

/// Notify mailing to a catalog team, a catalog person and a list, with unsubscribe links.
async fn start_with_catalog_recipients(sink: &SmtpSink) -> anyhow::Result<InProcess> {
    let catalog = herald_testkit::fixtures_dir().join("catalog.toml");
    let toml = format!(
        "[catalog]\npath = {catalog:?}\n{}public_url = \"https://herald.larkspur.example/\"\n\
         unsubscribe_secret = \"a-long-random-unsubscribe-key\"\n\
         [[notify.channels]]\nname = \"mail\"\nkind = \"email\"\nhost = \"127.0.0.1\"\n\
         port = {}\ntls = \"none\"\nfrom = \"Herald <herald@larkspur.example>\"\n\
         to = [\"team:team-service-desk\", \"person:p-tomas-herrera\", \"it-wins@larkspur.example\"]\n\
         [[notify.routes]]\nname = \"to-mail\"\nchannel = \"mail\"\n",
        settings(true),
        sink.port(),
        catalog = catalog.display().to_string(),
    );
    InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await
}

fn digest(id: &str) -> Announcement {
    let mut a = announcement(id);
    a.kind = AnnouncementKind::Digest as i32;
    if let Some(card) = a.card.as_mut() {
        card.title = "Your week in IT: 12 wins, 340 hours given back".into();
    }
    a
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .split("\r\n\r\n")
        .next()?
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipients_come_from_the_catalog_and_a_digest_can_be_left_in_one_click()
-> anyhow::Result<()> {
    let sink = SmtpSink::start().await?;
    let stage = start_with_catalog_recipients(&sink).await?;
    let everyone = [
        "amara.okafor@larkspur.example",
        "it-wins@larkspur.example",
        "sofia.rossi@larkspur.example",
        "tomas.herrera@larkspur.example",
    ];

    // A win: one message to the team's members, the person and the list; no unsubscribe.
    let win = announcement("a-catalog-1");
    stage
        .publish("herald.announcements.headline_win", &win.id, &win)
        .await?;
    let first = sink.wait_for(1, WAIT).await?;
    let mut to = first[0].to.clone();
    to.sort();
    assert_eq!(to, everyone);
    let message = first[0].message.clone().expect("accepted");
    assert!(header(&message, "List-Unsubscribe").is_none(), "{message}");

    // A digest: one message each, each with its own one-click unsubscribe link.
    let week = digest("digest-week-1");
    stage
        .publish("herald.announcements.digest", &week.id, &week)
        .await?;
    let exchanges = sink.wait_for(5, WAIT).await?;
    let digests = &exchanges[1..];
    let mut to: Vec<String> = digests.iter().flat_map(|e| e.to.clone()).collect();
    to.sort();
    assert_eq!(to, everyone, "one message per recipient");
    let sofia = digests
        .iter()
        .find(|e| e.to == ["sofia.rossi@larkspur.example"])
        .and_then(|e| e.message.clone())
        .expect("Sofia's digest");
    let link = header(&sofia, "List-Unsubscribe")
        .and_then(|v| v.strip_prefix('<')?.strip_suffix('>'))
        .expect("List-Unsubscribe")
        .to_string();
    assert_eq!(
        header(&sofia, "List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        link.starts_with("https://herald.larkspur.example/unsubscribe?"),
        "{link}"
    );
    let (_, text) = part(&sofia, "text/plain").expect("text part");
    assert!(text.contains(&link), "the link is in the body too: {text}");
    let ids: std::collections::HashSet<_> = digests
        .iter()
        .filter_map(|e| e.message.as_deref().and_then(|m| header(m, "Message-ID")))
        .collect();
    assert_eq!(
        ids.len(),
        4,
        "each recipient's digest has its own Message-ID"
    );

    // The link on this notify: opening it changes nothing, a forged one is refused, the one-click
    // POST records the opt-out.
    let query = link.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let local = format!("{}/unsubscribe?{query}", stage.http);
    let client = reqwest::Client::new();
    let page = client.get(&local).send().await?;
    assert_eq!(page.status(), 200);
    assert!(page.text().await?.contains("sofia.rossi@larkspur.example"));
    let forged = local.replace("&s=", "&s=0");
    let refused = client
        .post(&forged)
        .body("List-Unsubscribe=One-Click")
        .send()
        .await?;
    assert_eq!(refused.status(), 400);
    let done = client
        .post(&local)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await?;
    assert_eq!(done.status(), 200);

    // The next digest goes to everyone but Sofia; a win still reaches her.
    let next = digest("digest-week-2");
    stage
        .publish("herald.announcements.digest", &next.id, &next)
        .await?;
    let delivered = stage
        .first_delivery(&next.id, DeliveryStatus::Delivered, WAIT)
        .await?;
    assert!(
        delivered.attempt_log[0]
            .answer
            .contains("mailed to 3 recipient(s); 1 unsubscribed"),
        "{:?}",
        delivered.attempt_log
    );
    let all = sink.exchanges();
    let second: Vec<String> = all[5..].iter().flat_map(|e| e.to.clone()).collect();
    assert_eq!(second.len(), 3, "{second:?}");
    assert!(!second.iter().any(|t| t.starts_with("sofia")), "{second:?}");
    stage.stop().await
}

/// A prompt names people nobody recognised lately: it reaches their team's lead and nobody else,
/// even when the route's channel also lists a team and a mailing list, and routes that do not ask
/// for prompts never carry one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_reaches_the_teams_lead_and_nobody_else() -> anyhow::Result<()> {
    let sink = SmtpSink::start().await?;
    let catalog = herald_testkit::fixtures_dir().join("catalog.toml");
    let mail = |name: &str, to: &str| {
        format!(
            "[[notify.channels]]\nname = \"{name}\"\nkind = \"email\"\nhost = \"127.0.0.1\"\n\
             port = {}\ntls = \"none\"\nfrom = \"Herald <herald@larkspur.example>\"\nto = {to}\n",
            sink.port()
        )
    };
    let toml = format!(
        "[catalog]\npath = {catalog:?}\n{}{}{}\
         [[notify.routes]]\nname = \"leads\"\nkinds = [\"prompt\"]\nchannel = \"leads\"\n\
         [[notify.routes]]\nname = \"everything\"\nchannel = \"list\"\n",
        settings(true),
        mail(
            "leads",
            "[\"lead\", \"team:team-service-desk\", \"it-wins@larkspur.example\"]"
        ),
        mail("list", "[\"it-wins@larkspur.example\"]"),
        catalog = catalog.display().to_string(),
    );
    let stage = InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await?;
    let mut prompt = announcement("p-desk-1");
    prompt.kind = AnnouncementKind::Prompt as i32;
    prompt.team = Some("team-service-desk".into());
    if let Some(card) = prompt.card.as_mut() {
        card.title = "1 person in Service Desk has had no recognised win for 4 weeks".into();
        card.summary = "Amara Okafor".into();
    }
    stage
        .publish("herald.announcements.prompt", &prompt.id, &prompt)
        .await?;
    let exchanges = sink.wait_for(1, WAIT).await?;
    assert_eq!(
        exchanges[0].to,
        ["sofia.rossi@larkspur.example"],
        "the lead only"
    );
    // A win published after it goes through the kind-less route: by then the prompt would have
    // been delivered there too, had that route taken it.
    let win = announcement("a-after-prompt");
    stage
        .publish("herald.announcements.headline_win", &win.id, &win)
        .await?;
    let exchanges = sink.wait_for(2, WAIT).await?;
    assert_eq!(exchanges[1].to, ["it-wins@larkspur.example"]);
    let deliveries = stage.deliveries(&prompt.id, None).await?.deliveries;
    let routes: Vec<&str> = deliveries.iter().map(|d| d.route.as_str()).collect();
    assert_eq!(routes, ["leads"], "one delivery, on the route that asked");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.exchanges().len(), 2, "nothing else was mailed");
    stage.stop().await
}
