//! Waiting out eventual consistency: polling a read until what was just written shows, on a
//! schedule dense while the wait is young and backing off after, bounded by the tool's deadline
//! (design.md, "Eventual consistency"). The retries of one request are the HTTP layer's
//! (`crate::http::policy`).

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Sleeps for `d`, or fails with exit 5 when the deadline would pass first.
pub async fn sleep_within(d: Duration, deadline: Instant, what: &str) -> Result<()> {
    let now = Instant::now();
    if now + d > deadline {
        return Err(Error::timeout(format!(
            "{what}: the deadline (--timeout) would pass before the next attempt"
        )));
    }
    tokio::time::sleep(d).await;
    Ok(())
}

/// The longest pause between two polls of a replication wait, by how long it has lasted: 500 ms
/// for the first ten seconds, then 2 s, then 5 s after a minute, to stay far from throttling
/// limits when a wait drags on. [`poll_delay`] reaches it only after [`DENSE_POLLING`].
pub fn poll_cap(elapsed: Duration) -> Duration {
    if elapsed < Duration::from_secs(10) {
        Duration::from_millis(500)
    } else if elapsed < Duration::from_secs(60) {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(5)
    }
}

/// The pause between polls while a replication wait is young (before jitter of ±25 %).
pub const DENSE_INTERVAL: Duration = Duration::from_millis(150);
/// How long a replication wait polls every [`DENSE_INTERVAL`] before it backs off.
pub const DENSE_POLLING: Duration = Duration::from_secs(3);

/// The pause before the next poll of a replication wait (before jitter), given the previous
/// pause (`None` before the first) and how long the wait has lasted.
///
/// A tool cannot know the replication lag, and the lag is usually under a few seconds; each
/// wait in the chain also blocks every later step. So a young wait polls at a short fixed
/// interval ([`DENSE_INTERVAL`] for the first [`DENSE_POLLING`]): an object that appears then is
/// seen about 75 ms later on average (at most one interval plus jitter), where the earlier
/// geometric backoff (100 ms × 1.5 up to 500 ms) saw it about 260 ms late. After that the pause
/// grows by 1.25× per poll up to [`poll_cap`].
///
/// The request budget of one wait: a lag of L ≤ 3 s costs about 1 + L / 150 ms reads (at most
/// 1 + L / 112 ms with jitter), 14 for 2 s, against 8 with the earlier backoff; a wait that
/// lasts 10 s about 36 (earlier 23), and one past a minute one read per 5 s. Even for
/// applications (2 resource units per read) the dense phase uses about 1 % of the smallest
/// tenant's Graph budget (3,500 units per 10 s, graph.md §7.2). A wait that ends at the first
/// read — every run on a tenant without lag — costs nothing extra.
pub fn poll_delay(previous: Option<Duration>, elapsed: Duration) -> Duration {
    match previous {
        _ if elapsed < DENSE_POLLING => DENSE_INTERVAL,
        None => DENSE_INTERVAL,
        Some(p) => p.mul_f64(1.25).max(DENSE_INTERVAL).min(poll_cap(elapsed)),
    }
}

/// Outcome of one poll of an eventually consistent read.
pub enum Poll<T> {
    Ready(T),
    /// Not visible yet; the string says what we are waiting for.
    Pending(String),
}

/// Polls `probe` until it is ready, on the schedule of [`poll_delay`] with ±25 % jitter (every
/// 150 ms for the first 3 s, then backing off to [`poll_cap`]), until the deadline. This is how
/// every tool waits out replication (design.md, "Eventual consistency"): never a fixed sleep,
/// so a fast tenant costs one round trip and a slow one the lag plus a fraction of a poll.
pub async fn until_ready<T, F, Fut>(
    deadline: Instant,
    what: &str,
    progress: &crate::output::Reporter,
    mut probe: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>>>,
{
    let start = Instant::now();
    let mut delay = poll_delay(None, Duration::ZERO);
    loop {
        match probe().await? {
            Poll::Ready(v) => {
                progress.clear_progress();
                return Ok(v);
            }
            Poll::Pending(why) => {
                progress.progress(&format!("{what}: {}", wait_reason(&why)), start.elapsed());
                let jittered = delay.mul_f64(0.75 + rand::random::<f64>() * 0.5);
                if Instant::now() + jittered > deadline {
                    progress.clear_progress();
                    return Err(Error::timeout(format!(
                        "{what}: still not done after {:.1} s ({why})",
                        start.elapsed().as_secs_f64()
                    ))
                    .with_hint(format!(
                        "replication can take minutes in a large tenant: re-run the same command ({}), or raise --timeout",
                        crate::hint::same_command()
                    )));
                }
                tokio::time::sleep(jittered).await;
                delay = poll_delay(Some(delay), start.elapsed());
            }
        }
    }
}

/// Why a wait goes on, for the progress line: a service's refusal that means "not replicated
/// yet" (`POST /v1.0/…/$ref: graph answered 404 Request_ResourceNotFound: Resource '…' does not
/// exist …`) is said as what it is — `Graph does not show it yet (404 Request_ResourceNotFound)`
/// — so a normal wait does not read like a failure, and no URL with its encoded query is
/// repeated on every heartbeat. Other reasons are kept as they are.
pub fn wait_reason(why: &str) -> std::borrow::Cow<'_, str> {
    let Some(i) = why.find(" answered ") else {
        return std::borrow::Cow::Borrowed(why);
    };
    let service = why[..i].rsplit([' ', ':']).next().unwrap_or("");
    let answer = why[i + " answered ".len()..]
        .split(':')
        .next()
        .unwrap_or("")
        .split(" [request id")
        .next()
        .unwrap_or("")
        .trim();
    let name = match service {
        "graph" => "Graph",
        "dataverse" => "Dataverse",
        "login" => "Entra ID sign-in",
        _ => return std::borrow::Cow::Borrowed(why),
    };
    std::borrow::Cow::Owned(format!("{name} does not show it yet ({answer})"))
}

