//! The measurements as typed data: what `benchmarks.json` holds, field for field and in its
//! order, so the measuring code fills these structs and [`crate::report`] reads them (the JSON
//! file is what a later run carries the release-profile sweep over from, and what a reader
//! compares runs with).
//!
//! Medians are `f64` and NaN when nothing was measured; JSON has no NaN, so they are written as
//! `null` (as `serde_json` writes every non-finite number) and read back as NaN.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Reads (part of) a `benchmarks.json`. Through a `Value` first: with the workspace's
/// `arbitrary_precision`, a number in a `Value` keeps its text and becomes an `f64` by std's
/// exact parse, where serde_json's own float parser can land one bit off (it reads
/// `1.2138069999999999` as `1.213807`), and a figure carried over into the next file would
/// change.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_value(serde_json::from_slice(bytes)?)
}

/// Everything one benchmark run measured, then what the report derived from it (`targets`,
/// `minimum`), in the order `benchmarks.json` has them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub machine: Machine,
    /// When the run started (RFC 3339, UTC).
    pub date: String,
    /// `git rev-parse --short HEAD`, with a note when the tree had uncommitted changes.
    pub git: String,
    /// The release profile of the measured build, as text (`--profile`).
    pub profile: String,
    /// How the binaries were built (`--build-note`).
    pub build_note: String,
    pub bin_dir: String,
    /// The other build whose lag runs took turns with this one (`--baseline`).
    pub baseline: Option<Baseline>,
    pub runs: Runs,
    /// Tools missing from `--bin-dir`, so not measured.
    pub not_built: Vec<String>,
    pub startup: Startup,
    /// Release binary sizes by name (the tools and tenant-sim).
    pub binary_bytes: BTreeMap<String, u64>,
    pub chain: Chain,
    /// This build's run at the longest lag (the one the per-tool tables show); `null` without
    /// lag runs.
    pub lag: Option<BuildRuns>,
    pub lags: Vec<Lag>,
    pub fleet: Option<Fleet>,
    /// The release-profile sweep (`--variant`), or the one carried over from the last file.
    pub variants: Vec<Variant>,
    pub bench_seconds: f64,
    /// The 1-minute load average at the start and after each phase (`null` when unreadable).
    pub loadavg_1min_samples: Vec<Option<f64>>,
    /// What else was seen of the machine's load (`--load-note`).
    pub load_note: String,
    /// When the sweep in `variants` was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants_date: Option<String>,
    /// Each target met or missed (added by the report).
    #[serde(default)]
    pub targets: Vec<Target>,
    /// The documented minimum requests per tool (added by the report), in runbook order.
    #[serde(default)]
    pub minimum: Ordered<MinimumEntry>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub rustc: String,
    pub kernel: String,
    /// `/proc/loadavg`'s three averages when the run started.
    pub loadavg_at_start: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Baseline {
    pub name: String,
    pub dir: String,
    pub note: String,
}

/// How many runs each phase had.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Runs {
    pub startup: usize,
    pub chain: usize,
    pub lag: usize,
    /// The longest lag measured (`null` without lag runs).
    pub lag_ms: Option<u64>,
    pub lags_ms: Vec<u64>,
    pub fleet: usize,
}

// ---- start-up ------------------------------------------------------------------------------------

/// Start-up of one build's tools against `/bin/true`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Startup {
    #[serde(deserialize_with = "nan_if_null")]
    pub true_median_ms: f64,
    /// Every command measured, `/bin/true` first.
    pub commands: Vec<StartupRow>,
    pub tools: BTreeMap<String, ToolStartup>,
    /// What each fail-fast run did besides failing (`strace`); the main build only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<BTreeMap<String, Audit>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ToolStartup {
    /// `TOOL --help`.
    pub help: StartupRow,
    /// `TOOL </dev/null` with nothing configured: must exit 2 before any request.
    pub fail_fast: StartupRow,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StartupRow {
    pub command: String,
    /// `floor` (`/bin/true`), `help` or `fail_fast`.
    pub mode: String,
    #[serde(deserialize_with = "nan_if_null")]
    pub median_ms: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub min_ms: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub over_true_ms: f64,
    /// The most frequent exit code.
    pub exit_code: i32,
    /// How many runs ended with each exit code.
    pub exit_codes: BTreeMap<i32, usize>,
    pub maxrss_kib: u64,
}

/// A fail-fast run seen by `strace`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Audit {
    pub exit: Option<i32>,
    /// Files opened beyond the dynamic loader's.
    pub files: Vec<String>,
    pub sockets: u64,
    pub threads: u64,
}

// ---- the chain -----------------------------------------------------------------------------------

/// The chain fresh, re-run on the finished setup, and add-sync-filter alone after it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Chain {
    /// The chain's tools that were built, in order.
    pub tools: Vec<String>,
    pub fresh: Option<Series>,
    pub rerun: Option<Series>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_sync_filter: Option<AddSyncFilter>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AddSyncFilter {
    pub fresh: Series,
    pub rerun: Series,
}

/// Several runs of one pipeline: wall times, and per tool the medians and the median run's
/// requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Series {
    pub wall_ms: Vec<f64>,
    #[serde(deserialize_with = "nan_if_null")]
    pub wall_ms_median: f64,
    /// Every tool of every run exited 0.
    pub all_exit_0: bool,
    /// Per tool, in pipeline order.
    pub tools: Ordered<ToolRun>,
    /// Requests of the median run without a tool's user agent.
    pub unattributed_requests: Vec<Counts>,
}

impl Series {
    pub fn tool(&self, name: &str) -> Option<&ToolRun> {
        self.tools.get(name)
    }
}

