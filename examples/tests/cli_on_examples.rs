//! The `refrain` command line on a store the order-to-cash example filled:
//! what an operator sees, and export followed by replay through the
//! example's code.
//!
//! The store is built in-process (both orders, with short waits); the
//! command line then runs as the package's `refrain-examples` binary, the
//! same `refrain_worker::cli` with the examples' workflows registered, in
//! a process of its own (its output goes to stdout, and sled lets one
//! process at a time open the store).

use refrain::history_file::HistoryExport;
use refrain::{Client, Store, StoreConfig};
use refrain_examples::order_to_cash::{self, OrderOutcome, Scenario};
use refrain_examples::Mode;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;
use tempfile::TempDir;

const CLI: &str = env!("CARGO_BIN_EXE_refrain-examples");

/// A store holding order-1001 (fulfilled) and order-1002 (cancelled after
/// the warehouse's retries and an unanswered operations alert), closed
/// again so that another process can open it.
fn example_store() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let worker = order_to_cash::start_worker(store.clone());
        let scenario = Scenario {
            ops_substitutes: false,
        };
        let ended = order_to_cash::run(&Client::new(store), scenario)
            .await
            .unwrap();
        worker.shutdown(Duration::from_secs(5)).await;
        assert!(matches!(ended[1].1, Ok(OrderOutcome::Cancelled { .. })));
    });
    // Nothing may hold the store when the command line opens it.
    drop(runtime);
    dir
}

/// Runs the command line and returns its exit code and stdout; stderr must
/// be empty when it succeeds.
fn cli(db: Option<&Path>, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(CLI);
    cmd.env_remove("REFRAIN_DB");
    if let Some(db) = db {
        cmd.arg("--db").arg(db);
    }
    let out = cmd.args(args).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let code = out.status.code().unwrap_or(-1);
    if code == 0 {
        assert!(stderr.is_empty(), "{args:?}: stderr: {stderr}");
    } else {
        eprintln!("{args:?} exited with {code}:\n{stdout}\n{stderr}");
    }
    (code, stdout)
}

fn ok(db: Option<&Path>, args: &[&str]) -> String {
    let (code, stdout) = cli(db, args);
    assert_eq!(code, 0, "{args:?}:\n{stdout}");
    stdout
}

/// The one line of `text` that contains every one of `parts`, and its
/// index.
fn line_with(text: &str, parts: &[&str]) -> (usize, String) {
    let found: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| parts.iter().all(|p| l.contains(p)))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one line with {parts:?} in:\n{text}"
    );
    (found[0].0, found[0].1.to_owned())
}

