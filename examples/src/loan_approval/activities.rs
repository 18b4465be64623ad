//! The activities: the outside world (bureau, risk model, core banking, card processor, email).

use super::{
    Account, Application, Card, CardRequest, CreditReport, CreditReservation, Documents, Message,
    RiskInput, RiskScore,
};
use crate::activity_says;
use refrain::{async_trait, Activity, ActivityContext, ActivityError, HumanTaskNotice, NoticeKind};
use std::collections::BTreeMap;
use std::time::Duration;

async fn remote_call() {
    tokio::time::sleep(Duration::from_millis(40)).await;
}

/// What the outside systems know about each applicant, by applicant.
#[derive(Debug, Clone)]
pub struct Bureau {
    /// The documents each applicant handed in.
    pub documents: BTreeMap<&'static str, Documents>,
    /// The credit bureau's reports.
    pub credit: BTreeMap<&'static str, CreditReport>,
    /// What the risk model answers for each applicant.
    pub risk: BTreeMap<&'static str, RiskScore>,
}

fn lookup<'a, T>(table: &'a BTreeMap<&'static str, T>, who: &str) -> Result<&'a T, ActivityError> {
    table
        .get(who)
        .ok_or_else(|| ActivityError::non_retryable(format!("no records for {who}")))
}

/// Collects the applicant's documents.
#[derive(Debug, Clone)]
pub struct CollectDocuments(pub Bureau);

#[async_trait]
impl Activity for CollectDocuments {
    const NAME: &'static str = "collect-documents";
    type Input = Application;
    type Output = Documents;
    async fn run(
        &self,
        ctx: ActivityContext,
        app: Application,
    ) -> Result<Documents, ActivityError> {
        remote_call().await;
        let docs = lookup(&self.0.documents, &app.applicant)?.clone();
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "{}: {} payslips, identity {}",
                app.applicant,
                docs.payslips,
                if docs.identity_verified {
                    "verified"
                } else {
                    "NOT verified"
                }
            ),
        );
        Ok(docs)
    }
}

/// Asks the credit bureau for the applicant's report.
#[derive(Debug, Clone)]
pub struct CreditCheck(pub Bureau);

#[async_trait]
impl Activity for CreditCheck {
    const NAME: &'static str = "credit-check";
    type Input = Application;
    type Output = CreditReport;
    async fn run(
        &self,
        ctx: ActivityContext,
        app: Application,
    ) -> Result<CreditReport, ActivityError> {
        remote_call().await;
        let report = lookup(&self.0.credit, &app.applicant)?.clone();
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "{}: bureau score {}, {} year{} of history",
                app.applicant,
                report.bureau_score,
                report.years_of_history,
                if report.years_of_history == 1 {
                    ""
                } else {
                    "s"
                }
            ),
        );
        Ok(report)
    }
}

/// Asks the risk model for a score.
#[derive(Debug, Clone)]
pub struct AiRiskScore(pub Bureau);

#[async_trait]
impl Activity for AiRiskScore {
    const NAME: &'static str = "ai-risk-score";
    type Input = RiskInput;
    type Output = RiskScore;
    async fn run(
        &self,
        ctx: ActivityContext,
        input: RiskInput,
    ) -> Result<RiskScore, ActivityError> {
        remote_call().await;
        let score = lookup(&self.0.risk, &input.application.applicant)?.clone();
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "{}: default risk {:.0}% with confidence {:.0}% ({})",
                input.application.applicant,
                score.default_risk * 100.0,
                score.confidence * 100.0,
                score.model
            ),
        );
        Ok(score)
    }
}

/// Emails the underwriter about their task.
#[derive(Debug, Clone, Copy)]
pub struct NotifyUnderwriter;

#[async_trait]
impl Activity for NotifyUnderwriter {
    const NAME: &'static str = "notify-underwriter";
    type Input = HumanTaskNotice;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, n: HumanTaskNotice) -> Result<(), ActivityError> {
        remote_call().await;
        let text = match n.kind {
            NoticeKind::Assigned => format!("email {}: new application to review", n.assignee),
            NoticeKind::Reminder { number } => {
                format!("email {}: reminder #{number}, still waiting", n.assignee)
            }
            NoticeKind::Escalated { from } => {
                format!(
                    "email {}: escalated, {from} did not decide in time",
                    n.assignee
                )
            }
        };
        activity_says(&ctx, Self::NAME, text);
        Ok(())
    }
}

