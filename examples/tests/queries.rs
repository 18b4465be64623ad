//! The examples' queries, answered from `QueryState` while a run waits and
//! after it ended.

use refrain::{Client, Signal, Store, StoreConfig};
use refrain_examples::employee_onboarding::{
    self, AwaitingApproval, Director, EmployeeOnboarding, ManagerApproval, Scenario,
};
use refrain_examples::wait_for_activity;
use std::time::Duration;

/// Once the manager's deadline passed, the onboarding says it waits for
/// the director; once the director answered, for nobody.
#[tokio::test(flavor = "multi_thread")]
async fn onboarding_says_whose_approval_it_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let worker = employee_onboarding::start_worker(store.clone());
    let client = Client::new(store);
    let hire = employee_onboarding::new_hire(&Scenario::fast(Director::Approves));
    let director = hire.approvers[1].to_string();
    let handle = client
        .start::<EmployeeOnboarding>("onboarding-q", hire)
        .await
        .unwrap();

    let escalated = wait_for_activity(
        &client,
        "onboarding-q",
        "escalate-approval",
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert!(escalated, "the manager's deadline passed");
    let awaiting = client
        .query::<AwaitingApproval>("onboarding-q", &())
        .await
        .unwrap();
    assert_eq!(awaiting, Some(director));

    let answer = ManagerApproval {
        approver: "Sam Okafor".into(),
        approved: true,
        comment: "fine".into(),
    };
    assert_eq!(ManagerApproval::NAME, "manager-approval");
    client.signal("onboarding-q", &answer).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .unwrap()
        .unwrap();
    let awaiting = client
        .query::<AwaitingApproval>("onboarding-q", &())
        .await
        .unwrap();
    assert_eq!(awaiting, None, "a closed run answers from its final state");
    worker.shutdown(Duration::from_secs(5)).await;
}
