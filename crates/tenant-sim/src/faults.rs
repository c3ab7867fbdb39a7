//! Fault injection: scripted faults (`POST /_sim/faults`) and random faults drawn from
//! `(fault_seed, seq)` so a run is reproducible for a seed regardless of timing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What happens to a faulted request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with an error status (and the service's error body).
    Status,
    /// Close the connection before the request is processed.
    Drop,
    /// Process (and commit) the request, then close the connection without the response.
    LostResponse,
    /// Never answer.
    Stall,
}

/// A fault decided for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Option<Value>,
}

impl Fault {
    /// The label recorded in the request log.
    pub fn label(&self) -> String {
        match self.kind {
            FaultKind::Status => self.status.to_string(),
            FaultKind::Drop => "drop".into(),
            FaultKind::LostResponse => "lost_response".into(),
            FaultKind::Stall => "stall".into(),
        }
    }
}

/// A scripted fault as posted to `/_sim/faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedFault {
    pub path_prefix: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub retry_after: Option<String>,
    #[serde(default = "default_kind")]
    pub kind: FaultKind,
    #[serde(default = "one")]
    pub count: u64,
    #[serde(default)]
    pub body: Option<Value>,
}

fn default_kind() -> FaultKind {
    FaultKind::Status
}
fn one() -> u64 {
    1
}

/// Take the first scripted fault matching the request (decrementing its count).
pub fn take_scripted(list: &mut Vec<ScriptedFault>, method: &str, path: &str) -> Option<Fault> {
    let idx = list.iter().position(|f| {
        f.count > 0
            && path.starts_with(&f.path_prefix)
            && f.method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
    })?;
    let f = &mut list[idx];
    f.count -= 1;
    let out = Fault {
        kind: f.kind.clone(),
        status: f.status.unwrap_or(503),
        retry_after: f.retry_after.clone(),
        body: f.body.clone(),
    };
    if f.count == 0 {
        list.remove(idx);
    }
    Some(out)
}

/// splitmix64: a tiny, stable mixing function (stable across crate versions, unlike StdRng).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random fault for request `seq`, if any. Deterministic in `(seed, seq)`.
pub fn random_fault(seed: u64, seq: u64, rate: f64, retry_after_secs: f64) -> Option<Fault> {
    if rate <= 0.0 {
        return None;
    }
    let a = splitmix64(seed ^ splitmix64(seq));
    let u = (a >> 11) as f64 / (1u64 << 53) as f64;
    if u >= rate {
        return None;
    }
    let pick = splitmix64(a) % 5;
    let status = |s: u16| Fault {
        kind: FaultKind::Status,
        status: s,
        retry_after: (s == 429).then(|| format_secs(retry_after_secs)),
        body: None,
    };
    Some(match pick {
        0 => status(429),
        1 => status(503),
        2 => status(504),
        3 => Fault {
            kind: FaultKind::Drop,
            status: 0,
            retry_after: None,
            body: None,
        },
        _ => Fault {
            kind: FaultKind::LostResponse,
            status: 0,
            retry_after: None,
            body: None,
        },
    })
}

/// Format seconds for a Retry-After header ("1", "0.05").
pub fn format_secs(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        let t = format!("{s:.3}");
        t.trim_end_matches('0').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_faults_are_deterministic_per_seed() {
        let run = |seed| {
            (1..500)
                .map(|s| random_fault(seed, s, 0.3, 0.05).map(|f| f.label()))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let hits = run(7).iter().filter(|f| f.is_some()).count();
        assert!((100..200).contains(&hits), "rate roughly honoured: {hits}");
        let labels: std::collections::BTreeSet<_> = run(7).into_iter().flatten().collect();
        assert_eq!(labels.len(), 5, "all five kinds occur: {labels:?}");
        assert!(random_fault(1, 1, 0.0, 1.0).is_none());
    }

    #[test]
    fn scripted_faults_count_down() {
        let mut l = vec![ScriptedFault {
            path_prefix: "/v1.0/applications".into(),
            method: Some("POST".into()),
            status: Some(429),
            retry_after: Some("1".into()),
            kind: FaultKind::Status,
            count: 2,
            body: None,
        }];
        assert!(take_scripted(&mut l, "GET", "/v1.0/applications").is_none());
        assert_eq!(
            take_scripted(&mut l, "post", "/v1.0/applications/x").map(|f| f.status),
            Some(429)
        );
        assert!(take_scripted(&mut l, "POST", "/v1.0/applications").is_some());
        assert!(take_scripted(&mut l, "POST", "/v1.0/applications").is_none());
        assert_eq!(format_secs(0.05), "0.05");
        assert_eq!(format_secs(2.0), "2");
    }
}
