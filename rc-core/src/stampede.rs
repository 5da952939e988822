//! The stampede and staleness parts of a decorated call ([`Core::cached`]):
//! reading with freshness, waiting for another process's computation,
//! computing under a lease, and background refreshes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::core::{Core, Io, LEASE_TTL, ValueTtl, lease_token};
use crate::error::Result;
use crate::flight::{Leader, Role};
use crate::metrics::{self, Read};
use crate::stale::{Found, Plan};
use crate::stats::Counters;

/// How long a refresh that found the key's lease taken keeps its flight.
const REFUSED_HOLD: Duration = Duration::from_millis(100);

/// What [`Core::lease_or_wait`] came to.
pub(crate) enum Wait {
    Leased,
    /// Another caller stored this fresh value meanwhile.
    Found(Vec<u8>),
    /// Not leased: another caller still holds the lease, or the server failed.
    GaveUp,
}

/// One computation of a decorated call: its key and plan, the stale value
/// that stands in for an `Err`, the flight it leads and the lease it holds.
pub(crate) struct Run<'f> {
    key: String,
    plan: Plan,
    fallback: Option<Vec<u8>>,
    leader: Option<Leader<'f>>,
    token: Option<String>,
}

impl<'f> Run<'f> {
    pub(crate) fn new(
        key: String,
        plan: Plan,
        fallback: Option<Vec<u8>>,
        leader: Option<Leader<'f>>,
        token: Option<String>,
    ) -> Self {
        Run {
            key,
            plan,
            fallback,
            leader,
            token,
        }
    }
}

/// Gives back the lease of a computation that ends unfinished (its body
/// panicked, or its future was dropped), in the background: callers in
/// other processes waiting for the key then compute at once instead of
/// waiting out their `lease_wait`.
struct LeaseGuard<'k, I: Io> {
    core: Arc<Core<I>>,
    key: &'k str,
    token: Option<String>,
}

impl<I: Io> Drop for LeaseGuard<'_, I> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take()
            && I::can_spawn()
        {
            let (core, key) = (self.core.clone(), self.key.to_owned());
            I::spawn(Box::pin(async move {
                if let Err(e) = I::release_leases(&core.backend, &[&key], &token).await {
                    core.front.failed_open(&e);
                }
            }));
        }
    }
}

/// A decorated call's body: [`Here`] runs on the caller only (it may
/// borrow the call's arguments); [`Movable`] owns what it needs and may be
/// handed to a background refresh (`stale_while_revalidate`).
pub(crate) trait Body<I: Io, T, R>: Sized {
    type Fut: Future<Output = R>;
    fn into_future(self) -> Self::Fut;
    /// Refreshes `key` in the background with this body; `Err(self)` when
    /// it cannot leave the caller.
    fn detach(
        self,
        core: &Arc<Core<I>>,
        key: &str,
        plan: Plan,
        peek: fn(&R) -> Option<&T>,
    ) -> std::result::Result<(), Self>;
}

/// A body that borrows: see [`Body`].
pub(crate) struct Here<F>(pub F);

/// A body that owns its arguments: see [`Body`].
pub(crate) struct Movable<F>(pub F);

impl<I: Io, T, R, F: Future<Output = R>> Body<I, T, R> for Here<F> {
    type Fut = F;
    fn into_future(self) -> F {
        self.0
    }
    fn detach(
        self,
        _: &Arc<Core<I>>,
        _: &str,
        _: Plan,
        _: fn(&R) -> Option<&T>,
    ) -> std::result::Result<(), Self> {
        Err(self)
    }
}

impl<I, T, R, F> Body<I, T, R> for Movable<F>
where
    I: Io,
    T: Serialize + 'static,
    R: 'static,
    F: Future<Output = R> + Send + 'static,
{
    type Fut = F;
    fn into_future(self) -> F {
        self.0
    }
    fn detach(
        self,
        core: &Arc<Core<I>>,
        key: &str,
        plan: Plan,
        peek: fn(&R) -> Option<&T>,
    ) -> std::result::Result<(), Self> {
        if !I::can_spawn() {
            return Err(self);
        }
        let (core, key) = (core.clone(), key.to_owned());
        I::spawn(Box::pin(async move {
            core.refresh(key, plan, self.0, peek).await
        }));
        Ok(())
    }
}

impl<I: Io> Core<I> {
    /// Reads `key`, with the time it has left when `plan` has a stale
    /// window; counts a miss (and a failure). Also says whether its server
    /// answered (a lease is then worth taking).
    pub(crate) async fn look(&self, key: &str, plan: &Plan) -> (Found, bool) {
        let read = self.read_planned(key, plan).await;
        let reachable = !matches!(&read, Err(e) if e.is_unavailable());
        let found = match read {
            Ok(r) => plan.sort(r),
            Err(e) => {
                metrics::read(plan.function, Read::Error);
                self.front.failed_open(&e);
                self.front.missed();
                return (Found::Missing, reachable);
            }
        };
        if matches!(found, Found::Missing) {
            metrics::read(plan.function, Read::Miss);
            self.front.missed();
        }
        (found, reachable)
    }

