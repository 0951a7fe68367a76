//! A pool of PKCS#11 sessions: each signature borrows one session that no other thread uses
//! while it signs, so every signing thread effectively has its own session (PKCS#11
//! sessions must not be used by two threads at once) without tying sessions to rayon's
//! thread identities. The pool grows to the number of threads signing at the same time.
//!
//! A token that limits sessions (`CKR_SESSION_COUNT`) caps the pool at what it could open;
//! the threads beyond that wait for a free session, so fewer threads sign, and one log
//! line says so. Generic over the session type so the waiting logic is tested without a
//! token.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Why a new session could not be opened.
pub enum OpenFailure<E> {
    /// The token has no room for another session (`CKR_SESSION_COUNT`).
    SessionLimit,
    Other(E),
}

pub struct Pool<S> {
    state: Mutex<State<S>>,
    returned: Condvar,
}

struct State<S> {
    idle: Vec<S>,
    /// Sessions open: idle plus borrowed plus being opened.
    open: usize,
    /// Set once the token refused a session: never open more than this.
    limit: Option<usize>,
}

impl<S> Pool<S> {
    /// A pool holding `first` (the session that logged in; keeping it open keeps the
    /// application logged in).
    pub fn new(first: S) -> Self {
        Pool {
            state: Mutex::new(State {
                idle: vec![first],
                open: 1,
                limit: None,
            }),
            returned: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<S>> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle session, a newly opened one, or (at the token's limit) the next one returned.
    pub fn take<E>(&self, open: impl Fn() -> Result<S, OpenFailure<E>>) -> Result<S, E> {
        let mut state = self.lock();
        loop {
            if let Some(session) = state.idle.pop() {
                return Ok(session);
            }
            if state.limit.is_none_or(|limit| state.open < limit) {
                state.open += 1;
                drop(state);
                let opened = open();
                state = self.lock();
                match opened {
                    Ok(session) => return Ok(session),
                    Err(OpenFailure::Other(error)) => {
                        state.open -= 1;
                        return Err(error);
                    }
                    Err(OpenFailure::SessionLimit) => {
                        state.open -= 1;
                        if state.limit.is_none() {
                            tracing::warn!(
                                sessions = state.open,
                                "the token refused another session (CKR_SESSION_COUNT); signing with {} \
                                 threads, one per session",
                                state.open
                            );
                        }
                        state.limit = Some(state.open.max(1));
                        continue;
                    }
                }
            }
            state = self.returned.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Returns a session that still works.
    pub fn give_back(&self, session: S) {
        self.lock().idle.push(session);
        self.returned.notify_one();
    }

    /// Forgets a session that failed (its handle is dead); another may be opened instead.
    pub fn discard(&self, session: S) {
        drop(session);
        let mut state = self.lock();
        state.open = state.open.saturating_sub(1);
        drop(state);
        self.returned.notify_one();
    }

    /// Sessions open now (for tests and logs).
    pub fn open_sessions(&self) -> usize {
        self.lock().open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn threads_beyond_the_session_limit_wait_and_all_finish() {
        const LIMIT: usize = 3;
        let pool = Pool::new(0usize);
        let opened = AtomicUsize::new(1);
        let busy = AtomicUsize::new(0);
        let most_busy = AtomicUsize::new(0);
        let open = || {
            let n = opened.fetch_add(1, Ordering::SeqCst);
            if n >= LIMIT {
                opened.fetch_sub(1, Ordering::SeqCst);
                Err(OpenFailure::<()>::SessionLimit)
            } else {
                Ok(n)
            }
        };
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        let session = pool.take(open).ok().unwrap();
                        let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                        most_busy.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        busy.fetch_sub(1, Ordering::SeqCst);
                        pool.give_back(session);
                    }
                });
            }
        });
        assert!(most_busy.load(Ordering::SeqCst) <= LIMIT);
        assert_eq!(pool.open_sessions(), LIMIT);
        assert_eq!(pool.lock().limit, Some(LIMIT));
    }

    #[test]
    fn a_failed_open_is_reported_and_frees_its_place() {
        let pool = Pool::new(1u8);
        let held = pool.take(|| Err(OpenFailure::Other("unused"))).ok().unwrap();
        let err = pool.take(|| Err(OpenFailure::Other("device removed"))).err();
        assert_eq!(err, Some("device removed"));
        assert_eq!(pool.open_sessions(), 1);
        pool.discard(held);
        assert_eq!(pool.open_sessions(), 0);
        assert_eq!(pool.take(|| Ok::<u8, OpenFailure<()>>(7)).ok(), Some(7));
    }
}
