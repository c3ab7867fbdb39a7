//! `benchmarks.md`: one function per section of the page, each writing its heading, its
//! explanation and its table from the typed [`Results`].

use std::fmt::Write as _;

use super::targets::longest_lag_ms;
use super::{
    lag_series, mb, own_ms, peak_rss_kib, startup_over, tool_run, verdict, waited, wall_median,
};
use crate::minimum::{self, Minimum};
use crate::results::{Fleet, Results, Series, ToolRun};
use crate::target;

// `write!` into a String cannot fail, so each section ignores its results (`let _`).

/// The whole page, section by section.
pub fn markdown(r: &Results) -> String {
    let mut s = String::new();
    header(&mut s, r);
    targets(&mut s, r);
    startup(&mut s, r);
    chain(&mut s, r);
    replication(&mut s, r);
    fleet(&mut s, r);
    footprint(&mut s, r);
    minimums(&mut s);
    requests_sent(&mut s, r);
    release_profile(&mut s, r);
    how_to_rerun(&mut s);
    s
}

/// The title and what the figures were measured on: date, machine, build, runs, load.
fn header(s: &mut String, r: &Results) {
    let m = &r.machine;
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(
        s,
        "Written by `scripts/bench.sh` (the `bench` crate) — do not edit by hand; re-run it.\n"
    );
    let _ = writeln!(s, "- Date: {}", r.date);
    let _ = writeln!(
        s,
        "- Machine: {} CPU(s) (`nproc`), {}, Linux {}, load average (1, 5, 15 min) at start {}",
        m.nproc, m.cpu, m.kernel, m.loadavg_at_start
    );
    let _ = writeln!(s, "- Toolchain: {}", m.rustc);
    let _ = writeln!(s, "- Commit: {}", r.git);
    if !r.profile.is_empty() {
        let _ = writeln!(s, "- Release profile: `{}`", r.profile);
    }
    if !r.build_note.is_empty() {
        let _ = writeln!(s, "- Build: {}", r.build_note);
    }
    let runs = &r.runs;
    let _ = writeln!(
        s,
        "- Runs: start-up {} per command (after 3 warm-up rounds), chain {} fresh + {} re-runs, {} per build at each replication lag ({} ms), fleet check {}; medians reported. The bench itself took {:.0} s.",
        runs.startup,
        runs.chain,
        runs.chain,
        runs.lag,
        runs.lags_ms
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        runs.fleet,
        r.bench_seconds
    );
    let samples: Vec<f64> = r
        .loadavg_1min_samples
        .iter()
        .flatten()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    let nproc = (m.nproc as f64).max(1.0);
    let max = samples.iter().copied().fold(0.0, f64::max);
    let _ = writeln!(
        s,
        "- Load: 1-minute load average after each phase {} (highest {max:.2}) on {nproc:.0} CPU(s). The machine is shared with other work, so the figures are noisy{}: \
each is a median of several runs, start-up is interleaved with `/bin/true`, and the baseline's lag runs take turns with this build's, so both see the same load; \
compare figures side by side within this file rather than with another day's.",
        samples
            .iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        if max >= nproc / 2.0 {
            " (**it was busy during this run**)"
        } else {
            " (it was quiet during this run)"
        }
    );
    if !r.load_note.is_empty() {
        let _ = writeln!(s, "- Load seen around this run: {}", r.load_note);
    }
    if !r.not_built.is_empty() {
        let _ = writeln!(
            s,
            "- **Not built, so not measured:** {}",
            r.not_built.join(", ")
        );
    }
}

/// Every target, met or missed.
fn targets(s: &mut String, r: &Results) {
    let _ = writeln!(s, "\n## Targets\n");
    let _ = writeln!(s, "| target | figure | limit | result | note |");
    let _ = writeln!(s, "|---|---:|---:|---|---|");
    for t in &r.targets {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            t.name, t.figure, t.limit, t.result, t.note
        );
    }
}

