//! One delivery attempt to one channel, and what its answer means for retrying.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::Utc;
use herald_proto::v1::Announcement;

use crate::{
    attempt::AttemptOutcome,
    config::{ChannelConfig, ChannelKind},
    egress, local, mail, render, signing,
};

/// How much of a receiver's answer an attempt keeps.
pub const ANSWER_CHARS: usize = 200;

pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
    /// Channels whose receiver said its rate-limit bucket is empty, and when it refills (Discord's
    /// `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset-After`).
    refill: Mutex<HashMap<String, tokio::time::Instant>>,
    /// E-mail recipients from the catalog and digest opt-outs; without it, only the addresses
    /// written in a channel's `to`.
    addressing: Option<mail::Addressing>,
}

/// When a receiver's rate-limit headers say the next message must wait: the bucket is empty
/// (`X-RateLimit-Remaining: 0`) and refills after `X-RateLimit-Reset-After` seconds.
pub fn bucket_refill(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-ratelimit-remaining")?.trim() != "0" {
        return None;
    }
    let seconds: f64 = header("x-ratelimit-reset-after")?.trim().parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&Utc) - Utc::now())
        .to_std()
        .ok()
        .or(Some(Duration::ZERO))
}

impl Sender {
    pub fn new(allow_private: bool, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: egress::client(allow_private, timeout)?,
            allow_private,
            timeout,
            refill: Mutex::default(),
            addressing: None,
        })
    }

    /// Reads e-mail recipients from the catalog and honours digest opt-outs.
    pub fn with_addressing(mut self, addressing: mail::Addressing) -> Self {
        self.addressing = Some(addressing);
        self
    }

    /// Sends `announcement` to `channel`; `delivery_id` is the stable `webhook-id`, the same on
    /// every retry, so receivers can drop a repeat.
    pub async fn send(
        &self,
        channel: &ChannelConfig,
        delivery_id: &str,
        announcement: &Announcement,
    ) -> (AttemptOutcome, Duration) {
        let started = Instant::now();
        let outcome = self.attempt(channel, delivery_id, announcement).await;
        (outcome, started.elapsed())
    }

    async fn attempt(
        &self,
        channel: &ChannelConfig,
        delivery_id: &str,
        announcement: &Announcement,
    ) -> AttemptOutcome {
        match channel.kind {
            ChannelKind::Console => return local::to_console(announcement),
            ChannelKind::File => return local::to_file(channel, announcement).await,
            ChannelKind::Email => {
                return mail::deliver(
                    channel,
                    announcement,
                    self.addressing.as_ref(),
                    self.allow_private,
                    self.timeout,
                )
                .await;
            }
            _ => {}
        }
        let Some(url) = &channel.url else {
            return AttemptOutcome::Failed {
                status: None,
                error: "channel has no url".into(),
            };
        };
        let mut url = match url::Url::parse(url.expose()) {
            Ok(url) => url,
            Err(e) => {
                return AttemptOutcome::Failed {
                    status: None,
                    error: format!("channel url is invalid: {e}"),
                };
            }
        };
        if let Err(error) = egress::check_literal(&url, self.allow_private) {
            return AttemptOutcome::Failed {
                status: None,
                error,
            };
        }
        // Kept before the URL changes, to scrub its secret parts from any answer we record.
        let secrets = secret_parts(&url);
        let now = Utc::now();
        let card = announcement.card.clone().unwrap_or_default();
        let body = match channel.kind {
            ChannelKind::Slack => render::slack::render(&card),
            ChannelKind::Teams => render::teams::render(&card),
            ChannelKind::Discord => render::discord::render(&card),
            ChannelKind::Mattermost => render::mattermost::render(&card),
            ChannelKind::GoogleChat => {
                // Chat returns the message already created for a request id it has seen, so a
                // retry after a lost answer posts nothing twice.
                if !url.query_pairs().any(|(k, _)| k == "requestId") {
                    url.query_pairs_mut()
                        .append_pair("requestId", &announcement.id);
                }
                render::google_chat::render(&card)
            }
            // Email, the console and files returned above.
            ChannelKind::Webhook
            | ChannelKind::Email
            | ChannelKind::Console
            | ChannelKind::File => render::webhook::render(announcement, now),
        };
        let body = match serde_json::to_vec(&body) {
            Ok(body) => body,
            Err(e) => {
                return AttemptOutcome::Failed {
                    status: None,
                    error: format!("cannot encode the message: {e}"),
                };
            }
        };
        let destination = egress::redacted(&url);
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if channel.kind == ChannelKind::Webhook {
            let timestamp = now.timestamp();
            request = request
                .header("webhook-id", delivery_id)
                .header("webhook-timestamp", timestamp.to_string());
            if let Some(secret) = &channel.secret {
                match signing::key_bytes(secret.expose()) {
                    Ok(key) => {
                        request = request.header(
                            "webhook-signature",
                            signing::sign(&key, delivery_id, timestamp, &body),
                        );
                    }
                    Err(error) => {
                        return AttemptOutcome::Failed {
                            status: None,
                            error,
                        };
                    }
                }
            }
        }
        // The receiver said its bucket is empty: wait for the refill, but never longer than one
        // request may take, so the delivery's lease holds (a longer wait ends in a 429 and its
        // Retry-After instead).
        let refill = self
            .refill
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&channel.name);
        if let Some(at) = refill {
            tokio::time::sleep_until(at.min(tokio::time::Instant::now() + self.timeout)).await;
        }
        let response = match request.body(body).send().await {
            Ok(response) => response,
            Err(e) => {
                // The URL is the channel's credential (Slack and webhook URLs carry their token):
                // the error text keeps only the redacted destination.
                let error = format!("{destination}: {}", error_chain(&e.without_url()));
                // A refused destination will be refused again: no point retrying.
                if error.contains("private or reserved") {
                    return AttemptOutcome::Failed {
                        status: None,
                        error,
                    };
                }
                return AttemptOutcome::Retry {
                    status: None,
                    error,
                    after: None,
                };
            }
        };
        let status = response.status().as_u16();
        if let Some(wait) = bucket_refill(response.headers()) {
            self.refill
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(channel.name.clone(), tokio::time::Instant::now() + wait);
        }
        let after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after);
        let text = scrub(&answer_head(response).await, &secrets);
        if (200..300).contains(&status) {
            return AttemptOutcome::Delivered {
                status,
                answer: render::truncate(text.trim(), ANSWER_CHARS),
            };
        }
        let error = format!(
            "HTTP {status}: {}",
            render::truncate(text.trim(), ANSWER_CHARS)
        );
        match status {
            429 | 500..=599 | 408 => AttemptOutcome::Retry {
                status: Some(status),
                error,
                after,
            },
            _ => AttemptOutcome::Failed {
                status: Some(status),
                error,
            },
        }
    }
}

