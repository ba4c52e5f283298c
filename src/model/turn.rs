//! A request's turn in its session's order.
//!
//! A session hands each of its ordered requests a [`Turn`] linked to the previous one's: the
//! request does its checks concurrently with the others, then waits for the earlier request to
//! pass before it takes effect, and passes in turn once it has taken effect or failed. So one
//! session's changes take effect in the order they were sent, while the work before that point
//! still overlaps.
//!
//! Whoever holds a turn waits for it before dropping it, even when its request failed early:
//! a turn dropped unwaited would let the next request overtake the ones before.

use std::sync::Mutex;

use tokio::sync::oneshot;

/// One link of a session's chain of requests. A request outside any order (over HTTP) holds a
/// [`Turn::free`] one, which never waits.
#[derive(Debug)]
pub struct Turn {
    /// Resolves when the previous request passed (or was dropped).
    before: Mutex<Option<oneshot::Receiver<()>>>,
    /// Tells the next request this one passed; dropping it does the same.
    after: Mutex<Option<oneshot::Sender<()>>>,
}

/// The turn of a request in no order.
pub static FREE: Turn = Turn::free();

/// The end of a chain, which the next [`Turn`] waits on.
#[derive(Debug)]
pub struct Tail(oneshot::Receiver<()>);

impl Turn {
    /// A turn that waits for nothing and holds no one up.
    pub const fn free() -> Turn {
        Turn { before: Mutex::new(None), after: Mutex::new(None) }
    }

    /// The turn after `tail` (the first of a chain when `None`), and the new tail.
    pub fn after(tail: Option<Tail>) -> (Turn, Tail) {
        let (tx, rx) = oneshot::channel();
        let turn = Turn { before: Mutex::new(tail.map(|t| t.0)), after: Mutex::new(Some(tx)) };
        (turn, Tail(rx))
    }

    /// Waits until every earlier request of the chain has passed.
    pub async fn wait(&self) {
        let before = self.before.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(before) = before {
            // An error is a dropped turn: it passed too.
            let _ = before.await;
        }
    }

    /// Lets the next request go.
    pub fn pass(&self) {
        self.after.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

impl Tail {
    /// Whether every request of the chain has passed, so that it holds no one up.
    pub fn is_done(&mut self) -> bool {
        !matches!(self.0.try_recv(), Err(oneshot::error::TryRecvError::Empty))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_turn_goes_after_the_ones_before() {
        let (first, tail) = Turn::after(None);
        let (second, tail) = Turn::after(Some(tail));
        let (third, mut tail) = Turn::after(Some(tail));
        let waiting = tokio::spawn(async move {
            third.wait().await;
            third.pass();
        });
        let second = tokio::spawn(async move {
            second.wait().await;
            // Failed: dropped without passing explicitly.
        });
        tokio::task::yield_now().await;
        assert!(!tail.is_done(), "nothing passes before the first");
        first.wait().await;
        first.pass();
        second.await.unwrap();
        waiting.await.unwrap();
        assert!(tail.is_done());
    }
}
