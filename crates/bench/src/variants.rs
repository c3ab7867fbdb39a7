//! Release-profile variants (`--variant NAME=DIR`): size, start-up and a re-check of a finished
//! setup for each build, measured round-robin across the builds so none is favoured by the
//! machine's load at the time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::results::{Recheck, Variant};
use crate::run::pipeline;
use crate::sim::Sim;
use crate::startup::startup_sets;
use crate::stats::median;
use crate::{Args, CHAIN, TOOLS};

/// Size, start-up and a re-check of a finished setup for each build, measured round-robin
/// across the builds so none is favoured by the machine's load at the time.
pub fn variants(
    sets: &[(String, PathBuf)],
    main_bin: &Path,
    sim_bin: &Path,
    work: &Path,
    args: &Args,
) -> Result<Vec<Variant>, String> {
    let dirs: Vec<PathBuf> = sets.iter().map(|s| s.1.clone()).collect();
    let st = startup_sets(&dirs, &TOOLS, work, args.startup_runs)?;
    let sim = Sim::start(
        sim_bin,
        &["--federated".into()],
        &work.join("sim-variants.log"),
    )?;
    let recheck = variant_recheck(&sim, main_bin, &dirs, work, args.chain_runs.max(11));
    sim.stop();
    let mut recheck = recheck?.into_iter();
    let mut st = st.into_iter();
    let mut out = Vec::new();
    for (name, dir) in sets {
        let desc = std::fs::read_to_string(dir.join("profile.txt")).unwrap_or_default();
        let sizes: BTreeMap<String, u64> = TOOLS
            .iter()
            .filter_map(|t| {
                std::fs::metadata(dir.join(t))
                    .ok()
                    .map(|m| (t.to_string(), m.len()))
            })
            .collect();
        out.push(Variant {
            name: name.clone(),
            profile: desc.trim().to_string(),
            binary_bytes: sizes,
            startup: st.next().unwrap_or_default(),
            recheck: recheck.next().unwrap_or_default(),
        });
    }
    Ok(out)
}

fn variant_recheck(
    sim: &Sim,
    main_bin: &Path,
    dirs: &[PathBuf],
    work: &Path,
    runs: usize,
) -> Result<Vec<BTreeMap<String, Recheck>>, String> {
    let setup_dir = work.join("variant-setup");
    let _ = std::fs::remove_dir_all(&setup_dir);
    std::fs::create_dir_all(&setup_dir).map_err(|e| e.to_string())?;
    sim.reset()?;
    let setup = pipeline(sim, main_bin, &CHAIN, b"", &setup_dir, "setup")?;
    if setup.tools.iter().any(|t| t.1 != 0) {
        return Err("the main build's chain failed, so the variants cannot be compared".into());
    }
    // [dir][tool] -> (walls, cpus, codes)
    type Samples = (Vec<f64>, Vec<f64>, Vec<i32>);
    let mut samples: Vec<BTreeMap<&str, Samples>> = vec![BTreeMap::new(); dirs.len()];
    for _ in 0..runs {
        for (d, dir) in dirs.iter().enumerate() {
            for t in TOOLS.iter().filter(|t| dir.join(t).is_file()) {
                // Each run starts from the same finished document, in the setup's directory
                // (where make-secret wrote the secret file).
                let p = pipeline(sim, dir, &[t], &setup.output, &setup_dir, "recheck")?;
                let e = samples[d].entry(t).or_default();
                e.0.push(p.wall_ms);
                e.1.push(p.tools[0].4);
                e.2.push(p.tools[0].1);
            }
        }
    }
    Ok(samples
        .into_iter()
        .map(|m| {
            m.into_iter()
                .map(|(t, (w, c, codes))| {
                    let recheck = Recheck {
                        wall_ms_median: median(&w),
                        cpu_ms_median: median(&c),
                        exit_codes: codes,
                    };
                    (t.to_string(), recheck)
                })
                .collect()
        })
        .collect())
}
