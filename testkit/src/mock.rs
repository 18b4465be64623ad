//! Activities as the test environment registers them: a closure in place
//! of an activity type ([`Mock`]), or a real activity shared by every
//! worker the environment starts ([`Shared`]; a restart starts a new
//! worker, which needs its own registration).

use async_trait::async_trait;
use futures::future::BoxFuture;
use refrain::{Activity, ActivityContext, ActivityError};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

type MockFn<A> = dyn Fn(<A as Activity>::Input) -> BoxFuture<'static, Result<<A as Activity>::Output, ActivityError>>
    + Send
    + Sync;

/// Runs a closure under activity type `A`'s name, input and output: the
/// worker records its outcomes exactly as it would `A`'s.
pub(crate) struct Mock<A: Activity> {
    run: Arc<MockFn<A>>,
    _type: PhantomData<fn() -> A>,
}

impl<A: Activity> Mock<A> {
    pub(crate) fn new<F, Fut>(f: F) -> Mock<A>
    where
        F: Fn(A::Input) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<A::Output, ActivityError>> + Send + 'static,
    {
        Mock {
            run: Arc::new(move |input| Box::pin(f(input))),
            _type: PhantomData,
        }
    }
}

impl<A: Activity> Clone for Mock<A> {
    fn clone(&self) -> Self {
        Mock {
            run: self.run.clone(),
            _type: PhantomData,
        }
    }
}

#[async_trait]
impl<A: Activity> Activity for Mock<A> {
    const NAME: &'static str = A::NAME;
    type Input = A::Input;
    type Output = A::Output;

    async fn run(
        &self,
        _ctx: ActivityContext,
        input: A::Input,
    ) -> Result<A::Output, ActivityError> {
        (self.run)(input).await
    }
}

/// A real activity, shared by the workers of successive restarts.
pub(crate) struct Shared<A>(pub(crate) Arc<A>);

impl<A> Clone for Shared<A> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

#[async_trait]
impl<A: Activity> Activity for Shared<A> {
    const NAME: &'static str = A::NAME;
    type Input = A::Input;
    type Output = A::Output;

    async fn run(&self, ctx: ActivityContext, input: A::Input) -> Result<A::Output, ActivityError> {
        self.0.run(ctx, input).await
    }
}
