//! The queue from a store to its writer.

use super::request::{Apply, Pending, Queued};
use crate::StoreError;
use tokio::sync::{mpsc, oneshot};

/// The requests waiting for one writer, whose transaction is a `Tx`.
pub type Queue<Tx> = mpsc::Receiver<Box<dyn Pending<Tx>>>;

/// Where a store sends its write requests.
pub struct WriteQueue<Tx: ?Sized + Send> {
    sender: mpsc::Sender<Box<dyn Pending<Tx>>>,
}

impl<Tx: ?Sized + Send + 'static> WriteQueue<Tx> {
    /// A queue of at most `bound` waiting requests (beyond it, senders wait: back-pressure), and
    /// the writer's end of it.
    pub fn new(bound: usize) -> (WriteQueue<Tx>, Queue<Tx>) {
        let (sender, receiver) = mpsc::channel(bound);
        (WriteQueue { sender }, receiver)
    }

    /// Sends the request to the writer and waits for its answer, given once its group commits.
    pub async fn submit<R: Apply<Tx>>(&self, request: R) -> Result<R::Answer, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.sender.send(Box::new(Queued { request, reply })).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}
