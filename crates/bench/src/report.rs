//! The figures as `benchmarks.json` (for comparing runs) and `benchmarks.md` (for people), with
//! every target of issue 7 marked met or missed.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::minimum::{self, Minimum};
use crate::target;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}
fn i(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}
fn mb(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}
fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

/// Adds `targets` (and the minimums) to the results, then writes both files.
pub fn write(out_dir: &Path, results: &Value) -> Result<(), String> {
    let mut results = results.clone();
    carry_over_sweep(out_dir, &mut results);
    let targets = evaluate(&results);
    results["targets"] = targets;
    results["minimum"] = json!(
        minimum::TABLE
            .iter()
            .map(|m| (m.tool.to_string(), m.to_json()))
            .collect::<serde_json::Map<_, _>>()
    );
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let json_path = out_dir.join("benchmarks.json");
    let text = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text + "\n").map_err(|e| format!("{}: {e}", json_path.display()))?;
    let md_path = out_dir.join("benchmarks.md");
    std::fs::write(&md_path, markdown(&results))
        .map_err(|e| format!("{}: {e}", md_path.display()))?;
    crate::say(&format!(
        "wrote {} and {}",
        md_path.display(),
        json_path.display()
    ));
    for t in results["targets"].as_array().into_iter().flatten() {
        crate::say(&format!(
            "{:<58} {:>24}  {}",
            t["name"].as_str().unwrap_or(""),
            t["figure"].as_str().unwrap_or(""),
            t["result"].as_str().unwrap_or("")
        ));
    }
    Ok(())
}

