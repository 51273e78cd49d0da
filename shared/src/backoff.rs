//! The one retry-with-back-off helper of the tree, on the `backon` crate.
//!
//! A [`Backoff`] is a policy value: the first delay, doubled after each
//! failure up to a cap, optionally jittered, and bounded by any of three
//! limits: a patience (wall-clock time since the first attempt, checked
//! before each sleep), a number of retries, and a total time spent
//! sleeping. [`retry`] runs an operation under it; [`retry_with`] does the
//! same for an operation that needs `&mut` state between attempts (a
//! publisher that must reconnect). Callers say which errors are worth
//! another attempt, may ask for a longer wait (a server's `Retry-After`),
//! and log each retry themselves, so messages stay in their words.

use std::future::Future;
use std::time::{Duration, Instant};

use backon::{Retryable, RetryableWithContext};
use rand::Rng;

/// Whether `error`, or any error in its chain, is a TLS refusal: a
/// certificate the trusted CAs do not vouch for, or a host name it does not
/// name. rustls reports these as `InvalidData` I/O errors (under sqlx's and
/// lapin's own), and another attempt cannot help.
pub fn is_tls_refusal(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// A retry policy; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    jitter: bool,
    patience: Option<Duration>,
    max_retries: Option<u32>,
    max_total_wait: Option<Duration>,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Give up: another attempt cannot help.
    Stop,
    /// Try again after the policy's next delay.
    Retry,
    /// Try again, waiting at least this long (what the server asked for).
    RetryAfter(Duration),
}

impl Backoff {
    /// Waits `first`, then twice as long after each failure, never more
    /// than `cap`; retries forever until a limit is set.
    pub const fn new(first: Duration, cap: Duration) -> Self {
        Backoff {
            first,
            cap,
            jitter: false,
            patience: None,
            max_retries: None,
            max_total_wait: None,
        }
    }

    /// Each delay drawn uniformly in [d/2, d], so that many clients that
    /// failed together do not retry together.
    pub const fn with_jitter(mut self) -> Self {
        self.jitter = true;
        self
    }

    /// No retry once this long has passed since the first attempt.
    pub const fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = Some(patience);
        self
    }

    pub const fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// No retry whose sleep would bring the total slept past this.
    pub const fn with_max_total_wait(mut self, total: Duration) -> Self {
        self.max_total_wait = Some(total);
        self
    }

    pub fn max_retries(&self) -> Option<u32> {
        self.max_retries
    }

    pub fn max_total_wait(&self) -> Option<Duration> {
        self.max_total_wait
    }

    /// The delay before retry number `retry` (0 for the first retry),
    /// before any limit: `first · 2^retry`, capped, jittered if asked.
    pub fn delay(&self, retry: u32) -> Duration {
        let full = self
            .first
            .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
            .min(self.cap);
        if !self.jitter {
            return full;
        }
        let half = full / 2;
        let extra = rand::thread_rng().gen_range(0..=(full - half).as_millis() as u64);
        half + Duration::from_millis(extra)
    }
}

/// The successive delays of one run of a [`Backoff`] (what `backon` sleeps).
#[derive(Debug)]
pub struct Delays {
    policy: Backoff,
    started: Instant,
    retries: u32,
    slept: Duration,
}

impl Delays {
    /// The next sleep, at least `at_least` (a server's ask, which the
    /// caller caps), or `None` when a limit says to give up.
    fn next_at_least(&mut self, at_least: Duration) -> Option<Duration> {
        let policy = &self.policy;
        if policy.max_retries.is_some_and(|max| self.retries >= max)
            || policy.patience.is_some_and(|p| self.started.elapsed() >= p)
        {
            return None;
        }
        let delay = policy.delay(self.retries).max(at_least);
        if policy
            .max_total_wait
            .is_some_and(|total| self.slept + delay > total)
        {
            return None;
        }
        self.retries += 1;
        self.slept += delay;
        Some(delay)
    }
}

impl Iterator for Delays {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        self.next_at_least(Duration::ZERO)
    }
}

impl backon::BackoffBuilder for Backoff {
    type Backoff = Delays;
    fn build(self) -> Delays {
        Delays {
            policy: self,
            started: Instant::now(),
            retries: 0,
            slept: Duration::ZERO,
        }
    }
}

/// Runs `attempt` until it succeeds, `verdict` says [`Verdict::Stop`], or
/// the policy gives up; returns the last error then. `notify` sees each
/// error that is retried and the sleep before the next attempt.
pub async fn retry<T, E, Fut, Attempt, Judge, Notify>(
    policy: Backoff,
    attempt: Attempt,
    verdict: Judge,
    mut notify: Notify,
) -> Result<T, E>
where
    Attempt: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    Judge: Fn(&E) -> Verdict,
    Notify: FnMut(&E, Duration),
{
    // `backon` asks the backoff for the next delay and lets `adjust` change
    // it; the limits must see the adjusted delay, so the delays are drawn
    // here, from a run of the policy the adjust closure owns.
    let mut delays = backon::BackoffBuilder::build(policy);
    let verdict = &verdict;
    attempt
        .retry(backon::ConstantBuilder::default().without_max_times())
        .when(|e| verdict(e) != Verdict::Stop)
        .adjust(move |e, _| match verdict(e) {
            Verdict::Stop => None,
            Verdict::Retry => delays.next_at_least(Duration::ZERO),
            Verdict::RetryAfter(asked) => delays.next_at_least(asked),
        })
        .notify(|e, delay| notify(e, delay))
        .await
}

