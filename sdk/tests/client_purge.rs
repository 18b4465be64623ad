//! `Client::purge`: a dry run names the closed runs whose retention
//! passed and deletes nothing; a purge with an export writes each run's
//! history as a JSON file that reads back, then deletes exactly those
//! runs; open runs and runs of types kept longer stay.

use refrain::history_file::HistoryExport;
use refrain::{
    Client, ClientError, Payload, PurgeOptions, RetentionPolicy, StartOptions, Store, StoreConfig,
};
use std::time::Duration;

fn p(s: &str) -> Payload {
    Payload::from_bytes(s.as_bytes().to_vec())
}

#[tokio::test]
async fn a_purge_exports_then_deletes_only_closed_runs_past_their_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db"), StoreConfig::default()).unwrap();
    let client = Client::new(store);
    let start = |kind: &'static str, id: &'static str| {
        let client = client.clone();
        async move {
            client
                .start_payload(kind, id, p("{\"n\":1}"), StartOptions::default())
                .await
                .unwrap()
                .run
        }
    };
    let done = start("order-to-cash", "order/1").await;
    let open = start("order-to-cash", "order/2").await;
    let payroll = start("payroll", "pay-1").await;
    client
        .terminate("order/1", "shipped", Some("ops"))
        .await
        .unwrap();
    client
        .terminate("pay-1", "paid", Some("ops"))
        .await
        .unwrap();

    // Closed just now, kept for no time at all; payroll is kept for years.
    let policy = RetentionPolicy::keep_for(Duration::ZERO)
        .with_type("payroll", Duration::from_secs(1 << 30));
    let dry = PurgeOptions {
        dry_run: true,
        ..PurgeOptions::new(policy.clone())
    };
    let report = client.purge(&dry, |_, _| {}).await.unwrap();
    assert_eq!(
        report.runs.iter().map(|r| r.run).collect::<Vec<_>>(),
        [done]
    );
    assert!(
        client.describe("order/1").await.is_ok(),
        "a dry run deleted"
    );

    let exports = dir.path().join("exports");
    let options = PurgeOptions {
        export_to: Some(exports.clone()),
        ..PurgeOptions::new(policy)
    };
    let mut batches = 0;
    let report = client.purge(&options, |_, _| batches += 1).await.unwrap();
    assert!(batches >= 1);
    assert_eq!(
        report.runs.iter().map(|r| r.run).collect::<Vec<_>>(),
        [done]
    );
    assert_eq!(
        report.exported,
        [exports.join(format!("order_1.{}.json", done.0))]
    );
    let exported = HistoryExport::read_file(&report.exported[0]).unwrap();
    assert_eq!(
        (exported.run, exported.workflow_id.as_str()),
        (done, "order/1")
    );
    assert_eq!(exported.events.len(), 2, "started and terminated");

    assert!(matches!(
        client.describe("order/1").await,
        Err(ClientError::NotFound { .. })
    ));
    assert_eq!(client.describe("order/2").await.unwrap().run, open);
    assert_eq!(client.describe("pay-1").await.unwrap().run, payroll);
}
