//! Updates: requests a client sends to a running workflow, which the
//! workflow first validates and then answers.
//!
//! The validator runs when the request reaches the workflow, between two
//! of its steps, and sees the workflow's state as it is then. A request it
//! refuses (or that names no registered update) is answered with the
//! reason and leaves no trace in the history. An accepted one is recorded
//! (`UpdateAccepted`) and its handler runs alongside the workflow, free to
//! call activities, sleep or wait; its result is recorded too
//! (`UpdateCompleted` / `UpdateFailed`) and returned to the caller. On
//! replay the handler is started again from the record; the validator is
//! not asked twice.

use crate::context::WorkflowContext;
use crate::error::WorkflowError;
use crate::payload::{self, PayloadError};
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use refrain_history::{Failure, Payload};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::rc::Rc;

/// A typed update a workflow accepts, e.g. "change the delivery address".
///
/// ```
/// use serde::{Deserialize, Serialize};
/// #[derive(Serialize, Deserialize)]
/// struct Address { street: String }
/// struct ChangeAddress;
/// impl refrain::Update for ChangeAddress {
///     const NAME: &'static str = "change-address";
///     type Args = Address;
///     type Result = String; // the new shipping label
/// }
/// ```
pub trait Update: 'static {
    /// Name the update is registered and requested under.
    const NAME: &'static str;
    /// What the caller sends.
    type Args: Serialize + DeserializeOwned + 'static;
    /// What the handler returns to the caller.
    type Result: Serialize + DeserializeOwned + 'static;
}

/// Accepts (`Ok`) or refuses a request's arguments, with the reason.
pub(crate) type Validator = Rc<dyn Fn(&Payload) -> Result<(), String>>;

/// Starts a handler on accepted arguments.
pub(crate) type Handler = Rc<dyn Fn(Payload) -> LocalBoxFuture<'static, Result<Payload, Failure>>>;

/// A registered update with payloads in and out.
#[derive(Clone)]
pub(crate) struct UpdateHandler {
    pub validate: Validator,
    pub run: Handler,
}

impl WorkflowContext {
    /// Accepts update `U` from now on (a later registration of the same
    /// update replaces it).
    ///
    /// `validator` decides whether a request is accepted, from its
    /// arguments and the workflow's state (which it usually shares with the
    /// workflow through `Rc<RefCell<..>>`); `Err(reason)` refuses it,
    /// leaving no trace in the history. It must not call `ctx` commands.
    /// Pass `|_| Ok(())` to accept every request.
    ///
    /// `handler` runs for each accepted request, alongside the workflow,
    /// and may use the context like workflow code does (activities,
    /// timers, signals). Its `Ok` value is returned to the caller, its
    /// error reported as the update's failure. A handler still running when
    /// the workflow returns is dropped, and its caller told that the run
    /// closed first.
    ///
    /// ```
    /// # use refrain::{Signal, Update, Workflow, WorkflowContext, WorkflowError};
    /// # use serde::{Deserialize, Serialize};
    /// # use std::{cell::RefCell, rc::Rc};
    /// # #[derive(Serialize, Deserialize)]
    /// # struct Checkout;
    /// # impl Signal for Checkout { const NAME: &'static str = "checkout"; }
    /// struct AddItem;
    /// impl Update for AddItem {
    ///     const NAME: &'static str = "add-item";
    ///     type Args = String;
    ///     type Result = usize; // items in the cart
    /// }
    /// # struct Cart;
    /// # impl Workflow for Cart {
    /// #     const NAME: &'static str = "cart";
    /// #     type Input = ();
    /// #     type Output = Vec<String>;
    /// async fn run(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
    ///     let items = Rc::new(RefCell::new(Vec::<String>::new()));
    ///     let (check, add) = (items.clone(), items.clone());
    ///     ctx.on_update::<AddItem, _, _, _>(
    ///         move |sku| match check.borrow().len() {
    ///             n if n >= 10 => Err("the cart is full".to_string()),
    ///             _ if sku.is_empty() => Err("empty sku".to_string()),
    ///             _ => Ok(()),
    ///         },
    ///         move |sku| {
    ///             let add = add.clone();
    ///             async move {
    ///                 add.borrow_mut().push(sku);
    ///                 Ok(add.borrow().len())
    ///             }
    ///         },
    ///     );
    ///     ctx.wait_signal::<Checkout>().await?;
    ///     Ok(items.take())
    /// }
    /// # }
    /// ```
    pub fn on_update<U, V, H, F>(&self, validator: V, handler: H)
    where
        U: Update,
        V: Fn(&U::Args) -> Result<(), String> + 'static,
        H: Fn(U::Args) -> F + 'static,
        F: Future<Output = Result<U::Result, WorkflowError>> + 'static,
    {
        let validate: Validator = Rc::new(move |args: &Payload| {
            let args: U::Args =
                payload::decode(&arguments_of::<U>(), args).map_err(|e| e.to_string())?;
            validator(&args)
        });
        let handler = Rc::new(handler);
        let run: Handler = Rc::new(move |args: Payload| {
            let handler = handler.clone();
            async move {
                let args: U::Args = payload::decode(&arguments_of::<U>(), &args)
                    .map_err(|e| WorkflowError::from(e).into_failure())?;
                let result = handler(args).await.map_err(WorkflowError::into_failure)?;
                payload::encode(&result_of::<U>(), &result)
                    .map_err(|e| WorkflowError::from(e).into_failure())
            }
            .boxed_local()
        });
        self.state()
            .borrow_mut()
            .updates
            .insert(U::NAME.to_owned(), UpdateHandler { validate, run });
    }
}

fn arguments_of<U: Update>() -> String {
    format!("update {} arguments", U::NAME)
}

fn result_of<U: Update>() -> String {
    format!("update {} result", U::NAME)
}

/// Decodes an update result for a caller of `U`.
pub(crate) fn decode_result<U: Update>(p: &Payload) -> Result<U::Result, PayloadError> {
    payload::decode(&result_of::<U>(), p)
}
