//! Group commit: a statement asked for while another of its kind is under way waits,
//! and those that waited go together in the next one — one round trip (and for a write
//! one commit) for the logins that reach that step together instead of one each. On
//! SQLite's one writer each commit was a turn of its worker thread that the others
//! queued behind; on both databases each statement a round trip and a wake-up.

use domain::{DomainError, Result};
use std::{
    future::Future,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};
use tokio::sync::oneshot;

/// At most this many writes go in one statement: a row binds up to 13 values, well
/// under both databases' limits on a statement's parameters.
const MOST: usize = 256;

type Waiter<T, R> = (T, oneshot::Sender<Result<R>>);

/// The writes of one kind waiting for the next statement.
pub(crate) struct GroupCommit<T, R> {
    queue: Mutex<Queue<T, R>>,
}

struct Queue<T, R> {
    waiting: Vec<Waiter<T, R>>,
    /// A task is writing (and will take what waits when it is done).
    writing: bool,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                writing: false,
            }),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    fn lock(&self) -> MutexGuard<'_, Queue<T, R>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `item` with the others waiting, and answers its own result. The first to
    /// find no write under way starts one; that write runs in a task of its own, so a
    /// caller that gives up (a request dropped) cannot abandon the others' writes, and
    /// it takes what waits, batch after batch, until nothing does. `write` answers one
    /// result per item, in their order.
    ///
    /// The task is not one of the supervisor's: it lives no longer than the writes
    /// waiting for it, owns no object, and every way it can end reaches its callers (a
    /// failed statement as each one's error, a panic as "ended without an answer"),
    /// who report it as any failed statement is reported.
    pub(crate) async fn submit<W, F>(self: &Arc<Self>, item: T, write: W) -> Result<R>
    where
        W: Fn(Vec<T>) -> F + Send + 'static,
        F: Future<Output = Vec<Result<R>>> + Send,
    {
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut queue = self.lock();
            queue.waiting.push((item, reply));
            !std::mem::replace(&mut queue.writing, true)
        };
        if lead {
            let this = self.clone();
            tokio::spawn(async move { this.drain(write).await });
        }
        answer.await.unwrap_or_else(|_| {
            Err(DomainError::Internal(
                "a grouped write ended without an answer".into(),
            ))
        })
    }

    async fn drain<W, F>(self: Arc<Self>, write: W)
    where
        W: Fn(Vec<T>) -> F,
        F: Future<Output = Vec<Result<R>>>,
    {
        // Should a write panic, the writes waiting are answered (their senders dropped)
        // and the next caller starts afresh.
        let mut guard = Idle {
            group: &self,
            done: false,
        };
        loop {
            let batch: Vec<Waiter<T, R>> = {
                let mut queue = self.lock();
                if queue.waiting.is_empty() {
                    queue.writing = false;
                    guard.done = true;
                    return;
                }
                let n = queue.waiting.len().min(MOST);
                queue.waiting.drain(..n).collect()
            };
            let (items, replies): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
            let results = write(items).await;
            for (reply, result) in replies.into_iter().zip(results) {
                // A caller that gave up does not hear its answer; the write stands.
                let _ = reply.send(result);
            }
        }
    }
}

/// Resets the queue if the task writing it ends without emptying it.
struct Idle<'a, T, R> {
    group: &'a GroupCommit<T, R>,
    done: bool,
}

impl<T, R> Drop for Idle<'_, T, R> {
    fn drop(&mut self) {
        if !self.done {
            let mut queue = self
                .group
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            queue.writing = false;
            queue.waiting.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Writes that wait while another is made go together, each hears its own answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_that_wait_go_together_and_each_hears_its_answer() {
        let group: Arc<GroupCommit<u32, u32>> = Arc::default();
        let statements = Arc::new(AtomicUsize::new(0));
        let mut calls = Vec::new();
        for i in 0..200u32 {
            let (group, statements) = (group.clone(), statements.clone());
            calls.push(tokio::spawn(async move {
                group
                    .submit(i, move |items: Vec<u32>| {
                        let statements = statements.clone();
                        async move {
                            statements.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                            items.into_iter().map(|i| Ok(i * 2)).collect()
                        }
                    })
                    .await
            }));
        }
        for (i, call) in calls.into_iter().enumerate() {
            assert_eq!(call.await.unwrap().unwrap(), i as u32 * 2);
        }
        let n = statements.load(Ordering::SeqCst);
        assert!(n < 200, "{n} statements for 200 writes");
    }

    /// A write that panics answers its batch with an error, and the next write works.
    #[tokio::test]
    async fn a_panicking_write_answers_an_error_and_the_next_one_works() {
        let group: Arc<GroupCommit<u32, u32>> = Arc::default();
        let failed = group
            .submit(1, |_items: Vec<u32>| async move {
                if true {
                    panic!("the statement's driver failed");
                }
                Vec::new()
            })
            .await;
        assert!(matches!(failed, Err(DomainError::Internal(_))));
        let answered = group
            .submit(2, |items: Vec<u32>| async move {
                items.into_iter().map(Ok).collect()
            })
            .await;
        assert_eq!(answered.unwrap(), 2);
    }

    /// Fewer results than writes: those left without one hear an error, not nothing.
    #[tokio::test]
    async fn a_write_left_without_a_result_hears_an_error() {
        let group: Arc<GroupCommit<u32, u32>> = Arc::default();
        let answer = group
            .submit(7, |_items: Vec<u32>| async move { Vec::new() })
            .await;
        assert!(matches!(answer, Err(DomainError::Internal(_))));
    }
}
