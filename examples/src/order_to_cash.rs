//! Order to cash, with retries, an operations hand-off with a deadline, and
//! compensation (a saga).
//!
//! Each order goes through five steps, in this order:
//!
//! 1. `check-credit`: the customer's credit line is checked and a hold
//!    placed for the order amount;
//! 2. `charge-payment`: the payment is captured;
//! 3. `reserve-inventory`: the warehouse allocates the goods;
//! 4. `ship-order`: the goods are handed to the carrier;
//! 5. `send-invoice`: the invoice is issued for the shipped goods.
//!
//! Payment comes before the reservation because this shop, like most web
//! shops, charges at checkout and lets the warehouse allocate afterwards.
//! That is also the order in which a failure leaves something to undo:
//! when the warehouse cannot allocate, money has been taken and credit is
//! held.
//!
//! After each step that succeeds, the workflow registers how to undo it
//! (release the credit hold, refund the payment, release the
//! reservation). A reservation that fails is retried twice by the store
//! (three attempts in all, 250 ms apart and doubling); then operations are
//! alerted and given a deadline (2 s here, hours in real life) to resolve
//! it with a `stock-resolved` signal, for instance by offering a substitute
//! product. If the deadline passes, the order is cancelled: the registered
//! compensations run newest first, so the payment is refunded before the
//! credit hold is released.
//!
//! The example runs two orders ([`orders`]): `order-1001` goes through,
//! `order-1002` asks for a product that is out of stock and is cancelled.
//! With `--ops-substitutes`, operations answer order-1002's alert with a
//! substitute in time and it ships instead.
//!
//! The waits are the example's ([`WAREHOUSE_RETRY`], [`OPS_DEADLINE`]);
//! tests run the same workflow in a fraction of a second on the virtual
//! clock of `refrain-testkit`, which skips them.
//!
//! ```text
//! cargo run --release --example order_to_cash
//! cargo run --release --example order_to_cash -- --db /tmp/o2c   # kill -9 it, rerun: it resumes
//! cargo run --release --example order_to_cash -- cli --db /tmp/o2c history order-1002
//! ```

use crate::{
    activity_says, narrate, print_history, signal_recorded, start_or_resume, wait_for_activity,
    Begun,
};
use anyhow::Result;
use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, ActivityFailed, Client, ClientError,
    Failure, RetryPolicy, Signal, Store, Workflow, WorkflowContext, WorkflowError,
};
use refrain_worker::{Replayer, Worker, WorkerBuilder};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

// ----- the business data -----

/// One order: one product line, already priced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    /// The order number, also the workflow id.
    pub order_id: String,
    /// Who ordered, as the credit department knows them.
    pub customer: String,
    /// The product.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// The total price, in euro cents.
    pub amount_cents: u64,
}

/// How long operations have to resolve a stock problem.
pub const OPS_DEADLINE: Duration = Duration::from_secs(2);
/// The warehouse's first retry interval; the second is twice as long.
pub const WAREHOUSE_RETRY: Duration = Duration::from_millis(250);

/// The credit department's hold on a customer's credit line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreditHold {
    /// The hold's reference.
    pub hold_id: String,
    /// How much is held, in euro cents.
    pub amount_cents: u64,
}

/// A captured payment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payment {
    /// The payment provider's reference.
    pub payment_id: String,
    /// How much was captured, in euro cents.
    pub amount_cents: u64,
}

/// What the warehouse is asked to allocate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StockRequest {
    /// For which order.
    pub order_id: String,
    /// Which product.
    pub sku: String,
    /// How many.
    pub quantity: u32,
}

/// Goods the warehouse has allocated to an order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reservation {
    /// The reservation's reference.
    pub reservation_id: String,
    /// Which product.
    pub sku: String,
    /// How many.
    pub quantity: u32,
}

/// Goods handed to the carrier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shipment {
    /// The carrier's tracking number.
    pub tracking: String,
}

/// The signal operations send to resolve a stock problem: which product
/// to reserve instead.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
#[signal(name = "stock-resolved")]
pub struct StockResolved {
    /// Who resolved it.
    pub by: String,
    /// The product to reserve instead.
    pub sku: String,
    /// What was agreed, for the record.
    pub note: String,
}