/// Start-up of each tool against `/bin/true`, and what a fail-fast run does before failing.
fn startup(s: &mut String, r: &Results) {
    let floor = r.startup.true_median_ms;
    let _ = writeln!(s, "\n## Start-up\n");
    let _ = writeln!(
        s,
        "Median wall time from spawn to reap, run round-robin with `/bin/true` (median **{floor:.2} ms**) so both see the same load. \
`--help` prints the help; \"missing value\" runs the tool with stdin `/dev/null`, an empty environment (no credential, `HOME` an empty directory) and no flags: \
every tool must exit 2 naming the flag and the JSON key, before any request.\n"
    );
    let _ = writeln!(
        s,
        "| tool | `--help` ms | over `/bin/true` | missing value ms | over `/bin/true` | exit | peak RSS (missing value) |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    for t in crate::TOOLS {
        let Some(v) = r.startup.tools.get(t) else {
            continue;
        };
        let _ = writeln!(
            s,
            "| {t} | {:.2} | {:+.2} | {:.2} | {:+.2} | {} | {:.1} MB |",
            v.help.median_ms,
            v.help.over_true_ms,
            v.fail_fast.median_ms,
            v.fail_fast.over_true_ms,
            v.fail_fast.exit_code,
            v.fail_fast.maxrss_kib as f64 / 1024.0
        );
    }

    let Some(audit) = r.startup.audit.as_ref().filter(|a| !a.is_empty()) else {
        return;
    };
    let clean = |a: &crate::results::Audit| a.sockets == 0 && a.threads == 0 && a.files.is_empty();
    let _ = writeln!(
        s,
        "\nWork before the first request (`strace -f` of the missing-value run): {} of {} tools open no file beyond the dynamic loader's, create no socket and start no thread (no token cache read, no TLS or HTTP client set-up, no async runtime threads).",
        audit.values().filter(|a| clean(a)).count(),
        audit.len()
    );
    for (t, a) in audit.iter().filter(|(_, a)| !clean(a)) {
        let _ = writeln!(
            s,
            "- {t}: files {}, sockets {}, threads {}",
            serde_json::to_string(&a.files).unwrap_or_default(),
            a.sockets,
            a.threads
        );
    }
}

/// The chain fresh, re-run and with lag: wall times, then requests and times per tool.
fn chain(s: &mut String, r: &Results) {
    let fresh = r.chain.fresh.as_ref();
    let rerun = r.chain.rerun.as_ref();
    let lag = lag_series(r);
    let lag_ms = longest_lag_ms(r);
    let _ = writeln!(s, "\n## The chain\n");
    let _ = writeln!(
        s,
        "`register-app | grant-consent | make-secret | set-hrd-policy | assign-role | configure-marketo | publish-customizations --if-changed | verify-sync`, \
started at once as a shell pipeline against `tenant-sim --federated` (so set-hrd-policy does its full work), on a tenant reset before each fresh run (`POST /_sim/reset`). \
The re-run feeds the fresh run's final document to the same pipeline. Requests come from tenant-sim's log (`GET /_sim/requests`), attributed by the user agent `marketo-s2s/<version> <tool>`: \
**reads** are GET, **writes** every other method to Graph or Dataverse, **sign-ins** requests to the token endpoint. \
\"own ms\" is the time from the previous tool's exit to this tool's exit (a tool can only start its work once its stdin is complete); \"CPU ms\" its user + system time from `wait4`; the rest is waiting for tenant-sim.\n"
    );
    let all_ok =
        |series: Option<&Series>| series.map_or("–".to_string(), |s| s.all_exit_0.to_string());
    let walls = |series: Option<&Series>| fmt_list(series.map(|s| s.wall_ms.as_slice()));
    let _ = writeln!(
        s,
        "| | fresh | re-run | with {lag_ms:.0} ms lag |\n|---|---:|---:|---:|\n| wall time, median | **{:.0} ms** | **{:.0} ms** | **{:.0} ms** (lag + {:.0} ms) |\n| all runs | {} | {} | {} |\n| every tool exit 0 | {} | {} | {} |\n",
        wall_median(fresh),
        wall_median(rerun),
        wall_median(lag),
        wall_median(lag) - lag_ms,
        walls(fresh),
        walls(rerun),
        walls(lag),
        all_ok(fresh),
        all_ok(rerun),
        all_ok(lag),
    );
    let _ = writeln!(
        s,
        "Requests per tool as reads / writes / sign-ins; \"minimum\" is the documented floor (below), \"extra\" the API requests (reads + writes) over it; the target allows +{}.\n",
        target::EXTRA_REQUESTS_PER_TOOL
    );
    let _ = writeln!(
        s,
        "| tool | fresh r/w/s | minimum | extra | fresh own ms (CPU ms) | re-run r/w/s | minimum | re-run own ms (CPU ms) | lag r/w/s | lag own ms | exit codes (fresh; re-run; lag) |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for t in crate::CHAIN {
        let fr = tool_run(fresh, t);
        let rr = tool_run(rerun, t);
        let lr = tool_run(lag, t);
        let min = minimum::get(t);
        let extra = min.map(|m| match fr {
            Some(fr) => format!("{:+}", fr.api_requests() - m.fresh_api()),
            None => "–".to_string(),
        });
        let _ = writeln!(
            s,
            "| {t} | {} | {} | {} | {:.1} ({:.1}) | {} | {} | {:.1} ({:.1}) | {} | {:.1} | {}; {}; {} |",
            cell_counts(fr),
            min.map(Minimum::fresh_cell).unwrap_or_default(),
            extra.unwrap_or_default(),
            own_ms(fr),
            cpu_ms(fr),
            cell_counts(rr),
            min.map(Minimum::rerun_cell).unwrap_or_default(),
            own_ms(rr),
            cpu_ms(rr),
            cell_counts(lr),
            own_ms(lr),
            fmt_codes(fr),
            fmt_codes(rr),
            fmt_codes(lr),
        );
    }
    let Some(asf) = &r.chain.add_sync_filter else {
        return;
    };
    let fr = asf.fresh.tool("add-sync-filter");
    let rr = asf.rerun.tool("add-sync-filter");
    let min = minimum::get("add-sync-filter");
    let _ = writeln!(
        s,
        "| add-sync-filter (optional; run alone after the chain) | {} | {} | {} | {:.1} | {} | {} | {:.1} | – | – | {}; {}; – |",
        cell_counts(fr),
        min.map(Minimum::fresh_cell).unwrap_or_default(),
        min.map(|m| format!("{:+}", fr.map_or(0, ToolRun::api_requests) - m.fresh_api()))
            .unwrap_or_default(),
        own_ms(fr),
        cell_counts(rr),
        min.map(Minimum::rerun_cell).unwrap_or_default(),
        own_ms(rr),
        fmt_codes(fr),
        fmt_codes(rr),
    );
}

