//! The two runbooks agree (issue 23, item 5): the PowerShell runbook cannot run on these machines,
//! so it is kept a thin mirror of the bash one, and this test reads both and checks that they name
//! the same steps in the same order and pass the same tool flags to the same steps — and that
//! every one of those flags is one its tools accept (their `--help`).

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::*;

fn script(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts")
            .join(name),
    )
    .unwrap()
}

/// `--dynamics-url` → `DynamicsUrl`: the PowerShell spelling of a bash option.
fn pascal(option: &str) -> String {
    option
        .trim_start_matches('-')
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The words of a `NAME=(a b c)` bash array or a `$name = @("a","b")` PowerShell array.
fn array_words(text: &str, start: &str) -> Vec<String> {
    let rest = &text[text.find(start).unwrap_or_else(|| panic!("no {start}")) + start.len()..];
    let body = &rest[..rest.find(')').unwrap()];
    body.split([' ', ','])
        .map(|w| w.trim().trim_matches('"'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// One row of a pass-through table: (steps, tool flag, takes a value).
type Row = (String, String, bool);

/// The bash table: option → row.
fn bash_table(text: &str) -> Vec<(String, Row)> {
    let start = text.find("PASS_TABLE='").unwrap() + "PASS_TABLE='".len();
    let body = &text[start..start + text[start..].find('\'').unwrap()];
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(w.len(), 4, "{l}");
            (w[0].to_string(), (w[2].into(), w[3].into(), w[1] == "1"))
        })
        .collect()
}

/// The PowerShell table: parameter → row (a value unless the parameter is a [switch] or one of
/// PowerShell's own switches).
fn powershell_table(text: &str) -> Vec<(String, Row)> {
    let start = text.find("$PassTable = @(").unwrap();
    let body = &text[start..start + text[start..].find("\n)").unwrap()];
    body.lines()
        .filter(|l| l.trim().starts_with("@(\""))
        .map(|l| {
            // The quoted cells: "Param", "steps", "--flag".
            let w: Vec<String> = l
                .split('"')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect();
            assert_eq!(w.len(), 3, "{l}");
            let switch = matches!(w[0].as_str(), "Verbose" | "Debug")
                || text.contains(&format!("[switch]${}\n", w[0]))
                || text.contains(&format!("[switch]${},", w[0]));
            let declared = switch
                || text.contains(&format!("[string]${}", w[0]))
                || text.contains(&format!("[string[]]${}", w[0]));
            assert!(
                declared,
                "the PowerShell runbook does not declare -{}",
                w[0]
            );
            (w[0].clone(), (w[1].clone(), w[2].clone(), !switch))
        })
        .collect()
}

#[test]
fn the_bash_and_powershell_runbooks_name_the_same_steps_and_pass_the_same_flags() {
    let bash = script("setup-marketo-s2s.sh");
    let ps = script("Setup-MarketoS2S.ps1");

    let steps = array_words(&bash, "STEPS=(");
    assert_eq!(steps, array_words(&ps, "$steps = @("), "the steps differ");
    assert_eq!(steps.len(), 10);

    let b = bash_table(&bash);
    let p = powershell_table(&ps);
    let rows = |t: &[(String, Row)]| t.iter().map(|(_, r)| r.clone()).collect::<BTreeSet<Row>>();
    assert_eq!(rows(&b), rows(&p), "the tables pass different flags");
    // Every long bash option is the PowerShell parameter of the same name, with the same row.
    for (option, row) in &b {
        if !option.starts_with("--") {
            continue;
        }
        let name = pascal(option);
        let found = p.iter().find(|(n, _)| *n == name);
        assert_eq!(
            found.map(|(_, r)| r),
            Some(row),
            "{option} is -{name} in PowerShell, with the same steps and flag"
        );
    }
    // The runbooks' own options, too.
    for option in array_words(&bash, "OWN_OPTIONS=(") {
        if option == "--help" {
            continue;
        }
        assert!(
            ps.contains(&format!("${} ", pascal(&option)))
                || ps.contains(&format!("${}\n", pascal(&option)))
                || ps.contains(&format!("${},", pascal(&option))),
            "{option} has no PowerShell parameter"
        );
    }
    // What each runbook adds by itself to a step.
    for text in [&bash, &ps] {
        assert!(text.contains("--if-changed") && text.contains("--entity"));
    }

    // Every flag is one its steps accept.
    let dir = tempfile::tempdir().unwrap();
    let mut helps = std::collections::BTreeMap::new();
    for step in &steps {
        let mut c = bare_cmd(step, dir.path());
        c.arg("--help").env("COLUMNS", "200");
        helps.insert(
            step.clone(),
            Run::from_output(c.output().unwrap()).ok().stdout,
        );
    }
    for (steps_of, flag, takes) in rows(&b) {
        let targets: Vec<&String> = if steps_of == "*" {
            steps.iter().collect()
        } else {
            steps_of
                .split(',')
                .map(|s| steps.iter().find(|t| *t == s).expect("a step"))
                .collect()
        };
        for step in targets {
            let help = &helps[step];
            // -v and -q are "-v, --verbose" and "-q, --quiet"; -vv is -v given twice.
            let found = match flag.as_str() {
                "-vv" => help.contains("-v, --verbose"),
                short if short.len() == 2 => help.contains(&format!("{short}, --")),
                long => help.contains(&format!("{long} ")) || help.contains(&format!("{long}\n")),
            };
            assert!(found, "{step} --help has no {flag}");
            assert_eq!(
                help.contains(&format!("{flag} <")),
                takes,
                "{step}'s {flag}: the table says it takes a value: {takes}"
            );
        }
    }
}