/// A run without `--variant` keeps the last release-profile sweep (it takes a build per
/// profile, so `scripts/bench.sh` only redoes it with `--profiles`).
fn carry_over_sweep(out_dir: &Path, results: &mut Value) {
    if results["variants"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        results["variants_date"] = results["date"].clone();
        return;
    }
    let old = std::fs::read(out_dir.join("benchmarks.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    if let Some(old) = old {
        if old["variants"].as_array().is_some_and(|a| !a.is_empty()) {
            results["variants"] = old["variants"].clone();
            results["variants_date"] = old["variants_date"].clone();
        }
    }
}

fn startup_rows(r: &Value) -> Vec<(String, f64, f64, i64)> {
    // (tool, help over true, fail-fast over true, fail-fast exit code)
    let mut out = Vec::new();
    if let Some(m) = r["startup"]["tools"].as_object() {
        for t in crate::TOOLS {
            if let Some(v) = m.get(t) {
                out.push((
                    t.to_string(),
                    f(&v["help"]["over_true_ms"]),
                    f(&v["fail_fast"]["over_true_ms"]),
                    i(&v["fail_fast"]["exit_code"]),
                ));
            }
        }
    }
    out
}

fn total(v: &Value) -> i64 {
    i(&v["reads"]) + i(&v["writes"])
}

fn evaluate(r: &Value) -> Value {
    let mut out = Vec::new();
    let mut push = |name: &str, figure: String, limit: String, ok: Option<bool>, note: String| {
        out.push(json!({"name": name, "figure": figure, "limit": limit, "met": ok, "result": verdict(ok), "note": note}));
    };

    let rows = startup_rows(r);
    let worst_help = rows.iter().max_by(|a, b| a.1.total_cmp(&b.1)).cloned();
    let worst_fail = rows.iter().max_by(|a, b| a.2.total_cmp(&b.2)).cloned();
    let floor = f(&r["startup"]["true_median_ms"]);
    if let Some((t, d, ..)) = worst_help {
        push(
            "start-up, --help: median over /bin/true (worst tool)",
            format!("{d:+.2} ms ({t})"),
            format!("≤ +{:.0} ms", target::STARTUP_OVER_TRUE_MS),
            Some(d <= target::STARTUP_OVER_TRUE_MS),
            format!("/bin/true median {floor:.2} ms"),
        );
    }
    if let Some((t, _, d, _)) = worst_fail {
        let bad_codes: Vec<String> = rows
            .iter()
            .filter(|x| x.3 != 2)
            .map(|x| format!("{} exit {}", x.0, x.3))
            .collect();
        push(
            "start-up, missing value (exit 2): median over /bin/true (worst tool)",
            format!("{d:+.2} ms ({t})"),
            format!("≤ +{:.0} ms", target::STARTUP_OVER_TRUE_MS),
            Some(d <= target::STARTUP_OVER_TRUE_MS && bad_codes.is_empty()),
            if bad_codes.is_empty() {
                "every tool exits 2 without sending a request".into()
            } else {
                format!("not exit 2: {}", bad_codes.join(", "))
            },
        );
    }

    let chain = &r["chain"];
    let n_tools = chain["tools"].as_array().map_or(0, Vec::len);
    let complete = n_tools == crate::CHAIN.len();
    let fresh_ok = chain["fresh"]["all_exit_0"].as_bool().unwrap_or(false);
    let fresh = f(&chain["fresh"]["wall_ms_median"]);
    push(
        "fresh chain of eight tools: wall time (median)",
        format!("{fresh:.0} ms"),
        format!("< {:.0} ms", target::FRESH_CHAIN_MS),
        (complete && fresh_ok)
            .then_some(fresh < target::FRESH_CHAIN_MS)
            .or(Some(false)),
        chain_note(complete, fresh_ok, n_tools),
    );
    let rerun_ok = chain["rerun"]["all_exit_0"].as_bool().unwrap_or(false);
    let rerun = f(&chain["rerun"]["wall_ms_median"]);
    push(
        "re-run of the chain on the finished setup: wall time (median)",
        format!("{rerun:.0} ms"),
        format!("< {:.0} ms", target::RERUN_CHAIN_MS),
        (complete && rerun_ok)
            .then_some(rerun < target::RERUN_CHAIN_MS)
            .or(Some(false)),
        chain_note(complete, rerun_ok, n_tools),
    );
    let rerun_writes: i64 = chain["rerun"]["tools"]
        .as_object()
        .map(|m| m.values().map(|v| i(&v["writes"])).sum())
        .unwrap_or(0);
    let writers: Vec<String> = chain["rerun"]["tools"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| i(&v["writes"]) > 0)
                .map(|(k, v)| format!("{k} {}", i(&v["writes"])))
                .collect()
        })
        .unwrap_or_default();
    push(
        "re-run writes",
        rerun_writes.to_string(),
        "0".into(),
        Some(rerun_writes == 0 && complete && rerun_ok),
        if writers.is_empty() {
            String::new()
        } else {
            writers.join(", ")
        },
    );
    let mut over = Vec::new();
    let mut worst_extra = i64::MIN;
    for m in minimum::TABLE
        .iter()
        .filter(|m| crate::CHAIN.contains(&m.tool))
    {
        let got = &chain["fresh"]["tools"][m.tool];
        if got.is_null() {
            over.push(format!("{} not run", m.tool));
            continue;
        }
        let extra = total(got) - m.fresh_api();
        worst_extra = worst_extra.max(extra);
        if extra > target::EXTRA_REQUESTS_PER_TOOL {
            over.push(format!("{} +{extra}", m.tool));
        }
    }
    push(
        "fresh requests per tool: over the documented minimum (worst tool)",
        format!("+{}", worst_extra.max(0)),
        format!("≤ +{}", target::EXTRA_REQUESTS_PER_TOOL),
        Some(over.is_empty()),
        if over.is_empty() {
            "API requests (reads + writes); sign-ins are counted separately".into()
        } else {
            format!("over: {}", over.join(", "))
        },
    );
    // Issue 14: with replication lag L the chain finishes within waits × L + 150 ms per wait.
    let waits = target::DEPENDENT_WAITS as f64;
    let longest = f(&r["runs"]["lag_ms"]);
    for l in r["lags"].as_array().into_iter().flatten() {
        let lag_ms = f(&l["lag_ms"]);
        let series = &l["builds"]["this"]["fresh"];
        let ok = series["all_exit_0"].as_bool().unwrap_or(false);
        let wall = f(&series["wall_ms_median"]);
        let limit = waits * (lag_ms + target::PER_WAIT_MS);
        let over = wall - waits * lag_ms;
        push(
            &format!("fresh chain with {lag_ms:.0} ms replication lag: wall time (median)"),
            format!(
                "{wall:.0} ms ({waits:.0} × lag + {over:.0} ms, {:.0} ms per wait)",
                over / waits
            ),
            format!(
                "≤ {limit:.0} ms ({waits:.0} waits × (lag + {:.0} ms))",
                target::PER_WAIT_MS
            ),
            (complete && ok).then_some(wall <= limit).or(Some(false)),
            if lag_ms == longest {
                lag_note(r, series, lag_ms, complete, ok, n_tools)
            } else {
                let base = chain_note(complete, ok, n_tools);
                let w = waited(r, series, lag_ms).len();
                [base, format!("{w} tools waited ≥ lag/2")]
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        );
    }
    let mut rss_worst = (String::new(), 0u64);
    for t in crate::TOOLS {
        let mut kib = 0;
        for series in [&chain["fresh"], &chain["rerun"], &r["lag"]["fresh"]] {
            kib = kib.max(series["tools"][t]["maxrss_kib"].as_u64().unwrap_or(0));
        }
        for series in [
            &chain["add_sync_filter"]["fresh"],
            &chain["add_sync_filter"]["rerun"],
        ] {
            kib = kib.max(series["tools"][t]["maxrss_kib"].as_u64().unwrap_or(0));
        }
        if kib > rss_worst.1 {
            rss_worst = (t.to_string(), kib);
        }
    }
    let rss_mb = rss_worst.1 as f64 / 1024.0;
    push(
        "peak RSS of a tool in the chain (worst tool)",
        format!("{rss_mb:.1} MB ({})", rss_worst.0),
        format!("< {:.0} MB", target::RSS_MB),
        (rss_worst.1 > 0).then_some(rss_mb < target::RSS_MB),
        String::new(),
    );
    let mut size_worst = (String::new(), 0u64);
    for t in crate::TOOLS {
        let b = r["binary_bytes"][t].as_u64().unwrap_or(0);
        if b > size_worst.1 {
            size_worst = (t.to_string(), b);
        }
    }
    let size_mb = mb(size_worst.1 as f64);
    let all_built = r["not_built"].as_array().is_none_or(Vec::is_empty);
    push(
        "release binary size (largest tool)",
        format!("{size_mb:.2} MB ({})", size_worst.0),
        format!("< {:.0} MB", target::BINARY_MB),
        (size_worst.1 > 0).then_some(size_mb < target::BINARY_MB && all_built),
        if all_built {
            String::new()
        } else {
            "some tools are not built".into()
        },
    );
    Value::Array(out)
}

