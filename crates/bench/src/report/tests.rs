use std::path::{Path, PathBuf};

use super::*;
use crate::results::{
    Baseline, BuildRuns, Chain, Fleet, Lag, Machine, Ordered, Runs, Startup, StartupRow,
    ToolStartup,
};

const COMMITTED_JSON: &str = include_str!("../../../../docs/benchmarks.json");
const COMMITTED_MD: &str = include_str!("../../../../docs/benchmarks.md");

fn committed() -> Results {
    crate::results::from_json(COMMITTED_JSON.as_bytes()).expect("docs/benchmarks.json")
}

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn first_difference(a: &str, b: &str) -> String {
    let line = a
        .lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or(a.lines().count().min(b.lines().count()));
    format!(
        "first difference at line {}:\n  rendered: {:?}\n  committed: {:?}",
        line + 1,
        a.lines().nth(line),
        b.lines().nth(line)
    )
}

/// `docs/benchmarks.md` is what the report renders from `docs/benchmarks.json`. When the page's
/// wording changes, `SNAPSHOTS=overwrite cargo test -p bench` renders it again from the JSON
/// (without measuring anything); review the diff.
#[test]
fn the_committed_page_is_rendered_from_the_committed_file() {
    let page = markdown(&committed());
    if std::env::var("SNAPSHOTS").as_deref() == Ok("overwrite") {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/benchmarks.md");
        std::fs::write(path, &page).expect("write docs/benchmarks.md");
        return;
    }
    assert!(
        page == COMMITTED_MD,
        "docs/benchmarks.md is not what the report renders from docs/benchmarks.json \
         (SNAPSHOTS=overwrite cargo test -p bench renders it again); {}",
        first_difference(&page, COMMITTED_MD)
    );
}

#[test]
fn the_committed_targets_are_judged_alike_from_the_committed_measurements() {
    let r = committed();
    assert!(!r.targets.is_empty());
    assert_eq!(targets::evaluate(&r), r.targets);
}

/// The measurements alone (no targets, no minimums, no sweep: what `measure_all` returns),
/// written where the last run's file lies, give that file and that page back byte for byte:
/// the sweep carried over, the targets judged, the minimums added.
#[test]
fn writing_the_committed_measurements_gives_the_committed_files_back() {
    let dir = TempDir::new("write");
    std::fs::write(dir.path().join("benchmarks.json"), COMMITTED_JSON).expect("old file");
    let mut measured = committed();
    assert!(
        !measured.variants.is_empty(),
        "the committed file has a sweep"
    );
    measured.targets.clear();
    measured.minimum = Ordered::default();
    measured.variants.clear();
    measured.variants_date = None;

    write(dir.path(), measured).expect("write");

    let json = std::fs::read_to_string(dir.path().join("benchmarks.json")).expect("json");
    assert!(
        json == COMMITTED_JSON,
        "{}",
        first_difference(&json, COMMITTED_JSON)
    );
    let md = std::fs::read_to_string(dir.path().join("benchmarks.md")).expect("md");
    assert!(
        md == COMMITTED_MD,
        "{}",
        first_difference(&md, COMMITTED_MD)
    );
}

#[test]
fn a_run_with_a_sweep_dates_it_today_and_ignores_the_old_one() {
    let dir = TempDir::new("sweep");
    std::fs::write(dir.path().join("benchmarks.json"), COMMITTED_JSON).expect("old file");
    let mut r = fixture();
    r.variants = vec![crate::results::Variant {
        name: "z".into(),
        profile: "opt-level = \"z\"".into(),
        ..Default::default()
    }];
    write(dir.path(), r).expect("write");
    let back: Results = crate::results::from_json(
        &std::fs::read(dir.path().join("benchmarks.json")).expect("json"),
    )
    .expect("typed");
    assert_eq!(back.variants.len(), 1);
    assert_eq!(back.variants_date.as_deref(), Some("2026-01-02T03:04:05Z"));
    assert_eq!(back.minimum.0.len(), minimum::TABLE.len());
}

// ---- a small typed fixture ------------------------------------------------------------------

