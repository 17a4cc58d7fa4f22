//! Channels on this machine: the console (for people watching a terminal) and a file of JSON lines
//! (for scripts and for keeping a record).

use std::io::{IsTerminal, Write};

use herald_proto::v1::Announcement;
use tokio::io::AsyncWriteExt;

use crate::{attempt::AttemptOutcome, config::ChannelConfig, render};

pub fn to_console(announcement: &Announcement) -> AttemptOutcome {
    let stdout = std::io::stdout();
    let colour = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let text = render::console::render(&announcement.card.clone().unwrap_or_default(), colour);
    let mut out = stdout.lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => AttemptOutcome::written(),
        Err(e) => AttemptOutcome::Retry {
            status: None,
            error: format!("cannot write to the console: {e}"),
            after: None,
        },
    }
}

pub async fn to_file(channel: &ChannelConfig, announcement: &Announcement) -> AttemptOutcome {
    let Some(path) = &channel.path else {
        return AttemptOutcome::Failed {
            status: None,
            error: "file channel has no path".into(),
        };
    };
    let mut line = render::webhook::render(announcement, chrono::Utc::now()).to_string();
    line.push('\n');
    let write = async {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        // One write of the whole line, so concurrent writers never interleave within a line.
        file.write_all(line.as_bytes()).await?;
        file.flush().await
    };
    match write.await {
        Ok(()) => AttemptOutcome::written(),
        Err(e) => AttemptOutcome::Retry {
            status: None,
            error: format!("cannot append to {}: {e}", path.display()),
            after: None,
        },
    }
}
