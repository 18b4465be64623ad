//! Changing the amount until the decision: the [`AmendAmount`] update, its answer, its handler.

use crate::narrate;
use refrain::{Update, WorkflowContext, WorkflowError};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::rc::Rc;

/// The applicant changes the amount they ask for, until the loan is
/// decided. Answered with the terms for the new amount.
#[derive(Debug, Clone, Copy)]
pub struct AmendAmount;

impl Update for AmendAmount {
    const NAME: &'static str = "amend-amount";
    type Args = Amendment;
    type Result = LoanTerms;
}

/// What the applicant sends to change the amount.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Amendment {
    /// The new amount, in euros. Signed because it comes from a form a
    /// person fills in: the workflow refuses anything but a positive
    /// amount.
    pub amount_eur: i64,
}

/// What a loan of a given amount costs: the answer to an amendment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoanTerms {
    /// The amount, in euros.
    pub amount_eur: u64,
    /// Over how many months.
    pub term_months: u32,
    /// The nominal annual interest rate, in percent.
    pub annual_rate_percent: f64,
    /// The monthly instalment, in euros, rounded to the cent.
    pub monthly_instalment_eur: f64,
}

impl LoanTerms {
    /// Every loan in the example runs 48 months at 6.9% a year.
    pub const TERM_MONTHS: u32 = 48;
    /// The example's nominal annual interest rate, in percent.
    pub const ANNUAL_RATE_PERCENT: f64 = 6.9;

    /// The terms for `amount_eur`: an annuity of [`Self::TERM_MONTHS`]
    /// equal monthly instalments at [`Self::ANNUAL_RATE_PERCENT`].
    pub fn for_amount(amount_eur: u64) -> Self {
        let monthly_rate = Self::ANNUAL_RATE_PERCENT / 100.0 / 12.0;
        let n = i32::try_from(Self::TERM_MONTHS).unwrap_or(i32::MAX);
        let instalment = amount_eur as f64 * monthly_rate / (1.0 - (1.0 + monthly_rate).powi(-n));
        LoanTerms {
            amount_eur,
            term_months: Self::TERM_MONTHS,
            annual_rate_percent: Self::ANNUAL_RATE_PERCENT,
            monthly_instalment_eur: (instalment * 100.0).round() / 100.0,
        }
    }
}

impl std::fmt::Display for LoanTerms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} EUR over {} months at {}% a year: {:.2} EUR a month",
            self.amount_eur,
            self.term_months,
            self.annual_rate_percent,
            self.monthly_instalment_eur
        )
    }
}

/// Takes [`AmendAmount`] updates: refused once `decided` is set or for an
/// amount that is not positive; accepted ones set `amount`, which the
/// workflow reads for every later step, and answer with the new terms.
pub(super) fn accept_amendments(
    ctx: &WorkflowContext,
    applicant: &str,
    amount: Rc<Cell<u64>>,
    decided: Rc<Cell<bool>>,
) {
    let (c, applicant) = (ctx.clone(), applicant.to_owned());
    ctx.on_update::<AmendAmount, _, _, _>(
        move |amendment| {
            if decided.get() {
                Err("the application was already decided; the amount can no longer change".into())
            } else if amendment.amount_eur <= 0 {
                Err(format!(
                    "the amount must be positive, got {} EUR",
                    amendment.amount_eur
                ))
            } else {
                Ok(())
            }
        },
        move |amendment| {
            let (amount, c, applicant) = (amount.clone(), c.clone(), applicant.clone());
            async move {
                // The validator let only positive amounts through.
                let new = u64::try_from(amendment.amount_eur)
                    .map_err(|_| WorkflowError::new("amount", "the amount must be positive"))?;
                let was = amount.replace(new);
                narrate(
                    &c,
                    format!("{applicant} amends the amount from {was} to {new} EUR"),
                );
                Ok(LoanTerms::for_amount(new))
            }
        },
    );
}