/// The replication-wait target at every lag, this build beside the baseline when there is one;
/// then the longest lag per tool.
fn replication(s: &mut String, r: &Results) {
    if r.lags.is_empty() {
        return;
    }
    let waits = target::DEPENDENT_WAITS as f64;
    let base = r.baseline.as_ref();
    let _ = writeln!(s, "\n## Replication waits\n");
    let _ = writeln!(
        s,
        "The fresh chain against `tenant-sim --federated --replication-lag-ms L`, which hides every new directory object from reads for L. \
The chain has **{waits:.0} dependent waits**, each needing the object the step before wrote: app → service principal (register-app, the `NoBackingApplicationObject` race), \
service principal → grant (grant-consent), policy → assignment (set-hrd-policy), assignment → verify-sync's read. So the waits stack, and the target is \
**{waits:.0} × L + {waits:.0} × {:.0} ms**. \"over\" is the wall time beyond {waits:.0} × L, per wait (it includes the chain's own work, about a quarter of the fresh chain's time per wait). \
\"tools that waited\" counts the tools whose own time grew by at least L/2 over the run without lag (measured, not assumed). \
Requests are the chain's API requests (reads + writes) of the median run, sign-ins apart.{}\n",
        target::PER_WAIT_MS,
        base.map(|b| format!(
            " \"{}\" is the baseline build{}, run with the same tenant-sim, taking turns with this build run by run so both see the same load.",
            b.name,
            if b.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", b.note)
            }
        ))
        .unwrap_or_default()
    );
    let cols = |name: &str| {
        format!(
            "{name}: median | {name}: all runs | {name}: over, per wait | {name}: tools that waited | {name}: requests (sign-ins)"
        )
    };
    let mut head = format!("| lag L | target | {}", cols("this build"));
    let mut rule = "|---:|---:|---:|---|---:|---:|---:|".to_string();
    if let Some(b) = base {
        head.push_str(&format!(" | {}", cols(&b.name)));
        rule.push_str("---:|---|---:|---:|---:|");
    }
    head.push_str(" | result |");
    rule.push_str("---|");
    let _ = writeln!(s, "{head}\n{rule}");
    let mut names = vec!["this"];
    names.extend(base.map(|b| b.name.as_str()));
    for l in &r.lags {
        let lag_ms = l.lag_ms as f64;
        let limit = waits * (lag_ms + target::PER_WAIT_MS);
        let mut row = format!("| {lag_ms:.0} ms | ≤ {limit:.0} ms |");
        let mut met = None;
        for name in &names {
            let series = l.builds.get(name).and_then(|b| b.fresh.as_ref());
            let wall = wall_median(series);
            let (req, login) = series.map_or((0, 0), |s| {
                s.tools
                    .values()
                    .fold((0, 0), |a, v| (a.0 + v.api_requests(), a.1 + v.login))
            });
            let ok = series.is_some_and(|s| s.all_exit_0);
            let _ = write!(
                row,
                " **{wall:.0} ms**{} | {} | {:+.0} ms | {} | {req} ({login}) |",
                if ok { "" } else { " (a tool failed)" },
                fmt_list(series.map(|s| s.wall_ms.as_slice())),
                (wall - waits * lag_ms) / waits,
                waited(r, series, lag_ms).len(),
            );
            if *name == "this" {
                met = Some(ok && wall <= limit);
            }
        }
        let _ = writeln!(s, "{row} {} |", verdict(met));
    }
    let _ = writeln!(
        s,
        "\nEvery poll is a request, so with lag the counts grow with the lag and the schedule (`retry::poll_delay`: every 150 ms for the first 3 s, \
then backing off by 1.25× to 500 ms, 2 s after 10 s, 5 s after a minute); verify-sync's `--settle` re-runs only the checks still failing (and the reads they need) each round; set-hrd-policy's assignment of a policy not replicated yet is retried (each 404 means another POST), so under lag its count has writes that changed nothing. \
A run without lag polls nothing, so the budget of the documented minimum + 2 requests per tool is the fresh chain's (the 0 ms row and the target above)."
    );
    let longest = longest_lag_ms(r);
    let Some(l) = r.lags.iter().find(|l| l.lag_ms as f64 == longest) else {
        return;
    };
    let _ = writeln!(
        s,
        "\nAt {longest:.0} ms lag, per tool: own time, and API requests / answers ≥ 400 (the polls answered \"not yet\"):\n"
    );
    let _ = writeln!(
        s,
        "| tool | {} |\n|---|{}",
        names
            .iter()
            .map(|n| format!(
                "{} own ms | {} requests / ≥ 400",
                n.replace("this", "this build"),
                n.replace("this", "this build")
            ))
            .collect::<Vec<_>>()
            .join(" | "),
        "---:|---:|".repeat(names.len())
    );
    for t in crate::CHAIN {
        let mut row = format!("| {t} |");
        for n in &names {
            let v = tool_run(l.builds.get(n).and_then(|b| b.fresh.as_ref()), t);
            let _ = write!(
                row,
                " {:.0} | {} / {} |",
                own_ms(v),
                v.map_or(0, ToolRun::api_requests),
                v.map_or(0, |v| v.errors)
            );
        }
        let _ = writeln!(s, "{row}");
    }
}