/// Polls a read that answers `None` while the object is not visible yet (a 404 mapped to
/// `None`) until it answers `Some`, within the deadline: the shape of almost every replication
/// wait ("the service principal I just created", "the app Dataverse does not know yet").
pub async fn until_visible<T, F, Fut>(
    deadline: Instant,
    what: &str,
    progress: &crate::output::Reporter,
    mut read: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    until_ready(deadline, what, progress, || {
        let fut = read();
        async move {
            Ok(match fut.await? {
                Some(v) => Poll::Ready(v),
                None => Poll::Pending("not visible yet".into()),
            })
        }
    })
    .await
}

/// As [`until_visible`], but an object still missing after `window` is an answer — `None`, "it
/// is not there" — rather than a timeout; only the tool's own deadline is an error. For objects
/// that may or may not exist (graph.md §7.4: cap replication retries at about 60–120 s).
pub async fn visible_within<T, F, Fut>(
    deadline: Instant,
    window: Duration,
    what: &str,
    progress: &crate::output::Reporter,
    read: F,
) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let until = deadline.min(Instant::now() + window);
    match until_visible(until, what, progress, read).await {
        Ok(v) => Ok(Some(v)),
        // The window, not the tool's deadline, ran out: the object is not there. When the
        // deadline came first, "not in time" (exit 5) is the honest answer.
        Err(e)
            if e.service().is_none()
                && e.kind == crate::error::Kind::Timeout
                && until < deadline =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// How long a just-written directory object may take to become readable before a tool
/// concludes it is not there (graph.md §7.4).
pub const REPLICATION_WINDOW: Duration = Duration::from_secs(120);

#[cfg(test)]
mod wait_reason_tests {
    use super::wait_reason;

    #[test]
    fn a_replication_refusal_reads_as_a_wait_not_a_failure() {
        let why = "POST /v1.0/servicePrincipals/7028/homeRealmDiscoveryPolicies/$ref: graph answered 404 Request_ResourceNotFound: Resource '1147' does not exist or one of its queried reference-property objects are not present. [request id eb23]";
        assert_eq!(
            wait_reason(why),
            "Graph does not show it yet (404 Request_ResourceNotFound)"
        );
        let q = "GET /api/data/v9.2/systemusers?$filter=applicationid%20eq%201: dataverse answered 400 0x80041d2a: not found";
        assert_eq!(
            wait_reason(q),
            "Dataverse does not show it yet (400 0x80041d2a)"
        );
        assert_eq!(wait_reason("not listed yet"), "not listed yet");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn polls_are_dense_while_young_then_back_off_within_the_budget() {
        // Walk the schedule without jitter: (polls before elapsed, elapsed).
        let polls_within = |limit: Duration| {
            let (mut t, mut n, mut d) = (Duration::ZERO, 1, None);
            loop {
                let next = poll_delay(d, t);
                if t + next > limit {
                    return n;
                }
                t += next;
                n += 1;
                d = Some(next);
            }
        };
        assert_eq!(poll_delay(None, Duration::ZERO), DENSE_INTERVAL);
        assert_eq!(
            poll_delay(Some(DENSE_INTERVAL), Duration::from_millis(2900)),
            DENSE_INTERVAL
        );
        let after = poll_delay(Some(DENSE_INTERVAL), DENSE_POLLING);
        assert!(after > DENSE_INTERVAL && after <= poll_cap(DENSE_POLLING));
        assert_eq!(
            poll_delay(Some(Duration::from_millis(500)), Duration::from_secs(5)),
            Duration::from_millis(500)
        );
        assert_eq!(
            poll_delay(Some(Duration::from_secs(2)), Duration::from_secs(90)),
            Duration::from_millis(2500)
        );
        assert_eq!(
            poll_delay(Some(Duration::from_secs(5)), Duration::from_secs(90)),
            Duration::from_secs(5)
        );
        // The documented budget: 14 reads for a 2 s wait, about 36 for 10 s.
        assert_eq!(polls_within(Duration::from_secs(2)), 14);
        assert!((35..=39).contains(&polls_within(Duration::from_secs(10))));
        assert!(polls_within(Duration::from_secs(120)) < 80);
    }
}
