//! A plain HTTP/1.1 request over TCP that reads the answer while the body is still being sent.
//!
//! A server that refuses an oversized body answers before reading it all (it must never buffer more
//! than its limit). An ordinary client keeps uploading, may hit the closed connection and report a
//! reset instead of the answer, depending on timing. This client writes in the background and reads
//! concurrently, so the test sees what the server said, every time.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The status code and body of the answer.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub body: String,
}

/// POSTs `body` to `url` (http only). With `chunked`, no Content-Length is declared and the body
/// goes in 64 KiB chunks, so the server must count as it reads.
pub async fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    chunked: bool,
) -> anyhow::Result<RawResponse> {
    let parsed = url::Url::parse(url)?;
    let host = parsed
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("{url} has no host"))?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let stream = TcpStream::connect((host, port)).await?;
    let (mut reader, mut writer) = stream.into_split();

    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n",
        parsed.path()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    }
    let send = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        if chunked {
            for chunk in body.chunks(64 * 1024) {
                writer
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                writer.write_all(chunk).await?;
                writer.write_all(b"\r\n").await?;
            }
            writer.write_all(b"0\r\n\r\n").await?;
        } else {
            writer.write_all(&body).await?;
        }
        writer.flush().await
    });

    let mut response = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut response)).await;
    // The upload may well have failed once the server stopped reading; that is the point.
    send.abort();
    match read {
        Ok(Ok(_)) => {}
        // A reset after the answer arrived still leaves the answer in the buffer.
        Ok(Err(_)) if !response.is_empty() => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => anyhow::bail!("no answer from {url} within 20 s"),
    }
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "not an HTTP answer: {:?}",
                text.chars().take(200).collect::<String>()
            )
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok(RawResponse { status, body })
}

/// A plain GET: status and body.
pub async fn get(url: &str) -> anyhow::Result<RawResponse> {
    let parsed = url::Url::parse(url)?;
    let host = parsed
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("{url} has no host"))?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let mut stream = TcpStream::connect((host, port)).await?;
    let target = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    stream
        .write_all(format!("GET {target} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("not an HTTP answer from {url}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok(RawResponse { status, body })
}

/// The status of a plain GET.
pub async fn get_status(url: &str) -> anyhow::Result<u16> {
    Ok(get(url).await?.status)
}