/// `verify-sync --fleet` over many state files.
fn fleet(s: &mut String, r: &Results) {
    let Some(fl) = &r.fleet else {
        return;
    };
    let files = (fl.files as f64).max(1.0);
    let _ = writeln!(s, "\n## Fleet check\n");
    let _ = writeln!(
        s,
        "`verify-sync --fleet FILE...` (a consultant's morning check of every customer) over **{files:.0} state files** against one `tenant-sim --federated` (no lag), `--jobs` at its default. \
The files are copies of one finished setup's document, each in its own directory with its secret file: one tenant and one org hold only one working Marketo connection, \
so distinct setups would fail each other's \"Marketo User\" check; what is measured is the fleet mode itself (concurrency, sign-ins, requests per file). \
Requests are every request tenant-sim logged during the run.\n"
    );
    let med = fl.wall_ms_median;
    let ok_lines: Vec<f64> = fl.ok_lines.iter().map(|n| *n as f64).collect();
    let Fleet {
        reads,
        writes,
        login,
        ..
    } = *fl;
    let _ = writeln!(
        s,
        "| | figure |\n|---|---:|\n| wall time, median | **{med:.0} ms** ({:.1} ms per file) |\n| all runs | {} |\n| exit codes | {} |\n| files reported ok, per run | {} |\n| requests: reads / writes / sign-ins | {reads} / {writes} / {login}{} |\n| per file | {:.1} / {:.1} / {:.1} |\n| peak RSS | {:.1} MB |\n",
        med / files,
        fmt_list(Some(&fl.wall_ms)),
        codes(&fl.exit_codes),
        fmt_list(Some(&ok_lines)),
        if fl.requests_vary {
            " (varied between runs)"
        } else {
            ""
        },
        reads as f64 / files,
        writes as f64 / files,
        login as f64 / files,
        fl.maxrss_kib as f64 / 1024.0
    );
    let all_ok = ok_lines.iter().all(|n| *n == files) && fl.exit_codes.iter().all(|c| *c == 0);
    if !all_ok {
        let _ = writeln!(
            s,
            "**Not every file was reported ok** (stderr of the median run: `{}`).\n",
            serde_json::to_string(&fl.stderr).unwrap_or_default()
        );
    }
}

