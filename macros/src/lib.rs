//! Compile-time determinism checks and derives for Refrain workflow code.
//!
//! Use these through the `refrain` crate: `#[refrain::deterministic]` on
//! workflow code, [`#[refrain::activity]`](macro@activity) on an
//! `impl Activity for X` block, and [`#[derive(Signal)]`](derive@Signal) and
//! [`#[derive(Query)]`](derive@Query) on the types of signals and queries.
//!
//! A workflow is re-executed from its history after every crash, restart
//! and cache eviction, and must make the same decisions every time. The
//! runtime catches some mistakes (a tokio timer or a foreign wake stops the
//! activation with a `NondeterminismError`), but only when the code runs,
//! and a wall-clock read or a random number is not caught at all: it writes
//! a history that a later replay cannot reproduce. [`macro@deterministic`]
//! rejects those calls where they are written, at compile time.
//!
//! # What is rejected (errors)
//!
//! A path, called or not, whose trailing segments are one of these (so
//! `std::time::SystemTime::now`, `time::SystemTime::now` and an imported
//! `SystemTime::now` are all caught):
//!
//! | path | use instead |
//! |---|---|
//! | `SystemTime::now`, `Instant::now` | `ctx.now()` |
//! | `thread::sleep`, `tokio::time::sleep`, `time::sleep`, `time::sleep_until` | `ctx.sleep(..)` |
//! | `time::timeout` | `select` with `ctx.sleep(..)` |
//! | `time::interval` | `ctx.sleep(..)` in a loop |
//! | `tokio::spawn`, `task::spawn`, `task::spawn_local`, `task::spawn_blocking`, `thread::spawn` | `join`, `join_all`, `select` |
//! | `rand::random`, `rand::rng`, `thread_rng`, `*::from_entropy`, `*::from_os_rng`, `Uuid::new_v4` | `ctx.random()`, `ctx.uuid()` |
//! | `process::exit` | return an `Err(WorkflowError)` from `run` |
//! | the `select!` macro (`futures::select!`, `tokio::select!`) | `refrain::select` |
//!
//! # What is warned about
//!
//! * Reading the environment (`env::var`, `env::var_os`, `env::vars`): the
//!   value can change between a run and its replay; read it in an activity,
//!   in `ctx.side_effect(..)`, or pass it in the workflow input.
//! * Iterating a `HashMap` or `HashSet`: its order can differ from one
//!   process to the next. Use `BTreeMap`/`BTreeSet`, or collect and sort.
//!   The heuristic: a local `let` whose type annotation (or, without one,
//!   whose initializer) names `HashMap` or `HashSet`, or a function
//!   parameter whose type names one, is a hash container until it is
//!   rebound; iterating it is `for _ in m`, `for _ in &m`, `for _ in &mut m`,
//!   or calling `iter`, `iter_mut`, `keys`, `values`, `values_mut`,
//!   `into_iter`, `into_keys`, `into_values` or `drain` on it, except to
//!   `.collect()` into a `BTreeMap`/`BTreeSet` (named in `collect::<..>` or
//!   in the type of the `let`), whose order does not depend on it. Struct
//!   fields and maps returned from functions are not tracked.
//!
//! Stable Rust gives procedural macros no warnings of their own, so a
//! warning is a use of a `#[deprecated]` identity function of the `refrain`
//! crate wrapped around the flagged expression (no cost at run time); rustc
//! prints it as `use of deprecated function` with the reason and the
//! replacement. Silence one you have judged harmless (say, a sum over the
//! values, which does not depend on order) with `#[allow(deprecated)]` on
//! the statement or function. There is no switch for the errors: move the
//! call into an activity or `ctx.side_effect(..)`, which is outside the
//! annotated code and recorded once.
//!
//! # Limits
//!
//! The check is syntactic. It sees the annotated item's own code, including
//! closures, nested functions and the arguments of function-like macros that
//! parse as comma-separated expressions (`format!`, `println!`, `assert!`);
//! it does not see into functions defined elsewhere, so a helper outside the
//! annotated code that calls `SystemTime::now()` is not caught (annotate the
//! helper too). It matches names, not resolved items: a function of your own
//! called `thread::sleep` is rejected, and a renamed import
//! (`use std::time::SystemTime as Clock;`) is missed. The warnings refer to
//! the crate by the name `refrain`.

