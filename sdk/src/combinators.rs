//! Deterministic combinators for running branches of a workflow
//! concurrently. Each polls its branches in a fixed order (left to right),
//! and the events that resolve them are applied in recorded order before
//! any polling, so the same history always produces the same winner.
//! (`futures::select!` picks randomly and must not be used in workflows.)

pub use futures::future::Either;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Waits for the first of two futures; if both are ready, `a` wins. The
/// loser is dropped (a dropped timer is cancelled).
pub fn select<A, B>(a: A, b: B) -> Select<A::IntoFuture, B::IntoFuture>
where
    A: IntoFuture,
    B: IntoFuture,
{
    Select {
        a: Some(Box::pin(a.into_future())),
        b: Some(Box::pin(b.into_future())),
    }
}

/// Future of [`select`].
#[must_use = "futures do nothing unless awaited"]
pub struct Select<A, B> {
    a: Option<Pin<Box<A>>>,
    b: Option<Pin<Box<B>>>,
}

impl<A: Future, B: Future> Future for Select<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(a) = self.a.as_mut() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                self.a = None;
                self.b = None;
                return Poll::Ready(Either::Left(v));
            }
        }
        if let Some(b) = self.b.as_mut() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                self.a = None;
                self.b = None;
                return Poll::Ready(Either::Right(v));
            }
        }
        Poll::Pending
    }
}

/// Waits for both futures; commands are recorded in argument order.
pub fn join<A, B>(a: A, b: B) -> futures::future::Join<A::IntoFuture, B::IntoFuture>
where
    A: IntoFuture,
    B: IntoFuture,
{
    futures::future::join(a.into_future(), b.into_future())
}

/// Waits for three futures; commands are recorded in argument order.
pub fn join3<A, B, C>(
    a: A,
    b: B,
    c: C,
) -> futures::future::Join3<A::IntoFuture, B::IntoFuture, C::IntoFuture>
where
    A: IntoFuture,
    B: IntoFuture,
    C: IntoFuture,
{
    futures::future::join3(a.into_future(), b.into_future(), c.into_future())
}

/// Waits for all futures and returns their outputs in input order. Every
/// pending branch is polled, in index order, on every poll.
pub fn join_all<I>(items: I) -> JoinAll<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    let futures: Vec<_> = items
        .into_iter()
        .map(|f| Box::pin(f.into_future()))
        .collect();
    let outputs = futures.iter().map(|_| None).collect();
    JoinAll {
        futures: futures.into_iter().map(Some).collect(),
        outputs,
    }
}

/// Future of [`join_all`].
#[must_use = "futures do nothing unless awaited"]
pub struct JoinAll<F: Future> {
    futures: Vec<Option<Pin<Box<F>>>>,
    outputs: Vec<Option<F::Output>>,
}

impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut pending = false;
        for (slot, out) in this.futures.iter_mut().zip(this.outputs.iter_mut()) {
            if let Some(f) = slot.as_mut() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            return Poll::Pending;
        }
        Poll::Ready(this.outputs.iter_mut().filter_map(Option::take).collect())
    }
}