/// Release binary sizes and peak RSS in the chain.
fn footprint(s: &mut String, r: &Results) {
    let _ = writeln!(s, "\n## Footprint\n");
    let _ = writeln!(
        s,
        "Peak RSS is `ru_maxrss` from `wait4` for each tool process, the largest over every chain run (fresh, re-run, lag); binary size is the release file.\n"
    );
    let _ = writeln!(s, "| binary | size | peak RSS in the chain |");
    let _ = writeln!(s, "|---|---:|---:|");
    for t in crate::TOOLS.iter().chain(["tenant-sim"].iter()) {
        let kib = peak_rss_kib(r, t);
        let _ = writeln!(
            s,
            "| {t} | {} | {} |",
            r.binary_bytes
                .get(*t)
                .map(|b| format!("{:.2} MB", mb(*b as f64)))
                .unwrap_or_else(|| "not built".into()),
            if kib > 0 {
                format!("{:.1} MB", kib as f64 / 1024.0)
            } else {
                "–".into()
            }
        );
    }
}

/// The documented minimum requests per tool, and why none can go.
fn minimums(s: &mut String) {
    let _ = writeln!(s, "\n## The minimum per tool, and why\n");
    let _ = writeln!(s, "{}\n", minimum::PREAMBLE);
    let _ = writeln!(
        s,
        "| tool | fresh: reads / writes / sign-ins | re-run | the requests, and why none can go |"
    );
    let _ = writeln!(s, "|---|---:|---:|---|");
    for m in minimum::TABLE {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            m.tool,
            m.fresh_cell(),
            m.rerun_cell(),
            m.why
        );
    }
}

/// The evidence: every request of the median run, per series and tool.
fn requests_sent(s: &mut String, r: &Results) {
    let _ = writeln!(s, "\n## Requests sent (median run)\n");
    let _ = writeln!(
        s,
        "Guids are shown as `{{id}}`; the status is tenant-sim's answer.\n"
    );
    let asf = r.chain.add_sync_filter.as_ref();
    let lag_title = format!(
        "Fresh chain with {:.0} ms replication lag",
        longest_lag_ms(r)
    );
    for (title, series) in [
        ("Fresh chain", r.chain.fresh.as_ref()),
        ("Re-run", r.chain.rerun.as_ref()),
        (lag_title.as_str(), lag_series(r)),
        ("add-sync-filter, fresh", asf.map(|a| &a.fresh)),
        ("add-sync-filter, re-run", asf.map(|a| &a.rerun)),
    ] {
        let Some(series) = series else {
            continue;
        };
        let _ = writeln!(s, "<details><summary>{title}</summary>\n");
        for t in crate::TOOLS {
            let Some(v) = series.tool(t) else { continue };
            let _ = writeln!(s, "**{t}** ({})\n", cell_counts(Some(v)));
            let _ = writeln!(s, "```");
            for line in &v.requests {
                let _ = writeln!(s, "{line}");
            }
            let _ = writeln!(s, "```\n");
        }
        if !series.unattributed_requests.is_empty() {
            let _ = writeln!(
                s,
                "Requests without a tool's user agent: {}\n",
                serde_json::to_string(&series.unattributed_requests).unwrap_or_default()
            );
        }
        let _ = writeln!(s, "</details>\n");
    }
}