/// The first few KiB of an answer: enough for an excerpt, and a receiver that answers with
/// megabytes costs nothing more.
async fn answer_head(mut response: reqwest::Response) -> String {
    const HEAD: usize = 4096;
    let mut bytes = Vec::new();
    while bytes.len() < HEAD {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(HEAD);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The parts of a channel URL that can carry its credential (what [`egress::redacted`] leaves
/// out): query values, user and password, and path segments after the first that look like an id
/// or token rather than a word such as `messages` (digits, capitals or punctuation in them).
fn secret_parts(url: &url::Url) -> Vec<String> {
    let token_like = |s: &&str| {
        s.len() >= 6
            && s.chars()
                .any(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || !c.is_alphanumeric())
    };
    let mut parts: Vec<String> = url
        .path_segments()
        .into_iter()
        .flatten()
        .skip(1)
        .filter(token_like)
        .map(str::to_string)
        .collect();
    parts.extend(url.query_pairs().map(|(_, v)| v.into_owned()));
    parts.push(url.username().to_string());
    parts.extend(url.password().map(str::to_string));
    parts.retain(|p| p.len() >= 4);
    // Longest first, so a part containing another is removed whole.
    parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
    parts
}

/// A receiver's answer without the channel's secrets, should it echo the URL back.
fn scrub(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_string(), |text, secret| {
        text.replace(secret.as_str(), "…")
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_echoing_the_url_loses_its_secrets() {
        let url = url::Url::parse(
            "https://chat.googleapis.com/v1/spaces/AAAA1234/messages?key=KEYKEY&token=TOKEN42",
        )
        .expect("url");
        let secrets = secret_parts(&url);
        let text = scrub(&format!("bad request for {url}"), &secrets);
        for secret in ["AAAA1234", "KEYKEY", "TOKEN42"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("chat.googleapis.com/v1/spaces"), "{text}");
    }

    #[test]
    fn an_empty_bucket_says_when_it_refills() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-ratelimit-reset-after", "1.5".parse().expect("value"));
        assert_eq!(bucket_refill(&headers), None, "no remaining count");
        headers.insert("x-ratelimit-remaining", "3".parse().expect("value"));
        assert_eq!(bucket_refill(&headers), None, "tokens left");
        headers.insert("x-ratelimit-remaining", "0".parse().expect("value"));
        assert_eq!(bucket_refill(&headers), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