/// [`retry`] for an attempt that needs `state` by `&mut` (moved into each
/// attempt and handed back with its result). Errors are retried while the
/// policy allows; no server-asked delays.
pub async fn retry_with<S, T, E, Fut, Attempt, Notify>(
    policy: Backoff,
    state: S,
    attempt: Attempt,
    notify: Notify,
) -> (S, Result<T, E>)
where
    S: Send,
    Attempt: FnMut(S) -> Fut,
    Fut: Future<Output = (S, Result<T, E>)>,
    Notify: FnMut(&E, Duration),
{
    attempt.retry(policy).context(state).notify(notify).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn delays_double_up_to_the_cap_and_jitter_stays_in_the_upper_half() {
        let plain = Backoff::new(200 * MS, 5000 * MS);
        let got: Vec<u128> = (0..7).map(|r| plain.delay(r).as_millis()).collect();
        assert_eq!(got, [200, 400, 800, 1600, 3200, 5000, 5000]);
        let jittered = Backoff::new(500 * MS, 30_000 * MS).with_jitter();
        for retry in 0..10 {
            let full = (500 * MS * 2u32.pow(retry)).min(30_000 * MS);
            for _ in 0..20 {
                let d = jittered.delay(retry);
                assert!(d >= full / 2 && d <= full, "retry {retry}: {d:?}");
            }
        }
    }

    #[test]
    fn retries_and_total_wait_bound_a_run() {
        let policy = Backoff::new(100 * MS, 1000 * MS).with_max_retries(3);
        let run: Vec<Duration> = backon::BackoffBuilder::build(policy).collect();
        assert_eq!(run, [100 * MS, 200 * MS, 400 * MS]);
        let policy = Backoff::new(100 * MS, 1000 * MS).with_max_total_wait(750 * MS);
        let run: Vec<Duration> = backon::BackoffBuilder::build(policy).collect();
        assert_eq!(
            run,
            [100 * MS, 200 * MS, 400 * MS],
            "a fourth (800 ms) would pass 750 ms"
        );
        let mut delays = backon::BackoffBuilder::build(policy);
        assert_eq!(delays.next_at_least(600 * MS), Some(600 * MS));
        assert_eq!(delays.next_at_least(600 * MS), None, "1.2 s > 750 ms");
    }

    #[tokio::test]
    async fn patience_is_wall_clock_time_since_the_first_attempt() {
        let policy = Backoff::new(20 * MS, 20 * MS).with_patience(100 * MS);
        let tries = AtomicU32::new(0);
        let started = Instant::now();
        let result: Result<(), &str> = retry(
            policy,
            || async {
                tries.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(30 * MS).await;
                Err("down")
            },
            |_| Verdict::Retry,
            |_, _| {},
        )
        .await;
        assert_eq!(result, Err("down"));
        let elapsed = started.elapsed();
        assert!(elapsed >= 100 * MS && elapsed < 400 * MS, "{elapsed:?}");
        // each round is 50 ms: tries at 0, 50, 100 ms; the third is past patience
        assert!((2..=3).contains(&tries.load(Ordering::SeqCst)));
    }

    #[tokio::test]
    async fn stop_is_not_retried_and_retry_after_lengthens_the_wait() {
        let policy = Backoff::new(MS, MS).with_max_retries(5);
        let tries = AtomicU32::new(0);
        let result: Result<(), u32> = retry(
            policy,
            || async { Err(tries.fetch_add(1, Ordering::SeqCst)) },
            |_| Verdict::Stop,
            |_, _| {},
        )
        .await;
        assert_eq!(result, Err(0));
        tries.store(0, Ordering::SeqCst);
        let mut slept = Vec::new();
        let result: Result<u32, u32> = retry(
            policy,
            || async {
                let n = tries.fetch_add(1, Ordering::SeqCst);
                if n < 3 {
                    Err(n)
                } else {
                    Ok(n)
                }
            },
            |n| {
                if *n == 1 {
                    Verdict::RetryAfter(40 * MS)
                } else {
                    Verdict::Retry
                }
            },
            |_, d| slept.push(d),
        )
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(slept, [MS, 40 * MS, MS]);
    }

    #[tokio::test]
    async fn retry_with_hands_the_state_to_each_attempt() {
        let policy = Backoff::new(MS, MS).with_max_retries(4);
        let (reconnects, result) = retry_with(
            policy,
            0u32,
            |reconnects| async move {
                if reconnects < 2 {
                    (reconnects + 1, Err("lost"))
                } else {
                    (reconnects, Ok("published"))
                }
            },
            |_, _| {},
        )
        .await;
        assert_eq!((reconnects, result), (2, Ok("published")));
        let (_, result): (u32, Result<(), &str>) =
            retry_with(policy, 0, |n| async move { (n, Err("down")) }, |_, _| {}).await;
        assert_eq!(result, Err("down"), "gives up after 4 retries");
    }
}