/// The tools of a lag run whose own time grew by at least half the lag over the fresh run
/// without lag: the measured replication waits, with how long each took.
fn waited(r: &Value, series: &Value, lag_ms: f64) -> Vec<(&'static str, f64)> {
    if lag_ms <= 0.0 {
        return Vec::new();
    }
    crate::CHAIN
        .iter()
        .map(|t| {
            let wait = f(&series["tools"][t]["own_ms_median"])
                - f(&r["chain"]["fresh"]["tools"][t]["own_ms_median"]);
            (*t, wait)
        })
        .filter(|(_, w)| *w >= lag_ms / 2.0)
        .collect()
}

/// Where a lag run's time went: each tool's wait (its own time with lag minus without), its
/// polls that were answered "not yet", and the checks verify-sync failed.
fn lag_note(r: &Value, series: &Value, lag_ms: f64, complete: bool, ok: bool, n: usize) -> String {
    let mut parts = Vec::new();
    let base = chain_note(complete, ok, n);
    if !base.is_empty() {
        parts.push(base);
    }
    let waits = waited(r, series, lag_ms);
    if !waits.is_empty() {
        // Each replication wait starts only when the object it waits for was written, and every
        // write depends on the one before (app → service principal → grant; policy →
        // assignment → verify-sync's read), so the waits add up: the honest measure of the
        // polling is what each wait costs beyond the lag itself.
        let total: f64 = waits.iter().map(|w| w.1).sum();
        let n = waits.len() as f64;
        parts.push(format!(
            "{} tools waited; beyond {} × lag their waits cost {:.0} ms in all ({:.0} ms each)",
            waits.len(),
            waits.len(),
            total - lag_ms * n,
            (total - lag_ms * n) / n
        ));
        parts.push(format!(
            "waiting: {}",
            waits
                .iter()
                .map(|(t, w)| format!(
                    "{t} +{w:.0} ms ({} answers ≥ 400)",
                    i(&series["tools"][t]["errors"])
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for t in crate::CHAIN {
        let l = &series["tools"][t];
        for line in l["stderr"].as_array().into_iter().flatten() {
            let line = line.as_str().unwrap_or("");
            if line.contains("[FAIL]") || line.contains(": error:") {
                parts.push(format!("`{}`", line.trim()));
            }
        }
    }
    parts.join("; ")
}

fn chain_note(complete: bool, ok: bool, n: usize) -> String {
    match (complete, ok) {
        (true, true) => String::new(),
        (false, _) => format!("only {n} of the eight tools are built"),
        (true, false) => "a tool exited non-zero (see the exit codes below)".into(),
    }
}

fn cell_counts(v: &Value) -> String {
    if v.is_null() {
        return "–".into();
    }
    format!(
        "{} / {} / {}",
        i(&v["reads"]),
        i(&v["writes"]),
        i(&v["login"])
    )
}

fn markdown(r: &Value) -> String {
    let mut s = String::new();
    let m = &r["machine"];
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(
        s,
        "Written by `scripts/bench.sh` (the `bench` crate, issues 7 and 14) — do not edit by hand; re-run it.\n"
    );
    let _ = writeln!(s, "- Date: {}", r["date"].as_str().unwrap_or(""));
    let _ = writeln!(
        s,
        "- Machine: {} CPU(s) (`nproc`), {}, Linux {}, load average (1, 5, 15 min) at start {}",
        m["nproc"],
        m["cpu"].as_str().unwrap_or(""),
        m["kernel"].as_str().unwrap_or(""),
        m["loadavg_at_start"].as_str().unwrap_or("")
    );
    let _ = writeln!(s, "- Toolchain: {}", m["rustc"].as_str().unwrap_or(""));
    let _ = writeln!(s, "- Commit: {}", r["git"].as_str().unwrap_or(""));
    let profile = r["profile"].as_str().unwrap_or("");
    if !profile.is_empty() {
        let _ = writeln!(s, "- Release profile: `{profile}`");
    }
    let note = r["build_note"].as_str().unwrap_or("");
    if !note.is_empty() {
        let _ = writeln!(s, "- Build: {note}");
    }
    let runs = &r["runs"];
    let _ = writeln!(
        s,
        "- Runs: start-up {} per command (after 3 warm-up rounds), chain {} fresh + {} re-runs, {} per build at each replication lag ({} ms), fleet check {}; medians reported. The bench itself took {:.0} s.",
        runs["startup"],
        runs["chain"],
        runs["chain"],
        runs["lag"],
        runs["lags_ms"]
            .as_array()
            .map(|a| a
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default(),
        runs["fleet"],
        f(&r["bench_seconds"])
    );
    let samples: Vec<f64> = r["loadavg_1min_samples"]
        .as_array()
        .map(|a| a.iter().map(f).filter(|x| x.is_finite()).collect())
        .unwrap_or_default();
    let nproc = r["machine"]["nproc"].as_f64().unwrap_or(1.0).max(1.0);
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
    if let Some(note) = r["load_note"].as_str().filter(|n| !n.is_empty()) {
        let _ = writeln!(s, "- Load seen around this run: {note}");
    }
    if let Some(nb) = r["not_built"].as_array().filter(|a| !a.is_empty()) {
        let _ = writeln!(
            s,
            "- **Not built, so not measured:** {}",
            nb.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    let _ = writeln!(s, "\n## Targets\n");
    let _ = writeln!(s, "| target | figure | limit | result | note |");
    let _ = writeln!(s, "|---|---:|---:|---|---|");
    for t in r["targets"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            t["name"].as_str().unwrap_or(""),
            t["figure"].as_str().unwrap_or(""),
            t["limit"].as_str().unwrap_or(""),
            t["result"].as_str().unwrap_or(""),
            t["note"].as_str().unwrap_or("")
        );
    }

    // ---- start-up
    let floor = f(&r["startup"]["true_median_ms"]);
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
    if let Some(tools) = r["startup"]["tools"].as_object() {
        for t in crate::TOOLS {
            let Some(v) = tools.get(t) else { continue };
            let _ = writeln!(
                s,
                "| {t} | {:.2} | {:+.2} | {:.2} | {:+.2} | {} | {:.1} MB |",
                f(&v["help"]["median_ms"]),
                f(&v["help"]["over_true_ms"]),
                f(&v["fail_fast"]["median_ms"]),
                f(&v["fail_fast"]["over_true_ms"]),
                v["fail_fast"]["exit_code"],
                v["fail_fast"]["maxrss_kib"].as_f64().unwrap_or(0.0) / 1024.0
            );
        }
    }

    if let Some(audit) = r["startup"]["audit"].as_object().filter(|a| !a.is_empty()) {
        let clean: Vec<&String> = audit
            .iter()
            .filter(|(_, a)| {
                i(&a["sockets"]) == 0
                    && i(&a["threads"]) == 0
                    && a["files"].as_array().is_none_or(Vec::is_empty)
            })
            .map(|(k, _)| k)
            .collect();
        let _ = writeln!(
            s,
            "\nWork before the first request (`strace -f` of the missing-value run): {} of {} tools open no file beyond the dynamic loader's, create no socket and start no thread (no token cache read, no TLS or HTTP client set-up, no async runtime threads).",
            clean.len(),
            audit.len()
        );
        for (t, a) in audit.iter().filter(|(k, _)| !clean.contains(k)) {
            let _ = writeln!(
                s,
                "- {t}: files {}, sockets {}, threads {}",
                a["files"], a["sockets"], a["threads"]
            );
        }
    }

    // ---- the chain
    let chain = &r["chain"];
    let lag = &r["lag"];
    let lag_ms = f(&runs["lag_ms"]);
    let _ = writeln!(s, "\n## The chain\n");
    let _ = writeln!(
        s,
        "`register-app | grant-consent | make-secret | set-hrd-policy | assign-role | configure-marketo | publish-customizations --if-changed | verify-sync`, \
started at once as a shell pipeline against `tenant-sim --federated` (so set-hrd-policy does its full work), on a tenant reset before each fresh run (`POST /_sim/reset`). \
The re-run feeds the fresh run's final document to the same pipeline. Requests come from tenant-sim's log (`GET /_sim/requests`), attributed by the user agent `marketo-s2s/<version> <tool>`: \
**reads** are GET, **writes** every other method to Graph or Dataverse, **sign-ins** requests to the token endpoint. \
\"own ms\" is the time from the previous tool's exit to this tool's exit (a tool can only start its work once its stdin is complete); \"CPU ms\" its user + system time from `wait4`; the rest is waiting for tenant-sim.\n"
    );
    let _ = writeln!(
        s,
        "| | fresh | re-run | with {lag_ms:.0} ms lag |\n|---|---:|---:|---:|\n| wall time, median | **{:.0} ms** | **{:.0} ms** | **{:.0} ms** (lag + {:.0} ms) |\n| all runs | {} | {} | {} |\n| every tool exit 0 | {} | {} | {} |\n",
        f(&chain["fresh"]["wall_ms_median"]),
        f(&chain["rerun"]["wall_ms_median"]),
        f(&lag["fresh"]["wall_ms_median"]),
        f(&lag["fresh"]["wall_ms_median"]) - lag_ms,
        fmt_list(&chain["fresh"]["wall_ms"]),
        fmt_list(&chain["rerun"]["wall_ms"]),
        fmt_list(&lag["fresh"]["wall_ms"]),
        chain["fresh"]["all_exit_0"],
        chain["rerun"]["all_exit_0"],
        lag["fresh"]["all_exit_0"],
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
        let fr = &chain["fresh"]["tools"][t];
        let rr = &chain["rerun"]["tools"][t];
        let lr = &lag["fresh"]["tools"][t];
        let min = minimum::get(t);
        let extra = min.map(|m| {
            if fr.is_null() {
                "–".to_string()
            } else {
                format!("{:+}", total(fr) - m.fresh_api())
            }
        });
        let _ = writeln!(
            s,
            "| {t} | {} | {} | {} | {:.1} ({:.1}) | {} | {} | {:.1} ({:.1}) | {} | {:.1} | {}; {}; {} |",
            cell_counts(fr),
            min.map(Minimum::fresh_cell).unwrap_or_default(),
            extra.unwrap_or_default(),
            f(&fr["own_ms_median"]),
            f(&fr["cpu_ms_median"]),
            cell_counts(rr),
            min.map(Minimum::rerun_cell).unwrap_or_default(),
            f(&rr["own_ms_median"]),
            f(&rr["cpu_ms_median"]),
            cell_counts(lr),
            f(&lr["own_ms_median"]),
            fmt_codes(&fr["exit_codes"]),
            fmt_codes(&rr["exit_codes"]),
            fmt_codes(&lr["exit_codes"]),
        );
    }
    let asf = &chain["add_sync_filter"];
    if !asf.is_null() {
        let fr = &asf["fresh"]["tools"]["add-sync-filter"];
        let rr = &asf["rerun"]["tools"]["add-sync-filter"];
        let min = minimum::get("add-sync-filter");
        let _ = writeln!(
            s,
            "| add-sync-filter (optional; run alone after the chain) | {} | {} | {} | {:.1} | {} | {} | {:.1} | – | – | {}; {}; – |",
            cell_counts(fr),
            min.map(Minimum::fresh_cell).unwrap_or_default(),
            min.map(|m| format!("{:+}", total(fr) - m.fresh_api()))
                .unwrap_or_default(),
            f(&fr["own_ms_median"]),
            cell_counts(rr),
            min.map(Minimum::rerun_cell).unwrap_or_default(),
            f(&rr["own_ms_median"]),
            fmt_codes(&fr["exit_codes"]),
            fmt_codes(&rr["exit_codes"]),
        );
    }

    // ---- footprint
    replication_section(&mut s, r);
    fleet_section(&mut s, r);

    let _ = writeln!(s, "\n## Footprint\n");
    let _ = writeln!(
        s,
        "Peak RSS is `ru_maxrss` from `wait4` for each tool process, the largest over every chain run (fresh, re-run, lag); binary size is the release file.\n"
    );
    let _ = writeln!(s, "| binary | size | peak RSS in the chain |");
    let _ = writeln!(s, "|---|---:|---:|");
    for t in crate::TOOLS.iter().chain(["tenant-sim"].iter()) {
        let b = r["binary_bytes"][*t].as_f64();
        let mut kib = 0u64;
        for series in [
            &chain["fresh"],
            &chain["rerun"],
            &lag["fresh"],
            &chain["add_sync_filter"]["fresh"],
            &chain["add_sync_filter"]["rerun"],
        ] {
            kib = kib.max(series["tools"][*t]["maxrss_kib"].as_u64().unwrap_or(0));
        }
        let _ = writeln!(
            s,
            "| {t} | {} | {} |",
            b.map(|b| format!("{:.2} MB", mb(b)))
                .unwrap_or_else(|| "not built".into()),
            if kib > 0 {
                format!("{:.1} MB", kib as f64 / 1024.0)
            } else {
                "–".into()
            }
        );
    }

    // ---- minimums
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

    // ---- evidence
    let _ = writeln!(s, "\n## Requests sent (median run)\n");
    let _ = writeln!(
        s,
        "Guids are shown as `{{id}}`; the status is tenant-sim's answer.\n"
    );
    for (title, series) in [
        ("Fresh chain", &chain["fresh"]),
        ("Re-run", &chain["rerun"]),
        (
            &*format!("Fresh chain with {lag_ms:.0} ms replication lag"),
            &lag["fresh"],
        ),
        ("add-sync-filter, fresh", &asf["fresh"]),
        ("add-sync-filter, re-run", &asf["rerun"]),
    ] {
        let Some(tools) = series["tools"].as_object() else {
            continue;
        };
        let _ = writeln!(s, "<details><summary>{title}</summary>\n");
        for t in crate::TOOLS {
            let Some(v) = tools.get(t) else { continue };
            let _ = writeln!(s, "**{t}** ({})\n", cell_counts(v));
            let _ = writeln!(s, "```");
            for line in v["requests"].as_array().into_iter().flatten() {
                let _ = writeln!(s, "{}", line.as_str().unwrap_or(""));
            }
            let _ = writeln!(s, "```\n");
        }
        if let Some(other) = series["unattributed_requests"]
            .as_array()
            .filter(|a| !a.is_empty())
        {
            let _ = writeln!(
                s,
                "Requests without a tool's user agent: {}\n",
                Value::Array(other.clone())
            );
        }
        let _ = writeln!(s, "</details>\n");
    }

    // ---- profile sweep
    let _ = writeln!(s, "## Release profile\n");
    if let Some(vs) = r["variants"].as_array().filter(|a| !a.is_empty()) {
        let _ = writeln!(
            s,
            "Measured on {} with `scripts/bench.sh --profiles` (each profile built into its own target directory with `cargo build --config profile.release.*=…`; every build's commands interleaved round-robin with one `/bin/true`, so all see the same load; \"re-check\" is the tool run alone on a finished setup made by the main build, median of the runs, builds interleaved too). The root `Cargo.toml` keeps the winner.\n",
            r["variants_date"].as_str().unwrap_or("an earlier run")
        );
        let _ = writeln!(
            s,
            "| profile | settings | register-app size | verify-sync size | `--help` over `/bin/true` (worst) | missing value over `/bin/true` (worst) | register-app re-check ms (CPU ms) | verify-sync re-check ms (CPU ms) |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|");
        for v in vs {
            let rows = startup_rows(&json!({"startup": v["startup"]}));
            let worst = |k: usize| {
                rows.iter()
                    .map(|x| if k == 1 { x.1 } else { x.2 })
                    .fold(f64::NAN, f64::max)
            };
            let size = |t: &str| {
                v["binary_bytes"][t]
                    .as_f64()
                    .map(|b| format!("{:.2} MB", mb(b)))
                    .unwrap_or_else(|| "–".into())
            };
            let work = |t: &str| {
                let w = &v["recheck"][t];
                match (w["wall_ms_median"].as_f64(), w["cpu_ms_median"].as_f64()) {
                    (Some(a), Some(c)) => format!("{a:.1} ({c:.1})"),
                    _ => "–".into(),
                }
            };
            let _ = writeln!(
                s,
                "| {} | `{}` | {} | {} | {:+.2} ms | {:+.2} ms | {} | {} |",
                v["name"].as_str().unwrap_or(""),
                v["profile"].as_str().unwrap_or(""),
                size("register-app"),
                size("verify-sync"),
                worst(1),
                worst(2),
                work("register-app"),
                work("verify-sync"),
            );
        }
    } else {
        let _ = writeln!(
            s,
            "No sweep recorded yet: run `scripts/bench.sh --profiles`."
        );
    }

    let _ = writeln!(s, "\n## How to re-run\n");
    let _ = writeln!(
        s,
        "`scripts/bench.sh` (release build, then about a minute of measuring); `scripts/bench.sh --profiles` also rebuilds the tools under several release profiles and records the comparison above (slow: one full build per profile). \
Options of the measuring binary: `target/release/bench --help`; a before/after comparison of the replication waits copies the earlier build's binaries aside and passes \
`-- --baseline before=DIR --baseline-note TEXT`, so both builds' lag runs take turns. The targets are reported here, never asserted by tests."
    );
    s
}

/// Issue 14's target at every lag, this build beside the baseline when there is one.
fn replication_section(s: &mut String, r: &Value) {
    let Some(lags) = r["lags"].as_array().filter(|a| !a.is_empty()) else {
        return;
    };
    let waits = target::DEPENDENT_WAITS as f64;
    let base = r["baseline"]["name"].as_str();
    let _ = writeln!(s, "\n## Replication waits\n");
    let _ = writeln!(
        s,
        "The fresh chain against `tenant-sim --federated --replication-lag-ms L`, which hides every new directory object from reads for L. \
The chain has **{waits:.0} dependent waits**, each needing the object the step before wrote: app → service principal (register-app, the `NoBackingApplicationObject` race), \
service principal → grant (grant-consent), policy → assignment (set-hrd-policy), assignment → verify-sync's read. So the waits stack, and the target (issue 14) is \
**{waits:.0} × L + {waits:.0} × {:.0} ms**. \"over\" is the wall time beyond {waits:.0} × L, per wait (it includes the chain's own work, about a quarter of the fresh chain's time per wait). \
\"tools that waited\" counts the tools whose own time grew by at least L/2 over the run without lag (measured, not assumed). \
Requests are the chain's API requests (reads + writes) of the median run, sign-ins apart.{}\n",
        target::PER_WAIT_MS,
        base.map(|b| format!(
            " \"{b}\" is the baseline build{}, run with the same tenant-sim, taking turns with this build run by run so both see the same load.",
            r["baseline"]["note"]
                .as_str()
                .filter(|n| !n.is_empty())
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
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
        head.push_str(&format!(" | {}", cols(b)));
        rule.push_str("---:|---|---:|---:|---:|");
    }
    head.push_str(" | result |");
    rule.push_str("---|");
    let _ = writeln!(s, "{head}\n{rule}");
    let api = |series: &Value| -> (i64, i64) {
        series["tools"]
            .as_object()
            .map(|m| {
                m.values()
                    .fold((0, 0), |a, v| (a.0 + total(v), a.1 + i(&v["login"])))
            })
            .unwrap_or((0, 0))
    };
    for l in lags {
        let lag_ms = f(&l["lag_ms"]);
        let limit = waits * (lag_ms + target::PER_WAIT_MS);
        let mut row = format!("| {lag_ms:.0} ms | ≤ {limit:.0} ms |");
        let mut names = vec!["this"];
        names.extend(base);
        let mut met = None;
        for name in names {
            let series = &l["builds"][name]["fresh"];
            let wall = f(&series["wall_ms_median"]);
            let (req, login) = api(series);
            let ok = series["all_exit_0"].as_bool().unwrap_or(false);
            let _ = write!(
                row,
                " **{wall:.0} ms**{} | {} | {:+.0} ms | {} | {req} ({login}) |",
                if ok { "" } else { " (a tool failed)" },
                fmt_list(&series["wall_ms"]),
                (wall - waits * lag_ms) / waits,
                waited(r, series, lag_ms).len(),
            );
            if name == "this" {
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
    let longest = f(&r["runs"]["lag_ms"]);
    let Some(l) = lags.iter().find(|l| f(&l["lag_ms"]) == longest) else {
        return;
    };
    let _ = writeln!(
        s,
        "\nAt {longest:.0} ms lag, per tool: own time, and API requests / answers ≥ 400 (the polls answered \"not yet\"):\n"
    );
    let mut names = vec!["this"];
    names.extend(base);
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
            let v = &l["builds"][n]["fresh"]["tools"][t];
            let _ = write!(
                row,
                " {:.0} | {} / {} |",
                f(&v["own_ms_median"]),
                total(v),
                i(&v["errors"])
            );
        }
        let _ = writeln!(s, "{row}");
    }
}

/// `verify-sync --fleet` over many state files.
fn fleet_section(s: &mut String, r: &Value) {
    let fl = &r["fleet"];
    if fl.is_null() {
        return;
    }
    let files = f(&fl["files"]).max(1.0);
    let _ = writeln!(s, "\n## Fleet check\n");
    let _ = writeln!(
        s,
        "`verify-sync --fleet FILE...` (issue 14) over **{files:.0} state files** against one `tenant-sim --federated` (no lag), `--jobs` at its default. \
The files are copies of one finished setup's document, each in its own directory with its secret file: one tenant and one org hold only one working Marketo connection, \
so distinct setups would fail each other's \"Marketo User\" check; what is measured is the fleet mode itself (concurrency, sign-ins, requests per file). \
Requests are every request tenant-sim logged during the run.\n"
    );
    let med = f(&fl["wall_ms_median"]);
    let ok_all = fl["ok_lines"]
        .as_array()
        .is_some_and(|a| a.iter().all(|n| f(n) == files))
        && fl["exit_codes"]
            .as_array()
            .is_some_and(|a| a.iter().all(|c| i(c) == 0));
    let (reads, writes, login) = (i(&fl["reads"]), i(&fl["writes"]), i(&fl["login"]));
    let _ = writeln!(
        s,
        "| | figure |\n|---|---:|\n| wall time, median | **{med:.0} ms** ({:.1} ms per file) |\n| all runs | {} |\n| exit codes | {} |\n| files reported ok, per run | {} |\n| requests: reads / writes / sign-ins | {reads} / {writes} / {login}{} |\n| per file | {:.1} / {:.1} / {:.1} |\n| peak RSS | {:.1} MB |\n",
        med / files,
        fmt_list(&fl["wall_ms"]),
        fmt_codes(&fl["exit_codes"]),
        fmt_list(&fl["ok_lines"]),
        if fl["requests_vary"] == json!(true) {
            " (varied between runs)"
        } else {
            ""
        },
        reads as f64 / files,
        writes as f64 / files,
        login as f64 / files,
        f(&fl["maxrss_kib"]) / 1024.0
    );
    if !ok_all {
        let _ = writeln!(
            s,
            "**Not every file was reported ok** (stderr of the median run: `{}`).\n",
            fl["stderr"]
        );
    }
}

fn fmt_list(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| format!("{:.0}", f(x)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| "–".into())
}

fn fmt_codes(v: &Value) -> String {
    let Some(a) = v.as_array() else {
        return "–".into();
    };
    let codes: Vec<i64> = a.iter().map(i).collect();
    if codes.iter().all(|c| *c == codes[0]) && !codes.is_empty() {
        codes[0].to_string()
    } else {
        codes
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}