/// One tool's part of a [`Series`]: the median run's requests (as [`Counts`]) and the medians
/// over all runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ToolRun {
    pub reads: i64,
    pub writes: i64,
    pub login: i64,
    pub errors: i64,
    pub requests: Vec<String>,
    pub exit_codes: Vec<i32>,
    #[serde(deserialize_with = "nan_if_null")]
    pub end_ms_median: f64,
    /// From the previous tool's exit to this tool's exit.
    #[serde(deserialize_with = "nan_if_null")]
    pub own_ms_median: f64,
    pub maxrss_kib: u64,
    #[serde(deserialize_with = "nan_if_null")]
    pub cpu_ms_median: f64,
    /// The request counts differed between runs.
    pub requests_vary: bool,
    /// The first lines of the median run's stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<Vec<String>>,
}

impl ToolRun {
    /// API requests: reads and writes (sign-ins apart).
    pub fn api_requests(&self) -> i64 {
        self.reads + self.writes
    }
}

/// One tool's requests in tenant-sim's log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// GET and HEAD to Graph or Dataverse.
    pub reads: i64,
    /// Any other method to Graph or Dataverse.
    pub writes: i64,
    /// Requests to the token endpoint.
    pub login: i64,
    /// Answers ≥ 400, and requests without an answer.
    pub errors: i64,
    /// Method, service, path and status of each, guids shortened.
    pub requests: Vec<String>,
}

impl Counts {
    pub fn totals(&self) -> (i64, i64, i64) {
        (self.reads, self.writes, self.login)
    }
}

/// The chain at one replication lag, per build.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Lag {
    pub lag_ms: u64,
    /// `this` first, then the baseline.
    pub builds: Ordered<BuildRuns>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BuildRuns {
    pub fresh: Option<Series>,
}

// ---- fleet, variants -----------------------------------------------------------------------------

/// `verify-sync --fleet` over many state files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Fleet {
    pub files: usize,
    pub jobs: String,
    pub wall_ms: Vec<f64>,
    #[serde(deserialize_with = "nan_if_null")]
    pub wall_ms_median: f64,
    pub exit_codes: Vec<i32>,
    /// Lines reporting a connection ok, per run.
    pub ok_lines: Vec<usize>,
    pub maxrss_kib: u64,
    pub reads: i64,
    pub writes: i64,
    pub login: i64,
    pub requests_vary: bool,
    /// The last lines of the median run's stderr.
    pub stderr: Vec<String>,
}

/// One release-profile build of the sweep.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Variant {
    pub name: String,
    pub profile: String,
    pub binary_bytes: BTreeMap<String, u64>,
    pub startup: Startup,
    /// Each tool run alone on a finished setup.
    pub recheck: BTreeMap<String, Recheck>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Recheck {
    #[serde(deserialize_with = "nan_if_null")]
    pub wall_ms_median: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub cpu_ms_median: f64,
    pub exit_codes: Vec<i32>,
}

// ---- what the report adds -------------------------------------------------------------------------

/// One target of the report: the figure measured against its limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub name: String,
    pub figure: String,
    pub limit: String,
    /// `null` when not measured.
    pub met: Option<bool>,
    /// `met`, `**missed**` or `not measured`.
    pub result: String,
    pub note: String,
}

/// [`crate::minimum::Minimum`] as the JSON file has it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MinimumEntry {
    pub fresh: Floor,
    pub rerun: Floor,
    pub why: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Floor {
    pub reads: i64,
    pub writes: i64,
    pub login: i64,
}

// ---- helpers ---------------------------------------------------------------------------------------

/// A JSON object whose keys keep their order (the chain's tools in pipeline order, this build
/// before the baseline), where a `BTreeMap` would sort them.
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<T> Ordered<T> {
    pub fn get(&self, key: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|(_, v)| v)
    }
}

impl<T> FromIterator<(String, T)> for Ordered<T> {
    fn from_iter<I: IntoIterator<Item = (String, T)>>(iter: I) -> Self {
        Ordered(iter.into_iter().collect())
    }
}

impl<T: Serialize> Serialize for Ordered<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Entries<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        deserializer.deserialize_map(Entries(PhantomData))
    }
}

/// A median that was written as `null` (NaN: nothing measured) reads back as NaN.
fn nan_if_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = include_str!("../../../docs/benchmarks.json");

    #[test]
    fn the_committed_file_reads_and_writes_back_byte_for_byte() {
        let results: Results = from_json(COMMITTED.as_bytes()).expect("docs/benchmarks.json");
        let text = serde_json::to_string_pretty(&results).expect("serialise") + "\n";
        assert!(
            text == COMMITTED,
            "the typed results write docs/benchmarks.json differently; first difference at byte {}",
            text.bytes()
                .zip(COMMITTED.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(text.len().min(COMMITTED.len()))
        );
    }

    #[test]
    fn ordered_objects_keep_their_order() {
        let o: Ordered<u8> = from_json(br#"{"this": 1, "before": 2}"#).expect("map");
        assert_eq!(o.get("before"), Some(&2));
        assert_eq!(
            serde_json::to_string(&o).expect("json"),
            r#"{"this":1,"before":2}"#
        );
    }

    #[test]
    fn a_median_written_as_null_reads_back_as_nan() {
        let mut r = Recheck {
            wall_ms_median: f64::NAN,
            cpu_ms_median: 1.5,
            exit_codes: vec![0],
        };
        let text = serde_json::to_string(&r).expect("json");
        assert_eq!(
            text,
            r#"{"wall_ms_median":null,"cpu_ms_median":1.5,"exit_codes":[0]}"#
        );
        r = from_json(text.as_bytes()).expect("back");
        assert!(r.wall_ms_median.is_nan());
    }
}
