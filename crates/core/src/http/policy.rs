//! The retry policy as one pure decision: after each attempt, [`decide`] says whether its answer
//! is the result, a failure another attempt would repeat, or worth another try after a pause —
//! and whether a write may already have been committed. The transport sends, sleeps and builds
//! the errors; nothing here reads a clock or does I/O (the caller passes the time and the
//! jitter), so every rule is tested below.
//!
//! Policy as azure_core's: retry 408, 429, 500, 502, 503, 504 and connection failures, honour
//! `retry-after-ms`, `x-ms-retry-after-ms` and `Retry-After` (seconds — Graph sends fractional
//! ones such as `2.128` — or an HTTP date), otherwise exponential backoff with jitter; everything
//! bounded by the tool's one deadline. A redirect is neither followed nor retried.

use std::time::{Duration, Instant, SystemTime};

use super::request::{Request, Response, parse_service_error};
use crate::error::{Error, Kind};

/// The first pause of the exponential backoff, and its cap.
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(10);

/// Where a request's retries stand when an attempt has come back.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// Attempts made before this one (0 for the first).
    pub number: u32,
    /// An earlier attempt may have been committed (see [`Decision`]).
    pub committed: bool,
    /// Now, for the deadline.
    pub now: Instant,
    /// Now on the wall clock, for a `Retry-After` given as an HTTP date.
    pub wall: SystemTime,
    /// In `0.0..1.0`: the random half of the backoff ("equal jitter").
    pub jitter: f64,
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// The service answered, with any status.
    Answered(&'a Response),
    /// No answer. [`Kind::Timeout`] means nothing came back (refused, reset, timed out) and
    /// another attempt may fare better; any other kind (an untrusted certificate, a request that
    /// cannot be built, a missing credential) will not get better. `ambiguous` says the request
    /// went out before the connection broke.
    NoAnswer(&'a Error),
}

/// What to do after an attempt. `committed`: a write may have been committed although no
/// success was seen (its connection broke after it was sent, or it got a 500, 502 or 504) —
/// in this attempt or an earlier one; a later 503 does not undo an earlier commit, and the
/// caller's clean-up keys on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The answer is the result: a 2xx, or a status the request accepts.
    Accept,
    /// A failure another attempt would repeat: a 4xx, a redirect, a refused certificate.
    Fail { committed: bool },
    /// Try again after `after`.
    Retry { after: Duration, committed: bool },
    /// Worth another try, but none may be made.
    GiveUp { why: GiveUp, committed: bool },
}

/// Why a retryable failure is not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The request's [`Request::attempts`] are used up.
    Attempts,
    /// The request must not be replayed once it may have been committed
    /// ([`Request::stop_once_committed`]).
    Committed,
    /// The next attempt would start after the tool's deadline (`--timeout`).
    Deadline,
}

/// The decision after `outcome`, the attempt described by `attempt`, for `req`, within
/// `deadline`.
pub fn decide(
    req: &Request,
    outcome: Outcome<'_>,
    attempt: &Attempt,
    deadline: Instant,
) -> Decision {
    let backoff = || backoff(attempt.number, BACKOFF_BASE, BACKOFF_CAP, attempt.jitter);
    let (after, committed) = match outcome {
        Outcome::Answered(resp)
            if (200..300).contains(&resp.status) || req.accept.contains(&resp.status) =>
        {
            return Decision::Accept;
        }
        // Following would send the request — credentials and all — to the host the answer
        // names; repeating it gets the same answer.
        Outcome::Answered(resp) if (300..400).contains(&resp.status) => {
            return Decision::Fail {
                committed: attempt.committed,
            };
        }
        Outcome::Answered(resp) => {
            let committed =
                attempt.committed || (req.is_write() && matches!(resp.status, 500 | 502 | 504));
            // A condition of this request's own that passes (Dataverse's customization lock).
            let passing = !req.retry_codes.is_empty() && {
                let se = parse_service_error(req.service, resp);
                req.retry_codes.iter().any(|c| se.has_code(c))
            };
            if !(is_retryable_status(resp.status) || passing) {
                return Decision::Fail { committed };
            }
            let asked = retry_after(
                resp.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                attempt.wall,
            );
            (asked.unwrap_or_else(backoff), committed)
        }
        Outcome::NoAnswer(e) => {
            let committed = attempt.committed || e.ambiguous;
            if e.kind != Kind::Timeout {
                return Decision::Fail { committed };
            }
            (backoff(), committed)
        }
    };
    let why = if req.max_attempts.is_some_and(|m| attempt.number + 1 >= m) {
        Some(GiveUp::Attempts)
    } else if committed && req.stop_once_committed {
        Some(GiveUp::Committed)
    } else if attempt.now.checked_add(after).is_none_or(|t| t > deadline) {
        Some(GiveUp::Deadline)
    } else {
        None
    };
    match why {
        Some(why) => Decision::GiveUp { why, committed },
        None => Decision::Retry { after, committed },
    }
}

pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// The delay a response asks for, from its headers (`name` is matched case-insensitively).
pub fn retry_after<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    now: SystemTime,
) -> Option<Duration> {
    let mut secs = None;
    for (name, value) in headers {
        let v = value.trim();
        if name.eq_ignore_ascii_case("retry-after-ms")
            || name.eq_ignore_ascii_case("x-ms-retry-after-ms")
        {
            // Millisecond headers are more precise; they win over Retry-After.
            if let Ok(ms) = v.parse::<f64>() {
                if ms.is_finite() && ms >= 0.0 {
                    return Some(Duration::from_secs_f64((ms / 1000.0).min(86_400.0)));
                }
            }
        } else if name.eq_ignore_ascii_case("retry-after") {
            secs = parse_retry_after(v, now);
        }
    }
    secs
}

/// `Retry-After` value: delta-seconds (integer or fractional) or an HTTP date.
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(86_400.0)));
    }
    // A date far in the future is clamped like the numeric forms: the value comes from the
    // wire and is added to an `Instant`.
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(86_400)),
    )
}

/// Exponential backoff with "equal jitter": half fixed, half random (`jitter` in `0.0..1.0`), so
/// retries of parallel clients spread out but never collapse to zero.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.min(16)));
    let d = exp.min(cap);
    let half = d / 2;
    half + Duration::from_secs_f64(half.as_secs_f64() * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ServiceError;
    use crate::http::request::{Method, Service};

    fn get() -> Request {
        Request::new(
            Method::Get,
            Service::Graph,
            "https://graph.example/v1.0/applications",
        )
    }
    fn post() -> Request {
        Request::new(
            Method::Post,
            Service::Graph,
            "https://graph.example/v1.0/applications",
        )
    }
    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }
    fn first(now: Instant) -> Attempt {
        Attempt {
            number: 0,
            committed: false,
            now,
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000),
            jitter: 0.0,
        }
    }
    fn far(now: Instant) -> Instant {
        now + Duration::from_secs(600)
    }
    fn on(req: &Request, resp: &Response) -> Decision {
        let now = Instant::now();
        decide(req, Outcome::Answered(resp), &first(now), far(now))
    }

    #[test]
    fn success_and_accepted_statuses_are_the_result() {
        assert_eq!(on(&get(), &answer(200, &[], "{}")), Decision::Accept);
        assert_eq!(on(&post(), &answer(204, &[], "")), Decision::Accept);
        assert_eq!(
            on(&get().accept(404), &answer(404, &[], "")),
            Decision::Accept
        );
        assert_eq!(
            on(&get(), &answer(404, &[], "")),
            Decision::Fail { committed: false }
        );
    }

    #[test]
    fn throttling_timeouts_and_server_errors_are_retried_with_backoff() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert_eq!(
                on(&get(), &answer(status, &[], "")),
                Decision::Retry {
                    after: Duration::from_millis(100),
                    committed: false
                },
                "{status}"
            );
        }
        for status in [400, 401, 403, 409, 501] {
            assert!(
                matches!(on(&get(), &answer(status, &[], "")), Decision::Fail { .. }),
                "{status}"
            );
        }
        // The backoff doubles per attempt, up to its cap, half of it jittered.
        let now = Instant::now();
        let third = Attempt {
            number: 2,
            jitter: 1.0,
            ..first(now)
        };
        assert_eq!(
            decide(
                &get(),
                Outcome::Answered(&answer(503, &[], "")),
                &third,
                far(now)
            ),
            Decision::Retry {
                after: Duration::from_millis(800),
                committed: false
            }
        );
    }

    #[test]
    fn retry_after_in_every_form_is_honoured() {
        let wall = first(Instant::now()).wall;
        let date = httpdate::fmt_http_date(wall + Duration::from_secs(7));
        for (headers, want) in [
            (vec![("Retry-After", "3")], Duration::from_secs(3)),
            (vec![("retry-after", "2.128")], Duration::from_millis(2128)),
            (vec![("Retry-After", date.as_str())], Duration::from_secs(7)),
            (vec![("retry-after-ms", "250")], Duration::from_millis(250)),
            (
                vec![("Retry-After", "5"), ("x-ms-retry-after-ms", "40")],
                Duration::from_millis(40),
            ),
        ] {
            assert_eq!(
                on(&get(), &answer(429, &headers, "")),
                Decision::Retry {
                    after: want,
                    committed: false
                },
                "{headers:?}"
            );
        }
        // An unreadable value falls back to the backoff.
        assert_eq!(
            on(&get(), &answer(503, &[("Retry-After", "soon")], "")),
            Decision::Retry {
                after: Duration::from_millis(100),
                committed: false
            }
        );
    }

    #[test]
    fn a_connection_failure_is_retried_and_a_refused_certificate_is_not() {
        let now = Instant::now();
        let dropped = Error::timeout("no answer from graph.example");
        assert!(matches!(
            decide(&get(), Outcome::NoAnswer(&dropped), &first(now), far(now)),
            Decision::Retry {
                committed: false,
                ..
            }
        ));
        let tls = Error::auth("TLS to graph.example failed");
        assert_eq!(
            decide(&get(), Outcome::NoAnswer(&tls), &first(now), far(now)),
            Decision::Fail { committed: false }
        );
    }

    #[test]
    fn a_write_that_may_have_been_committed_says_so_and_is_not_replayed_when_asked() {
        let now = Instant::now();
        // A POST answered 500 or 504, or cut off after it was sent, may have been committed.
        for status in [500, 502, 504] {
            assert_eq!(
                on(&post(), &answer(status, &[], "")),
                Decision::Retry {
                    after: Duration::from_millis(100),
                    committed: true
                },
                "{status}"
            );
        }
        let mut cut = Error::timeout("no answer");
        cut.ambiguous = true;
        assert!(matches!(
            decide(&post(), Outcome::NoAnswer(&cut), &first(now), far(now)),
            Decision::Retry {
                committed: true,
                ..
            }
        ));
        // A 503 or 429 was not processed; a GET commits nothing.
        assert!(matches!(
            on(&post(), &answer(503, &[], "")),
            Decision::Retry {
                committed: false,
                ..
            }
        ));
        assert!(matches!(
            on(&get(), &answer(500, &[], "")),
            Decision::Retry {
                committed: false,
                ..
            }
        ));
        // A write that starts something without an idempotency key is not sent twice.
        let once = post().stop_once_committed();
        assert_eq!(
            on(&once, &answer(504, &[], "")),
            Decision::GiveUp {
                why: GiveUp::Committed,
                committed: true
            }
        );
        assert!(matches!(
            on(&once, &answer(503, &[], "")),
            Decision::Retry { .. }
        ));
        // An earlier commit is not undone by a later 503, nor by a final 4xx.
        let later = Attempt {
            number: 1,
            committed: true,
            ..first(now)
        };
        assert!(matches!(
            decide(
                &post(),
                Outcome::Answered(&answer(503, &[], "")),
                &later,
                far(now)
            ),
            Decision::Retry {
                committed: true,
                ..
            }
        ));
        assert_eq!(
            decide(
                &post(),
                Outcome::Answered(&answer(409, &[], "")),
                &later,
                far(now)
            ),
            Decision::Fail { committed: true }
        );
        assert_eq!(
            decide(
                &once,
                Outcome::Answered(&answer(503, &[], "")),
                &later,
                far(now)
            ),
            Decision::GiveUp {
                why: GiveUp::Committed,
                committed: true
            }
        );
    }

    #[test]
    fn the_deadline_and_the_attempt_limit_end_the_retries() {
        let now = Instant::now();
        let soon = now + Duration::from_secs(2);
        let slow = answer(429, &[("Retry-After", "5")], "");
        assert_eq!(
            decide(&get(), Outcome::Answered(&slow), &first(now), soon),
            Decision::GiveUp {
                why: GiveUp::Deadline,
                committed: false
            }
        );
        let quick = answer(429, &[("Retry-After", "1")], "");
        assert!(matches!(
            decide(&get(), Outcome::Answered(&quick), &first(now), soon),
            Decision::Retry { .. }
        ));
        let three = get().attempts(3);
        let third = Attempt {
            number: 2,
            ..first(now)
        };
        let dropped = Error::timeout("no answer");
        assert_eq!(
            decide(&three, Outcome::NoAnswer(&dropped), &third, far(now)),
            Decision::GiveUp {
                why: GiveUp::Attempts,
                committed: false
            }
        );
        let second = Attempt {
            number: 1,
            ..first(now)
        };
        assert!(matches!(
            decide(&three, Outcome::NoAnswer(&dropped), &second, far(now)),
            Decision::Retry { .. }
        ));
    }

    #[test]
    fn redirects_are_never_retried() {
        for status in [301, 302, 303, 307, 308] {
            let r = answer(
                status,
                &[
                    ("Location", "https://elsewhere.example/"),
                    ("Retry-After", "1"),
                ],
                "",
            );
            assert_eq!(
                on(&get(), &r),
                Decision::Fail { committed: false },
                "{status}"
            );
            assert_eq!(
                on(&post(), &r),
                Decision::Fail { committed: false },
                "{status}"
            );
        }
    }

    #[test]
    fn a_request_s_own_passing_condition_is_retried() {
        let locked = answer(
            400,
            &[],
            r#"{"error":{"code":"0x80071151","message":"customization lock"}}"#,
        );
        let se: ServiceError = parse_service_error(Service::Dataverse, &locked);
        assert!(se.has_code("0x80071151"));
        let publish = Request::new(
            Method::Post,
            Service::Dataverse,
            "https://org.example/api/data/v9.2/PublishAllXml",
        )
        .retry_on_code("0x80071151");
        assert!(matches!(on(&publish, &locked), Decision::Retry { .. }));
        assert_eq!(on(&post(), &locked), Decision::Fail { committed: false });
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("2.128", now),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after([("Retry-After", "5"), ("x-ms-retry-after-ms", "250")], now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn backoff_is_bounded() {
        for a in 0..40 {
            for jitter in [0.0, 0.5, 1.0] {
                let d = backoff(
                    a,
                    Duration::from_millis(200),
                    Duration::from_secs(8),
                    jitter,
                );
                assert!(d <= Duration::from_secs(8) && d >= Duration::from_millis(100));
            }
        }
    }
}
