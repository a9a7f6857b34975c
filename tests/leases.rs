//! Workers sharing the sources through leases, on a real SQLite file and a real PostgreSQL
//! server: claims never overlap, even made at the same moment; a lease that runs out is
//! claimable again and lost to its first holder; a released source is claimable at once.

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use gazette::store::{Claimed, Store};

const LEASE: Duration = Duration::from_secs(60);

fn ids(claimed: &[Claimed]) -> Vec<String> {
    let mut ids: Vec<String> = claimed.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    ids
}

async fn leases_hold_on(store: Store) {
    let now: DateTime<Utc> = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
    let sources: Vec<(String, String, String)> = (0..10)
        .map(|i| {
            (
                format!("s{i:02}"),
                // A host (and port) each: a host is leased to one worker at a time.
                format!("http://127.0.0.1:{}/{i}.xml", 9000 + i),
                format!("{{\"id\":\"s{i:02}\"}}"),
            )
        })
        .collect();
    store.sync_sources(&sources, "").await.expect("sync");

    // Two workers claiming at the same moment share the ten, with no source twice.
    let (a, b) = tokio::join!(
        store.claim_due("a", &now, LEASE, 5, 10),
        store.claim_due("b", &now, LEASE, 5, 10)
    );
    let (a, b) = (a.expect("claim a"), b.expect("claim b"));
    assert_eq!(a.len(), 5);
    assert_eq!(b.len(), 5);
    let mut all = [ids(&a), ids(&b)].concat();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 10, "{a:?} {b:?}");
    assert_eq!(a[0].config, format!("{{\"id\":\"{}\"}}", a[0].id));
    assert!(
        store
            .claim_due("c", &now, LEASE, 10, 10)
            .await
            .expect("claim c")
            .is_empty(),
        "every source is leased"
    );
    let queue = store.queue(&now).await.expect("queue");
    assert_eq!((queue.due, queue.leased), (0, 10));

    // A renews its leases; B goes silent and its leases run out.
    let later = now + TimeDelta::seconds(45);
    let renewed = store
        .renew_leases("a", &ids(&a), &later, LEASE)
        .await
        .expect("renew");
    assert_eq!(renewed.len(), 5);
    let expired = now + TimeDelta::seconds(61);
    let c = store
        .claim_due("c", &expired, LEASE, 10, 10)
        .await
        .expect("claim c");
    assert_eq!(ids(&c), ids(&b), "only the run-out leases are claimable");
    assert!(
        store
            .renew_leases("b", &ids(&b), &expired, LEASE)
            .await
            .expect("renew b")
            .is_empty(),
        "a lease taken over is lost to its first holder"
    );
    let mut conn = store.pool().acquire().await.expect("connection");
    assert!(
        !Store::holds_lease(&mut conn, "b", &b[0].id, &expired)
            .await
            .expect("check")
    );
    assert!(
        Store::holds_lease(&mut conn, "c", &b[0].id, &expired)
            .await
            .expect("check")
    );
    // Released, a source is claimable at once.
    Store::release_lease(&mut conn, "c", &b[0].id)
        .await
        .expect("release");
    drop(conn);
    let again = store
        .claim_due("d", &expired, LEASE, 10, 10)
        .await
        .expect("claim d");
    assert_eq!(ids(&again), vec![b[0].id.clone()]);

    // A source the config no longer lists is claimed no more.
    store.sync_sources(&sources[..3], "").await.expect("sync");
    let much_later = now + TimeDelta::hours(1);
    let claimed = store
        .claim_due("e", &much_later, LEASE, 10, 10)
        .await
        .expect("claim e");
    assert_eq!(ids(&claimed), vec!["s00", "s01", "s02"]);

    // Workers are listed with the leases they hold.
    store
        .heartbeat("e", "worker", "host-1", &now, &much_later)
        .await
        .expect("beat");
    let workers = store.workers(&much_later).await.expect("workers");
    assert_eq!(workers.len(), 1);
    assert_eq!((workers[0].id.as_str(), workers[0].leases), ("e", 3));
    store.close().await;
}

