//! Addresses reached because of feed content must be public unless the operator allows them.
//! Every target here is on the loopback range; the servers count the requests that reach them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use gazette::config::FetchConfig;
use gazette::fetch::Fetcher;
use url::Url;

/// A server on `ip` that counts hits; `/redirect` sends the client to `redirect_to`.
async fn counting_server(ip: &str, redirect_to: Option<String>) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let (page_hits, redirect_hits) = (Arc::clone(&hits), Arc::clone(&hits));
    let app = Router::new()
        .route(
            "/page",
            get(move || {
                page_hits.fetch_add(1, Ordering::SeqCst);
                async { "<html><body><p>page</p></body></html>" }
            }),
        )
        .route(
            "/redirect",
            get(move || {
                redirect_hits.fetch_add(1, Ordering::SeqCst);
                let to = redirect_to.clone().unwrap_or_default();
                async move { (StatusCode::FOUND, [(header::LOCATION, to)]).into_response() }
            }),
        );
    let listener = tokio::net::TcpListener::bind((ip, 0))
        .await
        .expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("server") });
    (base, hits)
}

fn fetcher(allow: &[&str]) -> Fetcher {
    let config = FetchConfig {
        allow_private: allow.iter().map(|s| s.parse().expect("range")).collect(),
        ..FetchConfig::default()
    };
    Fetcher::new(&config).expect("fetcher")
}

fn url(s: &str) -> Url {
    Url::parse(s).expect("url")
}

#[tokio::test]
async fn loopback_targets_are_refused_by_default() {
    let (base, hits) = counting_server("127.0.0.1", None).await;
    let guarded = fetcher(&[]);
    let literal = guarded
        .fetch_content("article", &url(&format!("{base}/page")))
        .await;
    let message = literal.expect_err("refused").to_string();
    assert!(
        message.contains("non-public address 127.0.0.1"),
        "{message}"
    );
    // The refusal says how to allow it.
    assert!(message.contains("`fetch.allow_private`"), "{message}");
    let port = url(&base).port().expect("port");
    let named = guarded
        .fetch_content("article", &url(&format!("http://localhost:{port}/page")))
        .await;
    let message = named.expect_err("refused").to_string();
    assert!(message.contains("non-public"), "{message}");
    assert!(message.contains("`fetch.allow_private`"), "{message}");
    let scheme = guarded
        .fetch_content("article", &url("file:///etc/hostname"))
        .await;
    assert!(
        scheme
            .expect_err("refused")
            .to_string()
            .contains("only http and https")
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a refused address was contacted"
    );
}

#[tokio::test]
async fn an_allowed_range_opens_only_itself_on_every_redirect_hop() {
    let (inner, inner_hits) = counting_server("127.0.0.2", None).await;
    let (outer, outer_hits) = counting_server("127.0.0.1", Some(format!("{inner}/page"))).await;
    let guarded = fetcher(&["127.0.0.1/32"]);
    let page = guarded
        .fetch_content("article", &url(&format!("{outer}/page")))
        .await
        .expect("allowed");
    assert_eq!(&page.body[..], b"<html><body><p>page</p></body></html>");
    assert_eq!(outer_hits.load(Ordering::SeqCst), 1);

    let hop = guarded
        .fetch_content("article", &url(&format!("{outer}/redirect")))
        .await;
    let message = hop.expect_err("second hop refused").to_string();
    assert!(
        message.contains("non-public address 127.0.0.2"),
        "{message}"
    );
    assert_eq!(outer_hits.load(Ordering::SeqCst), 2);
    assert_eq!(
        inner_hits.load(Ordering::SeqCst),
        0,
        "the refused hop was contacted"
    );
}