/// Reserves the loan amount on the bank's credit line.
#[derive(Debug, Clone, Copy)]
pub struct ReserveCreditLine;

#[async_trait]
impl Activity for ReserveCreditLine {
    const NAME: &'static str = "reserve-credit-line";
    type Input = Application;
    type Output = CreditReservation;
    async fn run(
        &self,
        ctx: ActivityContext,
        app: Application,
    ) -> Result<CreditReservation, ActivityError> {
        remote_call().await;
        let r = CreditReservation {
            reservation_id: format!("res-{}", app.application_id),
            amount_eur: app.amount_eur,
        };
        activity_says(
            &ctx,
            Self::NAME,
            format!("reserved {} EUR ({})", r.amount_eur, r.reservation_id),
        );
        Ok(r)
    }
}

/// Releases a credit reservation (compensates [`ReserveCreditLine`]).
#[derive(Debug, Clone, Copy)]
pub struct ReleaseCreditReservation;

#[async_trait]
impl Activity for ReleaseCreditReservation {
    const NAME: &'static str = "release-reservation";
    type Input = CreditReservation;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, r: CreditReservation) -> Result<(), ActivityError> {
        remote_call().await;
        activity_says(
            &ctx,
            Self::NAME,
            format!("released {} EUR ({})", r.amount_eur, r.reservation_id),
        );
        Ok(())
    }
}

/// Opens the loan account.
#[derive(Debug, Clone, Copy)]
pub struct OpenAccount;

#[async_trait]
impl Activity for OpenAccount {
    const NAME: &'static str = "open-account";
    type Input = Application;
    type Output = Account;
    async fn run(&self, ctx: ActivityContext, app: Application) -> Result<Account, ActivityError> {
        remote_call().await;
        let n = app.application_id.bytes().map(u64::from).sum::<u64>();
        let account = Account {
            account_id: format!("acct-{}", app.application_id),
            iban: format!("DE89 3704 0044 0532 {:04} 00", n % 10_000),
        };
        activity_says(
            &ctx,
            Self::NAME,
            format!("{} opened, IBAN {}", account.account_id, account.iban),
        );
        Ok(account)
    }
}

/// Closing an account: the core banking system times out on the first
/// attempt; the retry goes through. Compensates [`OpenAccount`].
#[derive(Debug, Clone, Copy)]
pub struct CloseAccount;

#[async_trait]
impl Activity for CloseAccount {
    const NAME: &'static str = "close-account";
    type Input = Account;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, account: Account) -> Result<(), ActivityError> {
        remote_call().await;
        if ctx.attempt() == 1 {
            activity_says(&ctx, Self::NAME, "core banking timed out");
            return Err(ActivityError::retryable("core banking: timeout"));
        }
        activity_says(&ctx, Self::NAME, format!("{} closed", account.account_id));
        Ok(())
    }
}

/// The card processor refuses applicants whose address it cannot verify.
#[derive(Debug, Clone)]
pub struct IssueCard {
    /// The applicants whose address cannot be verified.
    pub address_unverifiable: Vec<&'static str>,
}

#[async_trait]
impl Activity for IssueCard {
    const NAME: &'static str = "issue-card";
    type Input = CardRequest;
    type Output = Card;
    async fn run(&self, ctx: ActivityContext, req: CardRequest) -> Result<Card, ActivityError> {
        remote_call().await;
        if self.address_unverifiable.contains(&req.applicant.as_str()) {
            activity_says(
                &ctx,
                Self::NAME,
                "card processor: address verification failed",
            );
            return Err(ActivityError::non_retryable(format!(
                "card processor refused {}: address verification failed",
                req.applicant
            ))
            .with_kind("address-verification"));
        }
        let card = Card {
            card_id: format!("card-{}", req.account.account_id),
            last4: format!(
                "{:04}",
                req.account
                    .account_id
                    .bytes()
                    .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
                    % 10_000
            ),
        };
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "card ending {} issued for {}",
                card.last4, req.account.account_id
            ),
        );
        Ok(card)
    }
}

/// Tells the applicant.
#[derive(Debug, Clone, Copy)]
pub struct NotifyApplicant;

#[async_trait]
impl Activity for NotifyApplicant {
    const NAME: &'static str = "notify-applicant";
    type Input = Message;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, m: Message) -> Result<(), ActivityError> {
        remote_call().await;
        activity_says(&ctx, Self::NAME, format!("to {}: \"{}\"", m.to, m.text));
        Ok(())
    }
}