/// How an order ended. A cancellation is a business outcome, not a
/// failure of the workflow, so it is a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderOutcome {
    /// Paid, shipped and invoiced.
    Fulfilled {
        /// The payment reference.
        payment: String,
        /// The carrier's tracking number.
        tracking: String,
        /// The invoice number.
        invoice: String,
    },
    /// Cancelled, with every completed step undone.
    Cancelled {
        /// Why.
        reason: String,
        /// What was undone, in the order it was undone.
        undone: Vec<String>,
    },
}

fn eur(cents: u64) -> String {
    format!("{}.{:02} EUR", cents / 100, cents % 100)
}

// ----- activities: the outside world -----

/// Stands in for the latency of a remote call.
async fn remote_call() {
    tokio::time::sleep(Duration::from_millis(60)).await;
}

/// The credit department: knows each customer's open credit line, checks
/// an order against it and places a hold.
#[derive(Debug, Clone)]
pub struct CheckCredit {
    /// Each customer's credit line, in euro cents; unknown customers have
    /// none.
    pub limits: BTreeMap<String, u64>,
}

#[async_trait]
impl Activity for CheckCredit {
    const NAME: &'static str = "check-credit";
    type Input = Order;
    type Output = CreditHold;
    async fn run(&self, ctx: ActivityContext, order: Order) -> Result<CreditHold, ActivityError> {
        remote_call().await;
        let limit = self.limits.get(&order.customer).copied().unwrap_or(0);
        if order.amount_cents > limit {
            activity_says(
                &ctx,
                Self::NAME,
                format!("declined: {} over limit", order.customer),
            );
            // Asking again will not raise the limit.
            return Err(ActivityError::non_retryable(format!(
                "{} needs {} but has {} of credit",
                order.customer,
                eur(order.amount_cents),
                eur(limit)
            ))
            .with_kind("credit-declined"));
        }
        let hold = CreditHold {
            hold_id: format!("hold-{}", order.order_id),
            amount_cents: order.amount_cents,
        };
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "{} holds {} ({})",
                order.customer,
                eur(hold.amount_cents),
                hold.hold_id
            ),
        );
        Ok(hold)
    }
}

/// Releases a credit hold (compensates [`CheckCredit`]).
#[derive(Debug, Clone, Copy)]
pub struct ReleaseCreditHold;

#[async_trait]
impl Activity for ReleaseCreditHold {
    const NAME: &'static str = "release-credit-hold";
    type Input = CreditHold;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, hold: CreditHold) -> Result<(), ActivityError> {
        remote_call().await;
        activity_says(
            &ctx,
            Self::NAME,
            format!("released {} ({})", hold.hold_id, eur(hold.amount_cents)),
        );
        Ok(())
    }
}

/// Captures the payment for an order.
#[derive(Debug, Clone, Copy)]
pub struct ChargePayment;

#[async_trait]
impl Activity for ChargePayment {
    const NAME: &'static str = "charge-payment";
    type Input = Order;
    type Output = Payment;
    async fn run(&self, ctx: ActivityContext, order: Order) -> Result<Payment, ActivityError> {
        remote_call().await;
        // A real payment provider gets the idempotency key, so that an
        // attempt repeated after a crash does not charge twice.
        let payment = Payment {
            payment_id: format!("pay-{}", order.order_id),
            amount_cents: order.amount_cents,
        };
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "captured {} ({}, key {})",
                eur(payment.amount_cents),
                payment.payment_id,
                ctx.idempotency_key()
            ),
        );
        Ok(payment)
    }
}

/// Refunds a payment (compensates [`ChargePayment`]).
#[derive(Debug, Clone, Copy)]
pub struct RefundPayment;

#[async_trait]
impl Activity for RefundPayment {
    const NAME: &'static str = "refund-payment";
    type Input = Payment;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, payment: Payment) -> Result<(), ActivityError> {
        remote_call().await;
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "refunded {} ({})",
                eur(payment.amount_cents),
                payment.payment_id
            ),
        );
        Ok(())
    }
}

/// The warehouse: some products are simply not on the shelf.
#[derive(Debug, Clone)]
pub struct ReserveInventory {
    /// The products on the shelf; any quantity of them can be reserved.
    pub in_stock: BTreeSet<String>,
}

