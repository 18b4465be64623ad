//! What the example runs with: its applications, the bureau's records, a worker registering all.

use super::{
    AiRiskScore, Application, Bureau, CloseAccount, CollectDocuments, CreditCheck, CreditReport,
    Documents, IssueCard, LoanApproval, NotifyApplicant, NotifyUnderwriter, OpenAccount, Pace,
    ReleaseCreditReservation, ReserveCreditLine, RiskScore,
};
use refrain::Store;
use refrain_worker::{Replayer, Worker, WorkerBuilder};
use std::collections::BTreeMap;

/// Registers [`LoanApproval`] and its activities, configured as in the
/// example ([`bureau`]; the card processor cannot verify cy's address).
pub fn register(builder: WorkerBuilder) -> WorkerBuilder {
    let bureau = bureau();
    builder
        .workflow::<LoanApproval>()
        .activity(CollectDocuments(bureau.clone()))
        .activity(CreditCheck(bureau.clone()))
        .activity(AiRiskScore(bureau))
        .activity(NotifyUnderwriter)
        .activity(ReserveCreditLine)
        .activity(ReleaseCreditReservation)
        .activity(OpenAccount)
        .activity(CloseAccount)
        .activity(IssueCard {
            address_unverifiable: vec!["cy"],
        })
        .activity(NotifyApplicant)
}

/// Starts a worker on `store` with everything [`register`] registers.
/// Must be called within a tokio runtime.
pub fn start_worker(store: Store) -> Worker {
    register(Worker::builder(store)).start()
}

/// A replayer with this example's workflow type, for `refrain replay` and
/// replay tests.
pub fn replayer() -> Replayer {
    Replayer::new().workflow::<LoanApproval>()
}

/// The example's three applications, with waits `pace`: `loan-ada`,
/// `loan-bo` ([`BO`]) and `loan-cy`.
pub fn applications(pace: Pace) -> Vec<Application> {
    [("ada", 12_000), ("bo", 8_000), ("cy", 5_000)]
        .into_iter()
        .map(|(who, amount)| Application {
            application_id: format!("loan-{who}"),
            applicant: who.into(),
            email: format!("{who}@mail.example"),
            amount_eur: amount,
            pace,
        })
        .collect()
}

/// The application the model is unsure about: a person decides it.
pub const BO: &str = "loan-bo";

/// The amount bo asks for instead, while underwriter-1 has the review.
pub const BO_AMENDED_EUR: u64 = 6_000;

/// What the outside systems know about ada, bo and cy: ada and cy score
/// low risk with high confidence, bo's thin file leaves the model unsure.
pub fn bureau() -> Bureau {
    let score = |risk, confidence, reasons: &[&str]| RiskScore {
        default_risk: risk,
        confidence,
        model: "risk-model-v7".into(),
        reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
    };
    Bureau {
        documents: BTreeMap::from([
            (
                "ada",
                Documents {
                    payslips: 6,
                    identity_verified: true,
                },
            ),
            (
                "bo",
                Documents {
                    payslips: 6,
                    identity_verified: true,
                },
            ),
            (
                "cy",
                Documents {
                    payslips: 3,
                    identity_verified: true,
                },
            ),
        ]),
        credit: BTreeMap::from([
            (
                "ada",
                CreditReport {
                    bureau_score: 812,
                    years_of_history: 14,
                },
            ),
            (
                "bo",
                CreditReport {
                    bureau_score: 655,
                    years_of_history: 1,
                },
            ),
            (
                "cy",
                CreditReport {
                    bureau_score: 780,
                    years_of_history: 9,
                },
            ),
        ]),
        risk: BTreeMap::from([
            (
                "ada",
                score(0.04, 0.94, &["long clean history", "stable income"]),
            ),
            (
                "bo",
                score(
                    0.31,
                    0.58,
                    &["thin credit file (1 year)", "stable income for 6 years"],
                ),
            ),
            ("cy", score(0.09, 0.88, &["clean history"])),
        ]),
    }
}
