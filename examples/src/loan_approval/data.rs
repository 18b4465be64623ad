//! The business data: the application, its pace, and what passes between the steps.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A loan application.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Application {
    /// The application's reference, also the workflow id.
    pub application_id: String,
    /// Who applies, as the bureaus know them.
    pub applicant: String,
    /// Where the applicant is told the outcome.
    pub email: String,
    /// How much they ask for, in euros.
    pub amount_eur: u64,
    /// How long the reviewers have and how often they are reminded. Left
    /// out of the recorded input when it is [`Pace::EXAMPLE`], so
    /// applications recorded before it existed decode as the example's
    /// pace.
    #[serde(default, skip_serializing_if = "Pace::is_example")]
    pub pace: Pace,
}

/// The waits of one application's human review. They travel with the
/// application (its workflow input) because workflow code may only decide
/// from what its history holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pace {
    /// How long the underwriter has to decide, in milliseconds.
    pub underwriter_deadline_ms: u64,
    /// How long the credit manager has once the review escalates to them,
    /// in milliseconds.
    pub manager_deadline_ms: u64,
    /// Reviewers are reminded at this interval until they decide, in
    /// milliseconds.
    pub remind_every_ms: u64,
}

impl Pace {
    /// The example's waits: 2 s for the underwriter (a working day in real
    /// life), 20 s for the credit manager, a reminder every 0.8 s.
    pub const EXAMPLE: Pace = Pace {
        underwriter_deadline_ms: 2_000,
        manager_deadline_ms: 20_000,
        remind_every_ms: 800,
    };

    /// Waits for tests in which nobody decides: every deadline passes in a
    /// fraction of a second, with at least one reminder per reviewer (the
    /// interval is shorter than each deadline).
    pub const FAST: Pace = Pace {
        underwriter_deadline_ms: 250,
        manager_deadline_ms: 250,
        remind_every_ms: 100,
    };

    /// Waits for a person deciding in the dashboard's inbox (`--serve`):
    /// an hour for each reviewer, time to log in and read the form, and
    /// a reminder every ten minutes.
    pub const PERSON: Pace = Pace {
        underwriter_deadline_ms: 60 * 60 * 1_000,
        manager_deadline_ms: 60 * 60 * 1_000,
        remind_every_ms: 10 * 60 * 1_000,
    };

    /// Whether this is [`Pace::EXAMPLE`].
    pub fn is_example(&self) -> bool {
        *self == Pace::EXAMPLE
    }

    /// How long the underwriter has.
    pub fn underwriter_deadline(&self) -> Duration {
        Duration::from_millis(self.underwriter_deadline_ms)
    }

    /// How long the credit manager has.
    pub fn manager_deadline(&self) -> Duration {
        Duration::from_millis(self.manager_deadline_ms)
    }

    /// The reminder interval.
    pub fn remind_every(&self) -> Duration {
        Duration::from_millis(self.remind_every_ms)
    }
}

impl Default for Pace {
    fn default() -> Self {
        Pace::EXAMPLE
    }
}

/// The documents the applicant handed in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Documents {
    /// How many payslips.
    pub payslips: u32,
    /// Whether their identity was verified.
    pub identity_verified: bool,
}

/// What the credit bureau reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreditReport {
    /// The bureau's score.
    pub bureau_score: u32,
    /// How long the applicant's credit history is.
    pub years_of_history: u32,
}

/// What the risk model is given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RiskInput {
    /// The application.
    pub application: Application,
    /// Its documents.
    pub documents: Documents,
    /// The bureau's report.
    pub credit: CreditReport,
}

/// The model's answer: the probability of default, and how sure it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RiskScore {
    /// The probability of default, 0 to 1.
    pub default_risk: f64,
    /// How sure the model is, 0 to 1.
    pub confidence: f64,
    /// Which model answered.
    pub model: String,
    /// Why, in words.
    pub reasons: Vec<String>,
}

/// What the underwriter decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// The loan is granted.
    Approve,
    /// The loan is refused.
    Reject,
}

/// What the underwriter sees in their task list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnderwritingForm {
    /// Who applies.
    pub applicant: String,
    /// How much, in euros.
    pub amount_eur: u64,
    /// The bureau's score.
    pub bureau_score: u32,
    /// The model's probability of default.
    pub default_risk: f64,
    /// How sure the model is.
    pub confidence: f64,
    /// The model's reasons.
    pub reasons: Vec<String>,
}

/// Credit reserved for an approved loan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreditReservation {
    /// The reservation's reference.
    pub reservation_id: String,
    /// How much, in euros.
    pub amount_eur: u64,
}

/// The loan account opened for the applicant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    /// The core banking system's reference.
    pub account_id: String,
    /// The account's IBAN.
    pub iban: String,
}

/// What the card processor is asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CardRequest {
    /// For whom.
    pub applicant: String,
    /// On which account.
    pub account: Account,
}

/// An issued card.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Card {
    /// The card processor's reference.
    pub card_id: String,
    /// The card number's last four digits.
    pub last4: String,
}

/// A message to the applicant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// The applicant's email.
    pub to: String,
    /// What they are told.
    pub text: String,
}

/// How an application ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LoanOutcome {
    /// Approved, with the account and card set up.
    Approved {
        /// The model (automatic) or the person who approved.
        decided_by: String,
        /// The new account's IBAN.
        iban: String,
        /// The new card's reference.
        card: String,
    },
    /// Rejected, and the applicant told why.
    Rejected {
        /// The model (automatic) or the person who rejected.
        decided_by: String,
        /// Why.
        reason: String,
    },
    /// Approved, but setting it up failed; what was set up was undone.
    ProvisioningFailed {
        /// The model (automatic) or the person who approved.
        decided_by: String,
        /// What failed.
        error: String,
        /// What was undone (the saga's report).
        undone: String,
    },
}