#[async_trait]
impl Activity for ReserveInventory {
    const NAME: &'static str = "reserve-inventory";
    type Input = StockRequest;
    type Output = Reservation;
    async fn run(
        &self,
        ctx: ActivityContext,
        req: StockRequest,
    ) -> Result<Reservation, ActivityError> {
        remote_call().await;
        if !self.in_stock.contains(&req.sku) {
            activity_says(
                &ctx,
                Self::NAME,
                format!("{} x{} out of stock", req.sku, req.quantity),
            );
            // Retryable: a cancelled order or an inbound delivery may free
            // stock within moments.
            return Err(ActivityError::retryable(format!(
                "{} x{} not available",
                req.sku, req.quantity
            ))
            .with_kind("out-of-stock"));
        }
        let r = Reservation {
            reservation_id: format!("res-{}-{}", req.order_id, req.sku),
            sku: req.sku,
            quantity: req.quantity,
        };
        activity_says(
            &ctx,
            Self::NAME,
            format!("reserved {} x{} ({})", r.sku, r.quantity, r.reservation_id),
        );
        Ok(r)
    }
}

/// Releases a reservation (compensates [`ReserveInventory`]).
#[derive(Debug, Clone, Copy)]
pub struct ReleaseReservation;

#[async_trait]
impl Activity for ReleaseReservation {
    const NAME: &'static str = "release-inventory";
    type Input = Reservation;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, r: Reservation) -> Result<(), ActivityError> {
        remote_call().await;
        activity_says(&ctx, Self::NAME, format!("released {}", r.reservation_id));
        Ok(())
    }
}

/// What operations are paged with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    /// Which order.
    pub order_id: String,
    /// What is wrong.
    pub problem: String,
    /// How long they have before the order is cancelled, in milliseconds.
    pub deadline_ms: u64,
}

/// Pages the warehouse on-call.
#[derive(Debug, Clone, Copy)]
pub struct NotifyOperations;

#[async_trait]
impl Activity for NotifyOperations {
    const NAME: &'static str = "notify-operations";
    type Input = Alert;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, alert: Alert) -> Result<(), ActivityError> {
        remote_call().await;
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "paged warehouse on-call: \"{}: {}; resolve within {:?} or it is cancelled\"",
                alert.order_id,
                alert.problem,
                Duration::from_millis(alert.deadline_ms)
            ),
        );
        Ok(())
    }
}

/// Hands reserved goods to the carrier.
#[derive(Debug, Clone, Copy)]
pub struct ShipOrder;

#[async_trait]
impl Activity for ShipOrder {
    const NAME: &'static str = "ship-order";
    type Input = Reservation;
    type Output = Shipment;
    async fn run(&self, ctx: ActivityContext, r: Reservation) -> Result<Shipment, ActivityError> {
        remote_call().await;
        let s = Shipment {
            tracking: format!(
                "DHL-{}",
                r.reservation_id.len() * 7919 + r.quantity as usize
            ),
        };
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "{} x{} handed to carrier, tracking {}",
                r.sku, r.quantity, s.tracking
            ),
        );
        Ok(s)
    }
}

/// Issues the invoice for an order; returns its number.
#[derive(Debug, Clone, Copy)]
pub struct SendInvoice;

#[async_trait]
impl Activity for SendInvoice {
    const NAME: &'static str = "send-invoice";
    type Input = Order;
    type Output = String;
    async fn run(&self, ctx: ActivityContext, order: Order) -> Result<String, ActivityError> {
        remote_call().await;
        let invoice = format!("INV-{}", order.order_id.trim_start_matches("order-"));
        activity_says(
            &ctx,
            Self::NAME,
            format!(
                "{invoice} over {} sent to {}",
                eur(order.amount_cents),
                order.customer
            ),
        );
        Ok(invoice)
    }
}

// ----- the workflow -----

/// Every attempt of these activities takes milliseconds; the short bound
/// matters after a crash, when an attempt that was running is retried only
/// once its start-to-close timeout has passed.
const STEP_TIMEOUT: Duration = Duration::from_secs(2);