    /// `GET`, or `GET` and `PTTL` in one round trip when `plan` has a stale window.
    pub(crate) async fn read_planned(&self, key: &str, plan: &Plan) -> Result<ValueTtl> {
        if plan.window().is_zero() {
            Ok(I::read(&self.backend, key).await?.map(|v| (v, None)))
        } else {
            let mut read = I::read_many_with_ttl(&self.backend, &[key]).await;
            read.pop().unwrap_or(Ok(None))
        }
    }

    /// Takes the lease of `key`; while another caller (another process or
    /// cache) holds it, polls for the value it computes, for up to `wait`,
    /// and takes the lease if it is given back meanwhile.
    pub(crate) async fn lease_or_wait(
        &self,
        key: &str,
        plan: &Plan,
        token: &str,
        wait: Duration,
    ) -> Wait {
        let deadline = std::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(2);
        loop {
            match I::lease_many(&self.backend, &[key], token, LEASE_TTL)
                .await
                .pop()
            {
                Some(Ok(true)) => return Wait::Leased,
                Some(Ok(false)) => {}
                Some(Err(e)) => {
                    self.front.failed_open(&e);
                    return Wait::GaveUp;
                }
                None => return Wait::GaveUp,
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Wait::GaveUp;
            }
            I::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_millis(50));
            match self.read_planned(key, plan).await.map(|r| plan.sort(r)) {
                Ok(Found::Fresh(bytes)) => return Wait::Found(bytes),
                Ok(_) => {}
                Err(e) => {
                    self.front.failed_open(&e);
                    return Wait::GaveUp;
                }
            }
        }
    }

    /// Runs a call's body and stores its result (under the lease, if
    /// taken); hands it to the flight's followers. An `Err` result returns
    /// the stale fallback instead, if any (`stale_if_error`).
    pub(crate) async fn compute<T, R>(
        self: &Arc<Self>,
        run: Run<'_>,
        body: impl Future<Output = R>,
        wrap: fn(T) -> R,
        peek: fn(&R) -> Option<&T>,
    ) -> R
    where
        T: Serialize + DeserializeOwned,
    {
        let f = &self.front;
        let mut guard = LeaseGuard {
            core: self.clone(),
            key: &run.key,
            token: run.token,
        };
        let result = metrics::timed(run.plan.function, body).await;
        let token = guard.token.take();
        let item = f.store_item(run.key.clone(), peek(&result), &run.plan);
        let shared = item.as_ref().map(|(_, bytes, _)| Arc::new(bytes.clone()));
        if let Some(token) = &token {
            self.finish_leases(item.into_iter().collect(), &[&run.key], token)
                .await;
        }
        // Once stored: a call that missed meanwhile joins the flight.
        if let Some(leader) = run.leader {
            leader.finish(shared);
        }
        if peek(&result).is_none()
            && let Some(v) = run.fallback.and_then(|b| f.decode_stale::<T>(&run.key, &b))
        {
            metrics::stale(run.plan.function);
            return wrap(v);
        }
        result
    }

    /// The fresh value of `key` if another caller refreshed it since it
    /// was read stale (its store gave back the lease just taken with
    /// `token`, which is then given back too).
    pub(crate) async fn refreshed(&self, key: &str, plan: &Plan, token: &str) -> Option<Vec<u8>> {
        match self.read_planned(key, plan).await.map(|r| plan.sort(r)) {
            Ok(Found::Fresh(bytes)) => {
                self.finish_leases(Vec::new(), &[key], token).await;
                Some(bytes)
            }
            _ => None,
        }
    }

    /// A background refresh (`stale_while_revalidate`): unless the key is
    /// computed here already, or its lease is out (another caller refreshes
    /// it), or it was refreshed since it was read, runs `body` and stores its
    /// result under the lease.
    pub(crate) async fn refresh<T, R>(
        &self,
        key: String,
        plan: Plan,
        body: impl Future<Output = R>,
        peek: fn(&R) -> Option<&T>,
    ) where
        T: Serialize,
    {
        let Role::Leader(leader) = self.flights.join(&key) else {
            return;
        };
        let token = lease_token();
        if !self.lease(&[&key], &token).await[0] {
            // Another process refreshes it: lead the key's flight a moment
            // longer, so this process's stale hits do not each start a
            // refresh (a thread, on the blocking face) meanwhile.
            I::sleep(REFUSED_HOLD).await;
            return;
        }
        if self.refreshed(&key, &plan, &token).await.is_some() {
            return;
        }
        Counters::add(&self.front.counters.refreshes, 1);
        let item = {
            let result = metrics::timed(plan.function, body).await;
            self.front.store_item(key.clone(), peek(&result), &plan)
        };
        let shared = item.as_ref().map(|(_, bytes, _)| Arc::new(bytes.clone()));
        self.finish_leases(item.into_iter().collect(), &[&key], &token)
            .await;
        leader.finish(shared);
    }
}
