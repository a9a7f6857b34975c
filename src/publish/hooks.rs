//! What runs after the feed changes: WebSub hub pings and the `on_publish` command. Both are
//! best effort: a failure is logged and never fails the run.

use std::time::Duration;

use tracing::{info, warn};

use crate::config::FeedConfig;

pub async fn after_publish(feed: &FeedConfig) {
    ping_hubs(feed).await;
    run_on_publish(feed).await;
}

/// Tells each hub the feed changed (WebSub `hub.mode=publish`).
async fn ping_hubs(feed: &FeedConfig) {
    if feed.hubs.is_empty() {
        return;
    }
    let client = match reqwest::Client::builder()
        .user_agent(crate::config::default_user_agent())
        .timeout(Duration::from_secs(15))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            warn!(error = %e, "cannot ping WebSub hubs");
            return;
        }
    };
    let body = format!(
        "hub.mode=publish&hub.url={}",
        url::form_urlencoded::byte_serialize(feed.self_url.as_bytes()).collect::<String>()
    );
    for hub in &feed.hubs {
        let sent = client
            .post(hub)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                info!(hub = %hub, "WebSub hub pinged")
            }
            Ok(response) => {
                warn!(hub = %hub, status = %response.status(), "WebSub hub refused the ping")
            }
            Err(e) => warn!(hub = %hub, error = %e, "WebSub hub could not be pinged"),
        }
    }
}

async fn run_on_publish(feed: &FeedConfig) {
    let Some((program, args)) = feed.on_publish.split_first() else {
        return;
    };
    let status = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .status();
    match tokio::time::timeout(Duration::from_secs(300), status).await {
        Ok(Ok(status)) if status.success() => info!(command = %program, "on_publish ran"),
        Ok(Ok(status)) => warn!(command = %program, %status, "on_publish failed"),
        Ok(Err(e)) => warn!(command = %program, error = %e, "on_publish could not start"),
        Err(_) => warn!(command = %program, "on_publish did not finish within 5 minutes"),
    }
}