/// Ordinary steps: a remote system's hiccups are retried a few times.
fn step_retry() -> RetryPolicy {
    RetryPolicy::exponential()
        .initial_interval(Duration::from_millis(200))
        .max_interval(Duration::from_secs(2))
        .max_attempts(5)
}

/// The warehouse: two quick retries; stock that has not appeared by then
/// needs a person.
fn warehouse_retry() -> RetryPolicy {
    RetryPolicy::exponential()
        .initial_interval(WAREHOUSE_RETRY)
        .backoff_coefficient(2.0)
        .max_attempts(3)
}

/// Compensations never give up: the money has to go back, however long
/// the payment provider is down.
fn compensation_retry() -> RetryPolicy {
    RetryPolicy::exponential()
        .initial_interval(Duration::from_millis(200))
        .max_interval(Duration::from_secs(5))
}

/// How to undo one completed step.
#[derive(Debug, Clone)]
enum Undo {
    ReleaseCreditHold(CreditHold),
    RefundPayment(Payment),
    ReleaseReservation(Reservation),
}

/// The compensations of the steps completed so far, in completion order.
#[derive(Default)]
struct Saga {
    undo: Vec<Undo>,
}

impl Saga {
    fn register(&mut self, undo: Undo) {
        self.undo.push(undo);
    }

    /// Undoes every completed step, newest first (a refund before the
    /// credit hold it was charged against is released), and reports the
    /// order as cancelled.
    async fn cancel(
        self,
        ctx: &WorkflowContext,
        reason: String,
    ) -> Result<OrderOutcome, WorkflowError> {
        narrate(ctx, format!("cancelling: {reason}"));
        narrate(
            ctx,
            format!(
                "undoing {} completed step(s), newest first",
                self.undo.len()
            ),
        );
        let mut undone = Vec::new();
        for step in self.undo.into_iter().rev() {
            let done = match step {
                Undo::RefundPayment(p) => {
                    let what = format!("refunded {} ({})", eur(p.amount_cents), p.payment_id);
                    compensate::<RefundPayment>(ctx, p).await?;
                    what
                }
                Undo::ReleaseCreditHold(h) => {
                    let what = format!("released credit hold {}", h.hold_id);
                    compensate::<ReleaseCreditHold>(ctx, h).await?;
                    what
                }
                Undo::ReleaseReservation(r) => {
                    let what = format!("released reservation {}", r.reservation_id);
                    compensate::<ReleaseReservation>(ctx, r).await?;
                    what
                }
            };
            undone.push(done);
        }
        Ok(OrderOutcome::Cancelled { reason, undone })
    }
}

async fn compensate<A: Activity<Output = ()>>(
    ctx: &WorkflowContext,
    input: A::Input,
) -> Result<(), WorkflowError> {
    ctx.activity::<A>(input)
        .start_to_close(STEP_TIMEOUT)
        .retry(compensation_retry())
        .await?;
    Ok(())
}

async fn reserve(
    ctx: &WorkflowContext,
    order: &Order,
    sku: &str,
) -> Result<Reservation, ActivityFailed> {
    ctx.activity::<ReserveInventory>(StockRequest {
        order_id: order.order_id.clone(),
        sku: sku.to_owned(),
        quantity: order.quantity,
    })
    .start_to_close(STEP_TIMEOUT)
    .retry(warehouse_retry())
    .await
}

/// The order-to-cash workflow: credit, payment, reservation (with the
/// operations hand-off), shipping, invoicing; compensated newest first
/// when the order is cancelled.
#[derive(Debug, Clone, Copy)]
pub struct OrderToCash;

#[refrain::deterministic]
impl Workflow for OrderToCash {
    const NAME: &'static str = "order-to-cash";
    type Input = Order;
    type Output = OrderOutcome;

