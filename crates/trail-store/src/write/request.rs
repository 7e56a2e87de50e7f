//! What a write request is (its weight, what it does inside a transaction, what it answers),
//! and the forms a writer handles it in: waiting ([`Pending`]) and done, until the commit
//! ([`Outcome`]).

use crate::StoreError;
use async_trait::async_trait;
use std::any::Any;
use tokio::sync::oneshot;

/// One kind of write.
pub trait WriteRequest: Sized + Send + 'static {
    /// What the request answers once its group has committed.
    type Answer: Send + 'static;

    /// How many events it may write (or remove): groups are bounded by the sum.
    fn weight(&self) -> usize;

    /// Whether it may append events to the chain. A group in which none does leaves the chain's
    /// head alone (on PostgreSQL, it does not take the sequencer).
    fn appends_events(&self) -> bool {
        true
    }

    /// Whether applying it can fail for a reason of its own (a conflict, an unknown job) rather
    /// than the database's. A writer may run a request that cannot without a savepoint of its
    /// own; if it fails all the same, its whole group fails, and nothing of the group is stored.
    fn can_refuse(&self) -> bool {
        true
    }

    /// How many events an answer says were stored, for the metrics.
    fn events_stored(answer: &Self::Answer) -> u64;
}

/// What a request does inside a transaction of type `Tx` (whatever storage it needs, as the
/// bounds of its impl say). An error rolls back this request alone (a refusal, or a database
/// failure), or its whole group if it [cannot refuse](WriteRequest::can_refuse).
#[async_trait]
pub trait Apply<Tx: ?Sized + Send>: WriteRequest {
    async fn apply(self, tx: &mut Tx) -> Result<Self::Answer, StoreError>;
}

/// A request waiting for the writer, whatever its kind, with where its answer goes.
#[async_trait]
pub trait Pending<Tx: ?Sized + Send>: Send {
    fn weight(&self) -> usize;

    fn appends_events(&self) -> bool;

    fn can_refuse(&self) -> bool;

    /// Runs the request; its outcome is answered only once the group's fate is known.
    async fn apply(self: Box<Self>, tx: &mut Tx) -> Box<dyn Outcome>;

    /// Answers a request that never ran: its group failed first.
    fn refuse(self: Box<Self>, error: &StoreError);

    /// For a writer that treats one kind apart (PostgreSQL inserts plain appends together).
    fn as_any(&self) -> &dyn Any;

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// A request's outcome, held until its group commits or fails.
pub trait Outcome: Send {
    /// The request's own failure, if it failed (and was rolled back).
    fn error(&self) -> Option<&StoreError>;

    fn events_stored(&self) -> u64;

    /// The group committed: the request gets its outcome.
    fn answer(self: Box<Self>);

    /// The group failed after the request ran: nothing of it was stored.
    fn refuse(self: Box<Self>, error: &StoreError);
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What a caller is told when its request's group failed: unavailable still, when the
/// database could not be reached, so that the caller knows to send it again.
fn unstored(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unreachable(why) => StoreError::Unreachable(format!("nothing was stored: {why}")),
        StoreError::Closed => StoreError::Closed,
        StoreError::Full(why) => StoreError::Full(format!("nothing was stored: {why}")),
        other => StoreError::backend(format!("nothing was stored: {other}")),
    }
}

/// A request and where its answer goes.
pub struct Queued<R: WriteRequest> {
    pub request: R,
    pub(crate) reply: Reply<R::Answer>,
}

#[async_trait]
impl<Tx, R> Pending<Tx> for Queued<R>
where
    Tx: ?Sized + Send,
    R: Apply<Tx>,
{
    fn weight(&self) -> usize {
        self.request.weight()
    }

    fn appends_events(&self) -> bool {
        self.request.appends_events()
    }

    fn can_refuse(&self) -> bool {
        self.request.can_refuse()
    }

    async fn apply(self: Box<Self>, tx: &mut Tx) -> Box<dyn Outcome> {
        let Queued { request, reply } = *self;
        let result = request.apply(tx).await;
        Box::new(Answered { stored: result.as_ref().map_or(0, R::events_stored), result, reply })
    }

    fn refuse(self: Box<Self>, error: &StoreError) {
        let _ = self.reply.send(Err(unstored(error)));
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

impl<R: WriteRequest> Queued<R> {
    /// Answers directly, for a writer that ran the request its own way.
    pub fn answered(self, result: Result<R::Answer, StoreError>) -> Box<dyn Outcome> {
        Box::new(Answered { stored: result.as_ref().map_or(0, R::events_stored), result, reply: self.reply })
    }
}

/// A request's result, waiting for the commit.
struct Answered<A> {
    result: Result<A, StoreError>,
    stored: u64,
    reply: Reply<A>,
}

impl<A: Send + 'static> Outcome for Answered<A> {
    fn error(&self) -> Option<&StoreError> {
        self.result.as_ref().err()
    }

    fn events_stored(&self) -> u64 {
        self.stored
    }

    fn answer(self: Box<Self>) {
        let _ = self.reply.send(self.result);
    }

    fn refuse(self: Box<Self>, error: &StoreError) {
        let _ = self.reply.send(Err(unstored(error)));
    }
}

/// Runs an event builder (the caller's code) so that a panic in it fails the request, never
/// the writer.
pub(crate) fn built<T>(build: impl FnOnce() -> T) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(build))
        .map_err(|_| StoreError::backend("building the event failed"))
}
