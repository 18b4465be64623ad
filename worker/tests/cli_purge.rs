//! `refrain --db DIR purge`: a dry run prints the runs that would go and
//! deletes nothing; `--export` writes each history before the run goes;
//! `--type` keeps other types; open runs stay; a bad period is a usage
//! error that touches nothing.

use refrain::history_file::HistoryExport;
use refrain::{Client, Payload, StartOptions, Store, StoreConfig};
use refrain_worker::cli::run_captured;
use refrain_worker::Replayer;
use std::path::Path;

fn refrain(dir: &Path, args: &[&str]) -> refrain_worker::cli::Captured {
    let mut all = vec![
        "refrain".to_owned(),
        "--db".to_owned(),
        dir.display().to_string(),
    ];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    run_captured(Replayer::new(), all, None)
}

/// A store with two closed checkouts, one closed payroll run and one
/// open checkout.
fn fill(dir: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(dir, StoreConfig::default()).unwrap();
        let client = Client::new(store);
        for (kind, id) in [
            ("checkout", "c-1"),
            ("checkout", "c-2"),
            ("checkout", "c-open"),
            ("payroll", "p-1"),
        ] {
            client
                .start_payload(
                    kind,
                    id,
                    Payload::from_bytes(b"{}".to_vec()),
                    StartOptions::default(),
                )
                .await
                .unwrap();
        }
        for id in ["c-1", "c-2", "p-1"] {
            client.terminate(id, "done", Some("ops")).await.unwrap();
        }
    });
}

#[test]
fn purge_prints_what_goes_exports_it_and_keeps_open_runs_and_other_types() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    fill(&dir);

    let bad = refrain(&dir, &["purge", "--older-than", "30"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("not a period"), "{}", bad.stderr);

    let dry = refrain(
        &dir,
        &[
            "purge",
            "--older-than",
            "0s",
            "--type",
            "checkout",
            "--dry-run",
        ],
    );
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout
            .contains("would purge c-1 (run 1, checkout, terminated"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("would purge c-2"), "{}", dry.stdout);
    assert!(
        !dry.stdout.contains("p-1") && !dry.stdout.contains("c-open"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("batch 1: 2 runs, 2 so far"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("2 runs would be purged (dry run: nothing deleted)"),
        "{}",
        dry.stdout
    );
    let listed = refrain(&dir, &["list"]);
    assert!(
        listed.stdout.contains("c-1"),
        "a dry run deleted: {}",
        listed.stdout
    );

    let exports = tmp.path().join("exports");
    let exports_arg = exports.display().to_string();
    let purged = refrain(
        &dir,
        &[
            "purge",
            "--older-than",
            "0s",
            "--type",
            "checkout",
            "--export",
            &exports_arg,
        ],
    );
    assert_eq!(purged.code, 0, "{purged:?}");
    assert!(
        purged.stdout.contains("purged c-1 (run 1"),
        "{}",
        purged.stdout
    );
    assert!(
        purged.stdout.contains("2 histories exported"),
        "{}",
        purged.stdout
    );
    assert!(purged.stdout.contains("2 runs purged"), "{}", purged.stdout);
    let file = HistoryExport::read_file(exports.join("c-1.1.json")).unwrap();
    assert_eq!(file.workflow_id.as_str(), "c-1");
    assert_eq!(file.events.len(), 2);

    let listed = refrain(&dir, &["list"]);
    assert_eq!(listed.code, 0, "{listed:?}");
    for kept in ["c-open", "p-1"] {
        assert!(
            listed.stdout.contains(kept),
            "{kept} was purged: {}",
            listed.stdout
        );
    }
    for gone in ["c-1 ", "c-2 "] {
        assert!(
            !listed.stdout.contains(gone),
            "{gone} is still listed: {}",
            listed.stdout
        );
    }
    let described = refrain(&dir, &["describe", "c-1"]);
    assert_eq!(described.code, 1, "{described:?}");

    let json = refrain(&dir, &["--json", "purge", "--older-than", "0s"]);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["count"], 1, "{report}");
    assert_eq!(report["runs"][0]["workflow_id"], "p-1", "{report}");
}