fn tool_run(reads: i64, writes: i64, own_ms: f64) -> ToolRun {
    ToolRun {
        reads,
        writes,
        login: 1,
        requests: vec![format!("GET graph /v1.0/domains → 200 ({reads} reads)")],
        exit_codes: vec![0, 0],
        own_ms_median: own_ms,
        cpu_ms_median: own_ms / 2.0,
        maxrss_kib: 4096,
        stderr: Some(vec![]),
        ..Default::default()
    }
}

/// Every chain tool at its documented minimum, except that the re-run's register-app writes
/// once and the fleet's second run reports one file short.
fn fixture() -> Results {
    let series = |rerun: bool, own_ms: f64| Series {
        wall_ms: vec![100.0, 120.0],
        wall_ms_median: 110.0,
        all_exit_0: true,
        tools: crate::CHAIN
            .iter()
            .filter_map(|t| {
                let m = minimum::get(t)?;
                let (reads, writes) = match (rerun, *t) {
                    (true, "register-app") => (m.rerun.0, 1),
                    (true, _) => (m.rerun.0, 0),
                    (false, _) => (m.fresh.0, m.fresh.1),
                };
                Some((t.to_string(), tool_run(reads, writes, own_ms)))
            })
            .collect(),
        unattributed_requests: vec![],
    };
    let startup_row = |over: f64, code: i32| StartupRow {
        median_ms: 1.0 + over,
        over_true_ms: over,
        exit_code: code,
        maxrss_kib: 2048,
        ..Default::default()
    };
    Results {
        machine: Machine {
            nproc: 2,
            cpu: "Test CPU".into(),
            ..Default::default()
        },
        date: "2026-01-02T03:04:05Z".into(),
        git: "abc1234".into(),
        baseline: Some(Baseline {
            name: "before".into(),
            ..Default::default()
        }),
        runs: Runs {
            startup: 3,
            chain: 2,
            lag: 2,
            lag_ms: Some(500),
            lags_ms: vec![500],
            fleet: 2,
        },
        startup: Startup {
            true_median_ms: 1.0,
            tools: crate::TOOLS
                .iter()
                .map(|t| {
                    let help = startup_row(0.5, 0);
                    let fail_fast = startup_row(0.7, 2);
                    (t.to_string(), ToolStartup { help, fail_fast })
                })
                .collect(),
            ..Default::default()
        },
        binary_bytes: crate::TOOLS
            .iter()
            .map(|t| (t.to_string(), 3 * 1024 * 1024))
            .collect(),
        chain: Chain {
            tools: crate::CHAIN.iter().map(|t| t.to_string()).collect(),
            fresh: Some(series(false, 10.0)),
            rerun: Some(series(true, 5.0)),
            add_sync_filter: None,
        },
        lag: Some(BuildRuns {
            fresh: Some(series(false, 10.0)),
        }),
        lags: vec![Lag {
            lag_ms: 500,
            builds: Ordered(vec![
                (
                    "this".into(),
                    BuildRuns {
                        fresh: Some(series(false, 10.0)),
                    },
                ),
                (
                    "before".into(),
                    BuildRuns {
                        fresh: Some(series(false, 300.0)),
                    },
                ),
            ]),
        }],
        fleet: Some(Fleet {
            files: 3,
            wall_ms: vec![30.0, 31.0],
            wall_ms_median: 30.5,
            exit_codes: vec![0, 1],
            ok_lines: vec![3, 2],
            reads: 30,
            login: 9,
            stderr: vec!["verify-sync: 1 of 3 connection(s) fail".into()],
            ..Default::default()
        }),
        loadavg_1min_samples: vec![Some(0.5), None, Some(1.5)],
        ..Default::default()
    }
}

