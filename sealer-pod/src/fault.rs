//! Fault injection for kill-and-re-run tests: `SEALER_POD_FAULT=<step>:<point>` makes the
//! process abort at that point, leaving the sector directory exactly as a SIGKILL would.

pub const ENV: &str = "SEALER_POD_FAULT";

pub fn point(step: &str, name: &str) {
    if let Ok(spec) = std::env::var(ENV)
        && spec == format!("{step}:{name}")
    {
        eprintln!("sealer-pod: fault injection {spec}: aborting");
        std::process::abort();
    }
}