/// The release-profile sweep: size, start-up and re-check time per profile.
fn release_profile(s: &mut String, r: &Results) {
    let _ = writeln!(s, "## Release profile\n");
    if r.variants.is_empty() {
        let _ = writeln!(
            s,
            "No sweep recorded yet: run `scripts/bench.sh --profiles`."
        );
        return;
    }
    let _ = writeln!(
        s,
        "Measured on {} with `scripts/bench.sh --profiles` (each profile built into its own target directory with `cargo build --config profile.release.*=…`; every build's commands interleaved round-robin with one `/bin/true`, so all see the same load; \"re-check\" is the tool run alone on a finished setup made by the main build, median of the runs, builds interleaved too). The root `Cargo.toml` keeps the winner.\n",
        r.variants_date.as_deref().unwrap_or("an earlier run")
    );
    let _ = writeln!(
        s,
        "| profile | settings | register-app size | verify-sync size | `--help` over `/bin/true` (worst) | missing value over `/bin/true` (worst) | register-app re-check ms (CPU ms) | verify-sync re-check ms (CPU ms) |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|");
    for v in &r.variants {
        let rows = startup_over(&v.startup);
        let worst_help = rows.iter().map(|x| x.help_ms).fold(f64::NAN, f64::max);
        let worst_fail = rows.iter().map(|x| x.fail_fast_ms).fold(f64::NAN, f64::max);
        let size = |t: &str| {
            v.binary_bytes
                .get(t)
                .map(|b| format!("{:.2} MB", mb(*b as f64)))
                .unwrap_or_else(|| "–".into())
        };
        let work = |t: &str| match v.recheck.get(t) {
            Some(w) if w.wall_ms_median.is_finite() && w.cpu_ms_median.is_finite() => {
                format!("{:.1} ({:.1})", w.wall_ms_median, w.cpu_ms_median)
            }
            _ => "–".into(),
        };
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {} | {:+.2} ms | {:+.2} ms | {} | {} |",
            v.name,
            v.profile,
            size("register-app"),
            size("verify-sync"),
            worst_help,
            worst_fail,
            work("register-app"),
            work("verify-sync"),
        );
    }
}

fn how_to_rerun(s: &mut String) {
    let _ = writeln!(s, "\n## How to re-run\n");
    let _ = writeln!(
        s,
        "`scripts/bench.sh` (release build, then about a minute of measuring); `scripts/bench.sh --profiles` also rebuilds the tools under several release profiles and records the comparison above (slow: one full build per profile). \
Options of the measuring binary: `target/release/bench --help`; a before/after comparison of the replication waits copies the earlier build's binaries aside and passes \
`-- --baseline before=DIR --baseline-note TEXT`, so both builds' lag runs take turns. The targets are reported here, never asserted by tests."
    );
}

// ---- cells --------------------------------------------------------------------------------------

/// Reads / writes / sign-ins, or "–" for a tool that did not run.
fn cell_counts(run: Option<&ToolRun>) -> String {
    match run {
        Some(v) => format!("{} / {} / {}", v.reads, v.writes, v.login),
        None => "–".into(),
    }
}

fn cpu_ms(run: Option<&ToolRun>) -> f64 {
    run.map_or(f64::NAN, |r| r.cpu_ms_median)
}

/// Milliseconds, rounded, comma-separated; "–" when there is no series.
fn fmt_list(v: Option<&[f64]>) -> String {
    v.map(|a| {
        a.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    })
    .unwrap_or_else(|| "–".into())
}

/// A tool's exit codes over the runs; "–" when it did not run.
fn fmt_codes(run: Option<&ToolRun>) -> String {
    run.map_or_else(|| "–".into(), |r| codes(&r.exit_codes))
}

/// One code when every run ended alike, else each run's.
fn codes(codes: &[i32]) -> String {
    match codes.first() {
        Some(first) if codes.iter().all(|c| c == first) => first.to_string(),
        _ => codes
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}
