//! Activities shared by several tests. Each records its attempts in a
//! [`Ledger`] and returns `name(input)`, so a workflow result shows which
//! activities fed it and in what order.

use crate::ledger::{Ledger, Phase};
use refrain::{async_trait, Activity, ActivityContext, ActivityError};
use std::sync::Arc;
use tokio::sync::watch;

/// A latch a test opens to let gated activities finish, so it can look at
/// a workflow while an activity is known to be running.
#[derive(Clone)]
pub struct Gate(Arc<watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Self {
        Gate(Arc::new(watch::Sender::new(false)))
    }
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Gate::default()
    }

    /// Opens the gate for every current and later waiter.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    /// Whether the gate is open.
    pub fn is_open(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until the gate is open.
    pub async fn wait(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`, so the channel cannot close.
        let _ = rx.wait_for(|open| *open).await;
    }
}

macro_rules! echo_activity {
    ($(#[$doc:meta])* $ty:ident, $name:literal) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $ty {
            ledger: Ledger,
            gate: Option<Gate>,
        }

        impl $ty {
            #[doc = concat!("Records to `ledger`; returns `", $name, "(input)` at once.")]
            pub fn new(ledger: &Ledger) -> Self {
                $ty {
                    ledger: ledger.clone(),
                    gate: None,
                }
            }

            /// Makes every attempt wait for `gate` after recording its start.
            pub fn gated(mut self, gate: &Gate) -> Self {
                self.gate = Some(gate.clone());
                self
            }
        }

        #[async_trait]
        impl Activity for $ty {
            const NAME: &'static str = $name;
            type Input = String;
            type Output = String;

            async fn run(
                &self,
                ctx: ActivityContext,
                input: String,
            ) -> Result<String, ActivityError> {
                self.ledger.record(&ctx, Phase::Start);
                if let Some(gate) = &self.gate {
                    gate.wait().await;
                }
                self.ledger.record(&ctx, Phase::End);
                Ok(format!("{}({input})", $name))
            }
        }
    };
}

echo_activity!(
    /// `create-account`: the first step of onboarding.
    CreateAccount,
    "create-account"
);
echo_activity!(
    /// `provision`: the second step of onboarding.
    Provision,
    "provision"
);
echo_activity!(
    /// `send-welcome`: the last step of onboarding.
    SendWelcome,
    "send-welcome"
);
echo_activity!(
    /// `reserve`: reserves stock for an order.
    Reserve,
    "reserve"
);
echo_activity!(
    /// `charge`: charges the customer for an order.
    Charge,
    "charge"
);
echo_activity!(
    /// `ship`: ships an order.
    Ship,
    "ship"
);