/// A host's sources go to one worker at a time, so each worker's per-host limit is the
/// host's across all of them: while one worker holds a source of a host, another claims
/// none of that host's, and it takes them once the lease is given back.
async fn a_host_is_leased_to_one_worker_on(store: Store) {
    let now: DateTime<Utc> = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
    let sources: Vec<(String, String, String)> = (0..6)
        .map(|i| {
            let port = if i < 4 { 9100 } else { 9101 };
            (
                format!("h{i}"),
                format!("http://127.0.0.1:{port}/{i}.xml"),
                String::new(),
            )
        })
        .collect();
    store.sync_sources(&sources, "").await.expect("sync");
    let a = store
        .claim_due("a", &now, LEASE, 1, 10)
        .await
        .expect("claim a");
    assert_eq!(ids(&a), vec!["h0"]);
    let b = store
        .claim_due("b", &now, LEASE, 10, 10)
        .await
        .expect("claim b");
    assert_eq!(ids(&b), vec!["h4", "h5"], "the other host only");
    let more = store
        .claim_due("a", &now, LEASE, 10, 10)
        .await
        .expect("claim a");
    assert_eq!(ids(&more), vec!["h1", "h2", "h3"], "its own host's rest");
    let mut conn = store.pool().acquire().await.expect("connection");
    for id in ["h0", "h1", "h2", "h3"] {
        Store::release_lease(&mut conn, "a", id)
            .await
            .expect("release");
    }
    drop(conn);
    // Given back, the host is anyone's; a claim takes at most `per_host` of its sources.
    let c = store
        .claim_due("c", &now, LEASE, 10, 2)
        .await
        .expect("claim c");
    assert_eq!(ids(&c), vec!["h0", "h1"]);
    store.close().await;
}

#[tokio::test]
async fn a_host_is_leased_to_one_worker_on_sqlite() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/state.db", tmp.path().display());
    a_host_is_leased_to_one_worker_on(Store::open(&url).await.expect("open")).await;
}

#[tokio::test]
async fn a_host_is_leased_to_one_worker_on_postgresql() {
    let url = common::postgres::fresh_database();
    a_host_is_leased_to_one_worker_on(Store::open(&url).await.expect("open")).await;
}

#[tokio::test]
async fn leases_hold_on_sqlite() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/state.db", tmp.path().display());
    leases_hold_on(Store::open(&url).await.expect("open")).await;
}

#[tokio::test]
async fn leases_hold_on_postgresql() {
    let url = common::postgres::fresh_database();
    leases_hold_on(Store::open(&url).await.expect("open")).await;
}

/// `gazette sync` puts the config's sources into state as written, and a source taken out of
/// the config is claimed no more (on the backend the test run selects).
#[tokio::test]
async fn sync_makes_the_configured_sources_the_claimable_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let both = format!(
        "{}{}",
        common::source("alpha", "http://127.0.0.1:9/a.xml", "tags = [\"x\"]"),
        common::source("beta", "http://127.0.0.1:9/b.xml", "")
    );
    common::write_config(dir, &both);
    let synced = common::gazette(dir, &["sync"]).await;
    assert!(synced.status.success(), "{}", common::stderr(&synced));
    assert!(common::stdout(&synced).starts_with("2 sources synced into "));

    let store = Store::open(&common::state_url_from(dir))
        .await
        .expect("open");
    let now = Utc::now();
    let claimed = store
        .claim_due("w", &now, LEASE, 10, 10)
        .await
        .expect("claim");
    assert_eq!(ids(&claimed), vec!["alpha", "beta"]);
    let alpha: toml::Table = claimed[0].config.parse().expect("a TOML table");
    assert_eq!(alpha["url"].as_str(), Some("http://127.0.0.1:9/a.xml"));
    assert_eq!(alpha["tags"].as_array().map(Vec::len), Some(1));
    store.close().await;

    common::write_config(
        dir,
        &common::source("alpha", "http://127.0.0.1:9/a.xml", ""),
    );
    let synced = common::gazette(dir, &["sync"]).await;
    assert!(synced.status.success(), "{}", common::stderr(&synced));
    let store = Store::open(&common::state_url_from(dir))
        .await
        .expect("open");
    let later = now + TimeDelta::hours(1);
    let claimed = store
        .claim_due("w", &later, LEASE, 10, 10)
        .await
        .expect("claim");
    assert_eq!(ids(&claimed), vec!["alpha"]);
    store.close().await;
}