#[test]
fn list_shows_both_orders_with_their_status() {
    let db = example_store();
    let out = ok(Some(db.path()), &["list"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "RUN", "TYPE", "STATUS", "STARTED", "(UTC)", "CLOSED", "(UTC)"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{out}");
    // A cancelled order is a business outcome: the workflow completed.
    assert_eq!(
        rows[0][..4],
        ["order-1001", "1", "order-to-cash", "completed"]
    );
    assert_eq!(
        rows[1][..4],
        ["order-1002", "2", "order-to-cash", "completed"]
    );
    assert!(rows.iter().all(|r| r.len() == 6 && r[5] != "-"), "{out}");

    let out = ok(Some(db.path()), &["list", "--status", "running"]);
    assert!(out.contains("(no runs match)"), "{out}");
}

#[test]
fn history_of_the_cancelled_order_tells_the_operator_what_happened() {
    let db = example_store();
    let out = ok(Some(db.path()), &["history", "order-1002"]);
    assert!(
        out.starts_with(
            "order-1002, run 2 (order-to-cash, completed): 24 events in 8 activations\n"
        ),
        "{out}"
    );

    // The warehouse's retries: three attempts, then it gave up.
    let (reserve, _) = line_with(
        &out,
        &[
            "schedule activity reserve-inventory (cmd 3)",
            "[up to 3 attempts, start-to-close 2.0s]",
        ],
    );
    let (gave_up, _) = line_with(
        &out,
        &[
            "activity reserve-inventory (cmd 3) FAILED on attempt 3 (retries exhausted: 3 attempts)",
            "out-of-stock: GPU-RTX-6000 x2 not available",
        ],
    );

    // The escalation to operations, and the deadline they were given.
    let (notify, _) = line_with(&out, &["schedule activity notify-operations (cmd 4)"]);
    let (notified, _) = line_with(
        &out,
        &["activity notify-operations (cmd 4) completed on attempt 1"],
    );
    let (deadline, _) = line_with(&out, &["start timer (cmd 5) for 2.0s, fires "]);
    let (fired, _) = line_with(&out, &["timer (cmd 5) fired: 2.0s since it was started"]);

    // The compensation, newest step first: refund, then the credit hold.
    let (refund, _) = line_with(
        &out,
        &["schedule activity refund-payment [COMPENSATION] (cmd 6)"],
    );
    let (refunded, _) = line_with(
        &out,
        &["activity refund-payment [COMPENSATION] (cmd 6) completed on attempt 1"],
    );
    let (release, _) = line_with(
        &out,
        &["schedule activity release-credit-hold [COMPENSATION] (cmd 7)"],
    );
    let (released, _) = line_with(
        &out,
        &["activity release-credit-hold [COMPENSATION] (cmd 7) completed on attempt 1"],
    );
    let (closed, _) = line_with(
        &out,
        &["workflow COMPLETED with result {\"Cancelled\":{\"reason\":\"GPU-RTX-6000 x2 out of stock and not resolved within 2s\""],
    );

    let order = [
        reserve, gave_up, notify, notified, deadline, fired, refund, refunded, release, released,
        closed,
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "events out of order {order:?}:\n{out}"
    );
    // Nothing was reserved, so nothing releases a reservation.
    assert!(!out.contains("release-inventory"), "{out}");
}

#[test]
fn describe_shows_the_closed_order() {
    let db = example_store();
    let out = ok(Some(db.path()), &["describe", "order-1002"]);
    for expected in [
        "workflow  order-1002\n",
        "run       2\n",
        "type      order-to-cash\n",
        "status    completed\n",
        "history   24 events, ",
        "result    {\"Cancelled\":{\"reason\":\"GPU-RTX-6000 x2 out of stock",
        "pending activities: none\n",
        "pending timers: none\n",
        "last activation failure: none\n",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let (code, _) = cli(Some(db.path()), &["describe", "order-9999"]);
    assert_eq!(code, 1);
}

#[test]
fn export_then_replay_through_the_example_code() {
    let db = example_store();
    let out_dir = tempfile::tempdir().unwrap();
    let json = out_dir.path().join("order-1002.json");
    let bin = out_dir.path().join("order-1002.bin");
    let json_arg = json.to_str().unwrap();
    let bin_arg = bin.to_str().unwrap();

    let out = ok(
        Some(db.path()),
        &["export", "order-1002", "--out", json_arg],
    );
    assert_eq!(
        out,
        format!("exported 24 events of order-1002 run 2 to {json_arg} (JSON)\n")
    );
    let out = ok(Some(db.path()), &["export", "order-1002", "--out", bin_arg]);
    assert!(out.ends_with("(binary)\n"), "{out}");
    assert_eq!(
        HistoryExport::read_file(&json).unwrap(),
        HistoryExport::read_file(&bin).unwrap()
    );

    // Replaying needs no store: the history and the code are enough.
    let out = ok(None, &["replay", json_arg, bin_arg]);
    let report =
        "order-1002 (order-to-cash, run-2): 24 events in 8 activations replayed, run closed";
    assert_eq!(
        out,
        format!(
            "ok    {json_arg}: {report}\nok    {bin_arg}: {report}\n2 of 2 histories replayed\n"
        )
    );

    // The example binaries run the same command line in their `cli`
    // mode, with their own workflows registered.
    assert_eq!(
        refrain_examples::run_cli(
            order_to_cash::replayer(),
            "order_to_cash cli",
            vec![OsString::from("replay"), json.clone().into_os_string()],
        ),
        ExitCode::SUCCESS
    );

    // A history the code cannot follow fails with the report: here the
    // recorded compensations are swapped, as if the code had changed.
    let tampered = out_dir.path().join("tampered.json");
    let text = std::fs::read_to_string(&json)
        .unwrap()
        .replace("\"refund-payment\"", "\"RELEASE\"")
        .replace("\"release-credit-hold\"", "\"refund-payment\"")
        .replace("\"RELEASE\"", "\"release-credit-hold\"");
    std::fs::write(&tampered, text).unwrap();
    let (code, out) = cli(None, &["replay", tampered.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    for expected in [
        "FAIL  ",
        "nondeterminism in workflow order-1002 (order-to-cash, run-2) at history position 18, activation 6:",
        "the code produced a different command than history recorded",
        "recorded: ActivityScheduled \"release-credit-hold\" (cmd 6)",
        "produced: ActivityScheduled \"refund-payment\" (cmd 6)",
        "examples/src/order_to_cash.rs:",
        "hint: if this change is intended",
        "0 of 1 histories replayed",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

/// What an example binary's command line is made of.
#[derive(clap::Parser)]
struct ExampleArgs {
    #[command(flatten)]
    store: refrain_examples::StoreArgs,
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[test]
fn the_cli_mode_of_an_example_passes_everything_through() {
    use clap::Parser as _;
    let parse = |args: &[&str]| {
        ExampleArgs::try_parse_from(std::iter::once("order_to_cash").chain(args.iter().copied()))
            .unwrap()
            .mode
    };
    let passed = |args: &[&str]| -> Vec<OsString> { args.iter().map(OsString::from).collect() };
    for args in [
        &["--db", "/tmp/o2c", "history", "order-1002"][..],
        &["replay", "tests/histories/order_to_cash"],
        &["--help"],
        &["export", "order-1002", "--out", "x.json", "--run", "2"],
    ] {
        let cli: Vec<&str> = std::iter::once("cli").chain(args.iter().copied()).collect();
        match parse(&cli) {
            Some(Mode::Cli { args: got }) => assert_eq!(got, passed(args)),
            other => panic!("{cli:?} parsed as {other:?}"),
        }
    }
    match parse(&["export-histories", "tests/histories/order_to_cash"]) {
        Some(Mode::ExportHistories { dir }) => {
            assert_eq!(dir, Path::new("tests/histories/order_to_cash"))
        }
        other => panic!("{other:?}"),
    }
    let plain = ExampleArgs::try_parse_from(["order_to_cash", "--db", "/tmp/o2c"]).unwrap();
    assert!(plain.mode.is_none());
    assert_eq!(plain.store.db.as_deref(), Some(Path::new("/tmp/o2c")));
}