    async fn run(ctx: WorkflowContext, order: Order) -> Result<OrderOutcome, WorkflowError> {
        let mut saga = Saga::default();
        let ops_deadline = OPS_DEADLINE;
        narrate(
            &ctx,
            format!(
                "{} orders {} x{} for {}",
                order.customer,
                order.sku,
                order.quantity,
                eur(order.amount_cents)
            ),
        );

        let hold = match ctx
            .activity::<CheckCredit>(order.clone())
            .start_to_close(STEP_TIMEOUT)
            .retry(step_retry())
            .await
        {
            Ok(h) => h,
            Err(e) => {
                return saga
                    .cancel(&ctx, format!("credit check failed: {}", e.failure))
                    .await
            }
        };
        saga.register(Undo::ReleaseCreditHold(hold));

        let payment = match ctx
            .activity::<ChargePayment>(order.clone())
            .start_to_close(STEP_TIMEOUT)
            .retry(step_retry().non_retryable("card-declined"))
            .await
        {
            Ok(p) => p,
            Err(e) => {
                return saga
                    .cancel(&ctx, format!("payment failed: {}", e.failure))
                    .await
            }
        };
        saga.register(Undo::RefundPayment(payment.clone()));

        let reservation = match reserve(&ctx, &order, &order.sku).await {
            Ok(r) => r,
            Err(failed) => {
                narrate(
                    &ctx,
                    format!(
                        "warehouse gave up after {} attempts ({}); alerting operations",
                        failed.attempts, failed.failure
                    ),
                );
                ctx.activity::<NotifyOperations>(Alert {
                    order_id: order.order_id.clone(),
                    problem: format!("{} x{} out of stock", order.sku, order.quantity),
                    deadline_ms: u64::try_from(OPS_DEADLINE.as_millis()).unwrap_or(u64::MAX),
                })
                .start_to_close(STEP_TIMEOUT)
                .retry(step_retry())
                .await?;
                narrate(
                    &ctx,
                    format!("waiting up to {ops_deadline:?} for operations"),
                );
                match ctx.wait_signal_for::<StockResolved>(ops_deadline).await? {
                    Some(fix) => {
                        narrate(
                            &ctx,
                            format!(
                                "{} resolved it: {} (reserving {})",
                                fix.by, fix.note, fix.sku
                            ),
                        );
                        match reserve(&ctx, &order, &fix.sku).await {
                            Ok(r) => r,
                            Err(e) => {
                                let reason = format!(
                                    "substitute {} not available either: {}",
                                    fix.sku, e.failure
                                );
                                return saga.cancel(&ctx, reason).await;
                            }
                        }
                    }
                    None => {
                        let reason = format!(
                            "{} x{} out of stock and not resolved within {ops_deadline:?}",
                            order.sku, order.quantity
                        );
                        return saga.cancel(&ctx, reason).await;
                    }
                }
            }
        };
        saga.register(Undo::ReleaseReservation(reservation.clone()));

        let shipment = match ctx
            .activity::<ShipOrder>(reservation)
            .start_to_close(STEP_TIMEOUT)
            .retry(step_retry())
            .await
        {
            Ok(s) => s,
            Err(e) => {
                return saga
                    .cancel(&ctx, format!("shipping failed: {}", e.failure))
                    .await
            }
        };

        // The goods have left: from here on nothing is undone, so a failing
        // invoice run fails the workflow for a person to look at.
        let invoice = ctx
            .activity::<SendInvoice>(order.clone())
            .start_to_close(STEP_TIMEOUT)
            .retry(step_retry())
            .await?;
        narrate(&ctx, "fulfilled");
        Ok(OrderOutcome::Fulfilled {
            payment: payment.payment_id,
            tracking: shipment.tracking,
            invoice,
        })
    }
}

// ----- what runs it -----

/// Registers [`OrderToCash`] and its activities, configured as in the
/// example (Acme GmbH has 50 000 EUR of credit and Globex Ltd 25 000 EUR;
/// `KB-ERGO-2` and `GPU-RTX-5880` are in stock, `GPU-RTX-6000` is not).
pub fn register(builder: WorkerBuilder) -> WorkerBuilder {
    builder
        .workflow::<OrderToCash>()
        .activity(CheckCredit {
            limits: BTreeMap::from([
                ("Acme GmbH".to_owned(), 5_000_000),
                ("Globex Ltd".to_owned(), 2_500_000),
            ]),
        })
        .activity(ReleaseCreditHold)
        .activity(ChargePayment)
        .activity(RefundPayment)
        .activity(ReserveInventory {
            in_stock: BTreeSet::from(["KB-ERGO-2".to_owned(), "GPU-RTX-5880".to_owned()]),
        })
        .activity(ReleaseReservation)
        .activity(NotifyOperations)
        .activity(ShipOrder)
        .activity(SendInvoice)
}

