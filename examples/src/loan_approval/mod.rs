//! Loan approval: documents, a credit check and an AI risk score decide
//! automatically when the model is confident; otherwise a human
//! underwriter decides, with a deadline and escalation to the credit
//! manager. Approval provisions the account and card as a saga, so a
//! failure halfway is undone; rejection tells the applicant.
//!
//! Three applications run one after the other ([`applications`]):
//!
//! - `loan-ada`: a strong file; the model is confident the risk is low, so
//!   the loan is approved automatically and the account and card are set
//!   up;
//! - `loan-bo`: a thin credit file; the model is unsure, so the
//!   application goes to underwriter-1, who reviews it in their task list
//!   and approves it with a comment (with `--underwriter-rejects`, rejects
//!   it, and the applicant is told why);
//! - `loan-cy`: approved automatically, but the card processor refuses the
//!   card after the credit line was reserved and the account opened: the
//!   saga closes the account (the core banking system times out once and
//!   the close is retried) and releases the reservation, newest first, and
//!   the applicant is told.
//!
//! An underwriter who does not decide within the deadline (2 s here, a
//! working day in real life) is reminded, then the task escalates to the
//! credit manager (20 s); if nobody decides, the application is declined
//! (`--nobody-decides`). The deadlines and the reminder interval come with
//! each application as its [`Pace`], so that tests can run the same
//! workflow, fallback included, in a fraction of a second; the example
//! uses [`Pace::EXAMPLE`].
//!
//! Until the loan is decided, the applicant may change the amount they
//! ask for with the [`AmendAmount`] update: the workflow refuses a
//! non-positive amount, and any amendment once the decision was made,
//! without a trace in the history; an accepted amendment is recorded, is
//! the amount the rest of the workflow uses (the credit reservation, the
//! applicant's letter), and is answered with the new [`LoanTerms`]. In the
//! example, bo first sends a negative amount by mistake (refused), then
//! lowers the amount while underwriter-1 has the review.
//!
//! ```text
//! cargo run --release --example loan_approval
//! cargo run --release --example loan_approval -- --nobody-decides
//! cargo run --release --example loan_approval -- --db /tmp/loans   # kill -9 it, rerun: it resumes
//! cargo run --release --example loan_approval -- cli --db /tmp/loans history loan-cy
//! ```

mod activities;
mod amendment;
mod data;
mod scenario;
mod setup;
mod workflow;

pub use activities::{
    AiRiskScore, Bureau, CloseAccount, CollectDocuments, CreditCheck, IssueCard, NotifyApplicant,
    NotifyUnderwriter, OpenAccount, ReleaseCreditReservation, ReserveCreditLine,
};
pub use amendment::{AmendAmount, Amendment, LoanTerms};
pub use data::{
    Account, Application, Card, CardRequest, CreditReport, CreditReservation, Documents,
    LoanOutcome, Message, Pace, RiskInput, RiskScore, UnderwritingForm, Verdict,
};
pub use scenario::{
    applicant_amends, review_waiting, run, underwriter_decides, Scenario, Underwriter,
};
pub use setup::{applications, bureau, register, replayer, start_worker, BO, BO_AMENDED_EUR};
pub use workflow::{LoanApproval, CONFIDENT, CREDIT_MANAGER, UNDERWRITER};