mod derives;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2, TokenTree};
use quote::{quote, ToTokens};
use std::collections::BTreeSet;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Item, Pat, Token};

/// Checks workflow code for calls that are never replay-safe.
///
/// Put it on an `impl Workflow for X` block, on a free `fn` or `async fn`
/// that workflow code calls, or on an inline `mod`. Clean code is returned
/// unchanged. Each rejected call is a compile error spanned at the call,
/// naming the call, why it cannot be replayed and the replacement; see the
/// crate documentation for the full list, the warnings and the limits.
///
/// ```
/// use refrain::{Workflow, WorkflowContext, WorkflowError};
/// use std::time::Duration;
///
/// struct Checkout;
/// #[refrain::deterministic]
/// impl Workflow for Checkout {
///     const NAME: &'static str = "checkout";
///     type Input = u64;
///     type Output = String;
///     async fn run(ctx: WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
///         let started = ctx.now(); // the recorded time: accepted
///         ctx.sleep(Duration::from_secs(60)).await;
///         Ok(format!("{cents} at {started:?}"))
///     }
/// }
/// ```
///
/// The same workflow reading the wall clock does not compile:
///
/// ```compile_fail
/// # use refrain::{Workflow, WorkflowContext, WorkflowError};
/// # struct Checkout;
/// #[refrain::deterministic]
/// impl Workflow for Checkout {
///     // ...
/// #   const NAME: &'static str = "checkout";
/// #   type Input = u64;
/// #   type Output = String;
///     async fn run(ctx: WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
///         let started = std::time::SystemTime::now(); // error: use `ctx.now()`
///         Ok(format!("{cents} at {started:?}"))
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn deterministic(args: TokenStream, input: TokenStream) -> TokenStream {
    let args = TokenStream2::from(args);
    if let Some(first) = args.into_iter().next() {
        return syn::Error::new(first.span(), "#[deterministic] takes no arguments")
            .to_compile_error()
            .into();
    }
    let mut item = match syn::parse::<Item>(input) {
        Ok(item) => item,
        Err(err) => return err.to_compile_error().into(),
    };
    if let Item::Impl(activity) = &item {
        if let Some(path) = impl_of(activity, "Activity") {
            let err = syn::Error::new_spanned(
                path,
                "#[refrain::deterministic] checks workflow code, and this is an activity: \
                 activities run once and their result is recorded, so they may read the clock, \
                 sleep and draw random numbers; write #[refrain::activity] on an activity instead",
            )
            .to_compile_error();
            // Expanded as an activity, so that the one error is this one.
            let activity = as_activity(activity.clone());
            return quote!(#activity #err).into();
        }
    }
    let mut check = Check::default();
    check.visit_item_mut(&mut item);
    let errors = check.errors.iter().map(syn::Error::to_compile_error);
    quote!(#item #(#errors)*).into()
}

/// Writes an activity: `#[refrain::activity] impl Activity for X { .. }`.
///
/// The `Activity` trait has `async fn run`, which an implementation can
/// only write through `#[async_trait]`; without it rustc reports error
/// E0195, "lifetime parameters or bounds on method `run` do not match the
/// trait declaration", which does not say what is missing. This attribute
/// applies `async_trait` itself (an impl that already has `#[async_trait]`
/// is left as it is), and says plainly when it is put on something other
/// than an `impl Activity for X` block or `run` is not an `async fn`.
///
/// ```
/// use refrain::{Activity, ActivityContext, ActivityError};
///
/// struct ChargeCard;
/// #[refrain::activity]
/// impl Activity for ChargeCard {
///     const NAME: &'static str = "charge-card";
///     type Input = u64;
///     type Output = String;
///     async fn run(&self, ctx: ActivityContext, cents: u64) -> Result<String, ActivityError> {
///         Ok(format!("pay-{cents}-{}", ctx.idempotency_key()))
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn activity(args: TokenStream, input: TokenStream) -> TokenStream {
    let args = TokenStream2::from(args);
    if let Some(first) = args.into_iter().next() {
        return syn::Error::new(first.span(), "#[activity] takes no arguments")
            .to_compile_error()
            .into();
    }
    let item = match syn::parse::<Item>(input) {
        Ok(item) => item,
        Err(err) => return err.to_compile_error().into(),
    };
    let Item::Impl(mut activity) = item else {
        let err = syn::Error::new_spanned(
            &item,
            "#[refrain::activity] goes on an `impl Activity for X` block",
        )
        .to_compile_error();
        return quote!(#err #item).into();
    };
    if impl_of(&activity, "Workflow").is_some() {
        let err = syn::Error::new_spanned(
            &activity.self_ty,
            "#[refrain::activity] goes on an `impl Activity for X` block, and this is a \
             workflow: its `async fn run` needs no attribute; #[refrain::deterministic] checks it",
        )
        .to_compile_error();
        return quote!(#activity #err).into();
    }
    let mut errors = TokenStream2::new();
    for item in &mut activity.items {
        if let syn::ImplItem::Fn(f) = item {
            if f.sig.ident == "run" && f.sig.asyncness.is_none() {
                errors.extend(
                    syn::Error::new_spanned(
                        f.sig.fn_token,
                        "the `run` of an activity is an `async fn`: write \
                         `async fn run(&self, ctx: ActivityContext, input: Self::Input) \
                         -> Result<Self::Output, ActivityError>`",
                    )
                    .to_compile_error(),
                );
                // Expanded as the `async fn` it should be, so that rustc
                // does not add E0195 to the error above.
                f.sig.asyncness = Some(Token![async](f.sig.fn_token.span));
            }
        }
    }
    let activity = as_activity(activity);
    quote!(#activity #errors).into()
}

/// Implements `refrain::Signal` for a struct or enum: the signal's name is
/// `#[signal(name = "..")]`, or the type's name in kebab case
/// (`StockResolved` is sent as `stock-resolved`). The type also needs
/// serde's `Serialize` and `Deserialize`.
///
/// ```
/// use refrain::Signal;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Signal)]
/// struct StockResolved { sku: String }
///
/// #[derive(Serialize, Deserialize, Signal)]
/// #[signal(name = "manager-approval")]
/// struct Approval { approved: bool }
///
/// assert_eq!(StockResolved::NAME, "stock-resolved");
/// assert_eq!(Approval::NAME, "manager-approval");
/// ```
///
/// The name is recorded in histories: renaming the type changes a default
/// name, so give running workflows' signals an explicit one before renaming.
#[proc_macro_derive(Signal, attributes(signal))]
pub fn derive_signal(input: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(input) {
        Ok(input) => derives::derive(derives::Kind::Signal, input).into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// Implements `refrain::Query` for a type: `#[query(result = T)]` names what
/// the query answers with (required), `args = A` what callers pass (default
/// `()`), and `name = ".."` its name (default: the type's name in kebab
/// case).
///
/// ```
/// use refrain::Query;
///
/// /// Which approvals a document has.
/// #[derive(Query)]
/// #[query(result = Vec<String>)]
/// struct Approvals;
///
/// /// Approvals whose approver starts with a prefix.
/// #[derive(Query)]
/// #[query(name = "approvals-by", args = String, result = Vec<String>)]
/// struct ApprovalsBy;
///
/// assert_eq!(Approvals::NAME, "approvals");
/// assert_eq!(ApprovalsBy::NAME, "approvals-by");
/// ```
#[proc_macro_derive(Query, attributes(query))]
pub fn derive_query(input: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(input) {
        Ok(input) => derives::derive(derives::Kind::Query, input).into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// The trait path of `imp` when it implements a trait named `name`.
fn impl_of<'a>(imp: &'a syn::ItemImpl, name: &str) -> Option<&'a syn::Path> {
    let (path, _) = imp.trait_.as_ref()?;
    let last = path.segments.last()?;
    (last.ident == name).then_some(path)
}

/// `imp` with `#[async_trait]` applied, unless it already has it.
fn as_activity(imp: syn::ItemImpl) -> TokenStream2 {
    let has_async_trait = imp.attrs.iter().any(|attr| {
        attr.path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "async_trait")
    });
    if has_async_trait {
        imp.into_token_stream()
    } else {
        quote!(#[::refrain::async_trait] #imp)
    }
}

/// A call that is never replay-safe: the trailing path segments that name
/// it, and the message.
struct Rule {
    suffix: &'static [&'static str],
    message: &'static str,
}

const CLOCK: &str = "reads the clock, which differs on every replay; use `ctx.now()`, the time recorded for the activation";
const SLEEP: &str =
    "is a timer that is not recorded in the history; use `ctx.sleep(..)`, a durable timer";
const TIMEOUT: &str = "is a timer that is not recorded in the history; race the work against `ctx.sleep(..)` with `refrain::select`";
const SPAWN: &str = "runs work outside the workflow's deterministic scheduling; use `refrain::join`, `refrain::join_all` or `refrain::select` to run futures concurrently";
const RANDOM: &str = "produces different values on replay; use `ctx.random()` or `ctx.uuid()`, which are seeded from the history";
const INTERVAL: &str =
    "is a timer that is not recorded in the history; call `ctx.sleep(..)` in a loop instead";
const EXIT: &str = "ends the whole worker process, not the workflow, and the workflow runs again after the restart; return an `Err(WorkflowError)` from `run` instead";

const RULES: &[Rule] = &[
    Rule {
        suffix: &["SystemTime", "now"],
        message: CLOCK,
    },
    Rule {
        suffix: &["Instant", "now"],
        message: CLOCK,
    },
    Rule {
        suffix: &["thread", "sleep"],
        message: SLEEP,
    },
    Rule {
        suffix: &["time", "sleep"],
        message: SLEEP,
    },
    Rule {
        suffix: &["time", "sleep_until"],
        message: SLEEP,
    },
    Rule {
        suffix: &["time", "timeout"],
        message: TIMEOUT,
    },
    Rule {
        suffix: &["time", "interval"],
        message: INTERVAL,
    },
    Rule {
        suffix: &["tokio", "spawn"],
        message: SPAWN,
    },
    Rule {
        suffix: &["task", "spawn"],
        message: SPAWN,
    },
    Rule {
        suffix: &["task", "spawn_local"],
        message: SPAWN,
    },
    Rule {
        suffix: &["task", "spawn_blocking"],
        message: SPAWN,
    },
    Rule {
        suffix: &["thread", "spawn"],
        message: SPAWN,
    },
    Rule {
        suffix: &["rand", "random"],
        message: RANDOM,
    },
    Rule {
        suffix: &["rand", "rng"],
        message: RANDOM,
    },
    Rule {
        suffix: &["thread_rng"],
        message: RANDOM,
    },
    Rule {
        suffix: &["from_entropy"],
        message: RANDOM,
    },
    Rule {
        suffix: &["from_os_rng"],
        message: RANDOM,
    },
    Rule {
        suffix: &["Uuid", "new_v4"],
        message: RANDOM,
    },
    Rule {
        suffix: &["process", "exit"],
        message: EXIT,
    },
];

const ENV: &[&[&str]] = &[&["env", "var"], &["env", "var_os"], &["env", "vars"]];

const HASH_ITERATION: &[&str] = &[
    "iter",
    "iter_mut",
    "keys",
    "values",
    "values_mut",
    "into_iter",
    "into_keys",
    "into_values",
    "drain",
];

/// The walk over the annotated item: collects errors, and wraps flagged
/// expressions in the `refrain::__lint` functions whose deprecation notes
/// are the warnings.
#[derive(Default)]
struct Check {
    errors: Vec<syn::Error>,
    /// Names of the locals and parameters currently bound to a hash container.
    hash_bound: BTreeSet<String>,
    /// Inside a `.collect()` into a `BTreeMap`/`BTreeSet`, whose order does
    /// not depend on the order it is fed in: the usual way out of a hash
    /// container, not flagged.
    into_ordered: bool,
}

fn segments(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

fn ends_with(segments: &[String], suffix: &[&str]) -> bool {
    segments.len() >= suffix.len()
        && segments[segments.len() - suffix.len()..]
            .iter()
            .zip(suffix)
            .all(|(a, b)| a == b)
}

fn names_any(tokens: TokenStream2, names: &[&str]) -> bool {
    tokens.into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => names.iter().any(|name| ident == name),
        TokenTree::Group(group) => names_any(group.stream(), names),
        _ => false,
    })
}

fn names_hash_container(tokens: TokenStream2) -> bool {
    names_any(tokens, &["HashMap", "HashSet"])
}

fn names_ordered_container(tokens: TokenStream2) -> bool {
    names_any(tokens, &["BTreeMap", "BTreeSet"])
}

fn is_collect(expr: &Expr) -> bool {
    matches!(expr, Expr::MethodCall(call) if call.method == "collect")
}

/// The name a pattern binds, when it binds exactly one plain name.
fn bound_name(pat: &Pat) -> Option<(String, Option<&syn::Type>)> {
    match pat {
        Pat::Ident(p) if p.subpat.is_none() => Some((p.ident.to_string(), None)),
        Pat::Type(p) => bound_name(&p.pat).map(|(name, _)| (name, Some(&*p.ty))),
        _ => None,
    }
}

/// `m`, `&m` or `&mut m` when `m` is a single-segment path.
fn plain_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
            Some(p.path.segments[0].ident.to_string())
        }
        Expr::Reference(r) => plain_name(&r.expr),
        Expr::Paren(p) => plain_name(&p.expr),
        _ => None,
    }
}

/// Wraps `expr` in the deprecated identity function `lint`, spanned at
/// `span` so that the warning points there.
fn wrap(expr: &mut Expr, lint: &str, span: Span) {
    let lint = syn::Ident::new(lint, span);
    let inner = std::mem::replace(expr, Expr::Verbatim(TokenStream2::new()));
    *expr = syn::parse_quote_spanned!(span=> ::refrain::__lint::#lint(#inner));
}

impl Check {
    fn bind(&mut self, pat: &Pat, is_hash: impl FnOnce(Option<&syn::Type>) -> bool) {
        if let Some((name, ty)) = bound_name(pat) {
            if is_hash(ty) {
                self.hash_bound.insert(name);
            } else {
                self.hash_bound.remove(&name);
            }
        }
    }

    fn check_path(&mut self, path: &syn::Path) {
        let segs = segments(path);
        if let Some(rule) = RULES.iter().find(|r| ends_with(&segs, r.suffix)) {
            let shown = segs.join("::");
            self.errors.push(syn::Error::new_spanned(
                path,
                format!(
                    "`{shown}` is not replay-safe in workflow code: it {}",
                    rule.message
                ),
            ));
        }
    }
}

impl VisitMut for Check {
    // A binding lasts to the end of its block, and a parameter to the end
    // of its function.
    fn visit_block_mut(&mut self, block: &mut syn::Block) {
        let outer = self.hash_bound.clone();
        visit_mut::visit_block_mut(self, block);
        self.hash_bound = outer;
    }

    fn visit_item_fn_mut(&mut self, item: &mut syn::ItemFn) {
        let outer = self.hash_bound.clone();
        visit_mut::visit_item_fn_mut(self, item);
        self.hash_bound = outer;
    }

    fn visit_impl_item_fn_mut(&mut self, item: &mut syn::ImplItemFn) {
        let outer = self.hash_bound.clone();
        visit_mut::visit_impl_item_fn_mut(self, item);
        self.hash_bound = outer;
    }

    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Call(call) => {
                if let Expr::Path(p) = &*call.func {
                    let segs = segments(&p.path);
                    if ENV.iter().any(|s| ends_with(&segs, s)) {
                        let span = p.path.segments.last().map_or(p.span(), |s| s.ident.span());
                        visit_mut::visit_expr_mut(self, expr);
                        wrap(expr, "env_read", span);
                        return;
                    }
                }
            }
            Expr::MethodCall(call) => {
                let method = call.method.to_string();
                if method == "collect"
                    && call
                        .turbofish
                        .as_ref()
                        .is_some_and(|t| names_ordered_container(t.to_token_stream()))
                {
                    let outer = std::mem::replace(&mut self.into_ordered, true);
                    visit_mut::visit_expr_mut(self, expr);
                    self.into_ordered = outer;
                    return;
                }
                let on_hash =
                    plain_name(&call.receiver).is_some_and(|name| self.hash_bound.contains(&name));
                if on_hash && !self.into_ordered && HASH_ITERATION.contains(&method.as_str()) {
                    let span = call.method.span();
                    visit_mut::visit_expr_mut(self, expr);
                    wrap(expr, "hash_iteration", span);
                    return;
                }
            }
            Expr::ForLoop(for_loop) => {
                let on_hash =
                    plain_name(&for_loop.expr).is_some_and(|name| self.hash_bound.contains(&name));
                if on_hash {
                    let span = for_loop.expr.span();
                    wrap(&mut for_loop.expr, "hash_iteration", span);
                }
            }
            _ => {}
        }
        visit_mut::visit_expr_mut(self, expr);
    }

    fn visit_expr_path_mut(&mut self, path: &mut syn::ExprPath) {
        self.check_path(&path.path);
        visit_mut::visit_expr_path_mut(self, path);
    }

    fn visit_local_mut(&mut self, local: &mut syn::Local) {
        // The initializer is checked before the name is bound: in
        // `let m: BTreeMap<_, _> = m.into_iter().collect()` it is the old `m`.
        let ty = match &local.pat {
            Pat::Type(p) => Some(p.ty.to_token_stream()),
            _ => None,
        };
        if let Some(init) = &mut local.init {
            let ordered = is_collect(&init.expr) && ty.is_some_and(names_ordered_container);
            let outer = self.into_ordered;
            self.into_ordered |= ordered;
            self.visit_expr_mut(&mut init.expr);
            if let Some((_, diverge)) = &mut init.diverge {
                self.visit_expr_mut(diverge);
            }
            self.into_ordered = outer;
        }
        for attr in &mut local.attrs {
            self.visit_attribute_mut(attr);
        }
        self.visit_pat_mut(&mut local.pat);
        let init = local.init.as_ref().map(|init| init.expr.to_token_stream());
        self.bind(&local.pat, |ty| match (ty, init) {
            (Some(ty), _) => names_hash_container(ty.to_token_stream()),
            (None, Some(init)) => names_hash_container(init),
            (None, None) => false,
        });
    }

    fn visit_pat_type_mut(&mut self, pat: &mut syn::PatType) {
        // Function and closure parameters; `let` patterns are rebound
        // by `visit_local_mut` right after.
        let is_hash = names_hash_container(pat.ty.to_token_stream());
        self.bind(&pat.pat, |_| is_hash);
        visit_mut::visit_pat_type_mut(self, pat);
    }

    fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
        let segs = segments(&mac.path);
        if segs.last().is_some_and(|last| last == "select") {
            self.errors.push(syn::Error::new_spanned(
                &mac.path,
                format!(
                    "`{}!` is not replay-safe in workflow code: it picks among ready branches at random; use `refrain::select`, which polls the left branch first",
                    segs.join("::")
                ),
            ));
        }
        let parser = Punctuated::<Expr, Token![,]>::parse_terminated;
        if let Ok(mut args) = mac.parse_body_with(parser) {
            let before = args.to_token_stream().to_string();
            for arg in args.iter_mut() {
                self.visit_expr_mut(arg);
            }
            // Reprint only when a warning wrapped something, so that
            // macros whose arguments merely happen to parse keep their tokens.
            if args.to_token_stream().to_string() != before {
                mac.tokens = args.to_token_stream();
            }
        }
    }
}