/// Starts a worker on `store` with everything [`register`] registers.
/// Must be called within a tokio runtime.
pub fn start_worker(store: Store) -> Worker {
    register(Worker::builder(store)).start()
}

/// A replayer with this example's workflow type, for `refrain replay` and
/// replay tests.
pub fn replayer() -> Replayer {
    Replayer::new().workflow::<OrderToCash>()
}

/// The example's two orders: `order-1001` (in stock, goes through) and
/// `order-1002` (out of stock).
pub fn orders() -> Vec<Order> {
    vec![
        Order {
            order_id: "order-1001".into(),
            customer: "Acme GmbH".into(),
            sku: "KB-ERGO-2".into(),
            quantity: 20,
            amount_cents: 298_000,
        },
        Order {
            order_id: "order-1002".into(),
            customer: "Globex Ltd".into(),
            sku: "GPU-RTX-6000".into(),
            quantity: 2,
            amount_cents: 1_380_000,
        },
    ]
}

/// What the example plays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scenario {
    /// Operations answer order-1002's stock alert with a substitute
    /// product in time, so that it ships instead of being cancelled.
    pub ops_substitutes: bool,
}

/// Runs the example's [`orders`] one after the other, so that the two
/// stories do not interleave: starts each (or resumes the run a killed
/// process left open, or finds it already closed), plays operations when
/// `scenario.ops_substitutes`, and prints the outcome and the history. A
/// worker from [`start_worker`] must be running on the client's store.
///
/// Returns each order's id and how it ended: its outcome, or the failure
/// of its workflow.
///
/// # Errors
/// Storage errors, and operations giving up waiting for the alert.
pub async fn run(
    client: &Client,
    scenario: Scenario,
) -> Result<Vec<(String, Result<OrderOutcome, Failure>)>> {
    let mut ended = Vec::new();
    for order in orders() {
        println!();
        let id = order.order_id.clone();
        let (handle, begun) = start_or_resume::<OrderToCash>(client, &id, order).await?;
        if scenario.ops_substitutes
            && id == "order-1002"
            && !matches!(begun, Begun::AlreadyClosed(_))
        {
            operations_offer_substitute(client, &id).await?;
        }
        let outcome = match handle.result().await {
            Ok(outcome) => {
                match &outcome {
                    OrderOutcome::Fulfilled {
                        payment,
                        tracking,
                        invoice,
                    } => println!(
                        "[main] {id}: FULFILLED: paid {payment}, shipped {tracking}, invoiced {invoice}"
                    ),
                    OrderOutcome::Cancelled { reason, undone } => {
                        println!("[main] {id}: CANCELLED: {reason}");
                        println!("[main] {id}: compensated: {}", undone.join(", then "));
                    }
                }
                Ok(outcome)
            }
            Err(ClientError::WorkflowFailed { failure, .. }) => {
                println!("[main] {id}: FAILED: {failure}");
                Err(failure)
            }
            Err(e) => return Err(e.into()),
        };
        print_history(client, &id).await?;
        ended.push((id, outcome));
    }
    Ok(ended)
}

/// Plays the on-call operator: once alerted, offers a substitute product.
/// Rerun after a crash, it sends nothing if the workflow already recorded
/// the answer; a duplicate that slips through (sent, then a crash before
/// the workflow recorded it) is harmless, as the workflow reads one answer.
///
/// # Errors
/// Storage errors, or no alert within 30 s.
pub async fn operations_offer_substitute(client: &Client, id: &str) -> Result<()> {
    if signal_recorded(client, id, StockResolved::NAME).await? {
        return Ok(());
    }
    if !wait_for_activity(client, id, NotifyOperations::NAME, Duration::from_secs(30)).await? {
        return Ok(());
    }
    println!("[main] {id}: operations answer the alert with a substitute product");
    let fix = StockResolved {
        by: "warehouse on-call".into(),
        sku: "GPU-RTX-5880".into(),
        note: "customer accepted the RTX 5880 at the same price".into(),
    };
    match client.signal(id, &fix).await {
        Ok(()) | Err(ClientError::Closed { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