#[test]
fn every_section_of_the_page_is_rendered_from_typed_results() {
    let mut r = fixture();
    r.targets = targets::evaluate(&r);
    let page = markdown(&r);
    let sections = [
        "# Benchmarks\n",
        "\n## Targets\n",
        "\n## Start-up\n",
        "\n## The chain\n",
        "\n## Replication waits\n",
        "\n## Fleet check\n",
        "\n## Footprint\n",
        "\n## The minimum per tool, and why\n",
        "\n## Requests sent (median run)\n",
        "## Release profile\n",
        "\n## How to re-run\n",
    ];
    let mut from = 0;
    for heading in sections {
        let at = page[from..]
            .find(heading)
            .unwrap_or_else(|| panic!("{heading:?} missing or out of order in:\n{page}"));
        from += at + heading.len();
    }
    for line in [
        "- Machine: 2 CPU(s) (`nproc`), Test CPU, Linux , load average (1, 5, 15 min) at start ",
        "1-minute load average after each phase 0.50, 1.50 (highest 1.50) on 2 CPU(s)",
        "| re-run writes | 1 | 0 | **missed** | register-app 1 |",
        "| register-app | 1.50 | +0.50 | 1.70 | +0.70 | 2 | 2.0 MB |",
        "| wall time, median | **110 ms** | **110 ms** | **110 ms** (lag + -390 ms) |",
        "| register-app | 2 / 2 / 1 | 2 / 2 / 1 | +0 | 10.0 (5.0) | 3 / 1 / 1 | 3 / 0 / 1 |",
        " \"before\" is the baseline build, run with the same tenant-sim",
        "| exit codes | 0,1 |",
        "| files reported ok, per run | 3, 2 |",
        "**Not every file was reported ok** (stderr of the median run: `[\"verify-sync: 1 of 3 connection(s) fail\"]`).",
        "| verify-sync | 3.00 MB | 4.0 MB |",
        "| tenant-sim | not built | – |",
        "No sweep recorded yet: run `scripts/bench.sh --profiles`.",
    ] {
        assert!(page.contains(line), "{line:?} missing from:\n{page}");
    }
    let requests = &page[page.find("## Requests sent").expect("evidence")..];
    assert!(
        requests.contains("<details><summary>Fresh chain with 500 ms replication lag</summary>")
    );
    assert!(requests.contains(
        "**grant-consent** (2 / 1 / 1)\n\n```\nGET graph /v1.0/domains → 200 (2 reads)\n```"
    ));
    assert!(
        !requests.contains("add-sync-filter, fresh"),
        "no add-sync-filter runs"
    );
}

#[test]
fn targets_say_what_missed() {
    let r = fixture();
    let t = targets::evaluate(&r);
    let by_name = |name: &str| {
        t.iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} not judged: {t:?}"))
    };
    assert_eq!(by_name("re-run writes").met, Some(false));
    assert_eq!(by_name("re-run writes").note, "register-app 1");
    let fresh = by_name("fresh chain of eight tools: wall time (median)");
    assert_eq!((fresh.figure.as_str(), fresh.met), ("110 ms", Some(true)));
    let requests = by_name("fresh requests per tool: over the documented minimum (worst tool)");
    assert_eq!((requests.figure.as_str(), requests.met), ("+0", Some(true)));
    let help = by_name("start-up, --help: median over /bin/true (worst tool)");
    assert_eq!(help.figure, "+0.50 ms (verify-sync)");
    let size = by_name("release binary size (largest tool)");
    assert_eq!(
        (size.figure.as_str(), size.met),
        ("3.00 MB (register-app)", Some(true))
    );
    let rss = by_name("peak RSS of a tool in the chain (worst tool)");
    assert_eq!(rss.figure, "4.0 MB (register-app)");
    let lag = by_name("fresh chain with 500 ms replication lag: wall time (median)");
    assert_eq!(lag.met, Some(true));

    let mut broken = fixture();
    broken.chain.tools.pop();
    broken
        .startup
        .tools
        .get_mut("grant-consent")
        .expect("row")
        .fail_fast
        .exit_code = 1;
    let t = targets::evaluate(&broken);
    let fresh = t
        .iter()
        .find(|t| t.name.starts_with("fresh chain of"))
        .expect("fresh");
    assert_eq!(
        (fresh.met, fresh.note.as_str()),
        (Some(false), "only 7 of the eight tools are built")
    );
    let fail = t
        .iter()
        .find(|t| t.name.starts_with("start-up, missing"))
        .expect("fail");
    assert_eq!(
        (fail.met, fail.note.as_str()),
        (Some(false), "not exit 2: grant-consent exit 1")
    );
}
