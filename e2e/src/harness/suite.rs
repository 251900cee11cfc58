//! Runs the e2e tests with libtest-mimic around one shared cluster: started on first use,
//! always torn down at the end, also when a test fails or the run is interrupted.

use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use libtest_mimic::{Arguments, Failed, Trial};

use super::Cluster;

pub type TestFn = fn(Arc<Cluster>) -> BoxFuture<'static, anyhow::Result<()>>;

/// One e2e test: a name and an async function of the shared cluster.
#[derive(Clone)]
pub struct E2eTest {
    pub name: &'static str,
    pub run: TestFn,
    /// Needs the local control plane and node agent (their disks and processes); reported as
    /// ignored when the run uses another cluster.
    pub local_only: bool,
}

/// `e2e_tests![test_a, test_b]` builds a module's [`E2eTest`] list;
/// `e2e_tests![local_only: test_c]` marks tests that need the local cluster.
#[macro_export]
macro_rules! e2e_tests {
    (local_only: $($test:path),* $(,)?) => {
        $crate::e2e_tests!(@list true, $($test),*)
    };
    ($($test:path),* $(,)?) => {
        $crate::e2e_tests!(@list false, $($test),*)
    };
    (@list $local:expr, $($test:path),*) => {
        vec![$($crate::harness::E2eTest {
            name: concat!(module_path!(), "::", stringify!($test)),
            run: |cluster| Box::pin($test(cluster)),
            local_only: $local,
        }),*]
    };
}

/// How long one test may take before it is failed (`SEALING_E2E_TEST_TIMEOUT_SECONDS`); a
/// test whose name starts with `slow_` (it seals and proves sectors for real) gets three times
/// as long.
fn test_timeout(name: &str) -> Duration {
    let secs = std::env::var("SEALING_E2E_TEST_TIMEOUT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let factor = if name.starts_with("slow_") { 3 } else { 1 };
    Duration::from_secs(secs * factor)
}

type Started = Arc<OnceLock<Result<Arc<Cluster>, String>>>;

pub fn run_suite(tests: Vec<E2eTest>) -> ExitCode {
    let mut args = Arguments::from_args();
    // The tests mostly wait on the cluster; a few at once keeps the run short on 2 cores.
    args.test_threads.get_or_insert(4);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => Arc::new(rt),
        Err(e) => {
            eprintln!("e2e: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started: Started = Arc::new(OnceLock::new());
    // Serialises startup with the interrupt handler, so a Ctrl-C during startup still stops
    // what was started.
    let starting = Arc::new(Mutex::new(()));

    {
        let started = started.clone();
        let starting = starting.clone();
        runtime.spawn(async move {
            let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("e2e: interrupted; tearing the cluster down");
            let _guard = starting.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(Ok(cluster)) = started.get()
                && let Err(e) = cluster.stop()
            {
                eprintln!("e2e: {e}");
            }
            std::process::exit(130);
        });
    }

    let external = std::env::var_os("SEALING_E2E_KUBECONFIG").is_some();
    let trials = tests
        .into_iter()
        .map(|test| {
            let runtime = runtime.clone();
            let started = started.clone();
            let starting = starting.clone();
            let name = test
                .name
                .split_once("::")
                .map_or(test.name, |(_, rest)| rest);
            let ignored = test.local_only && external;
            Trial::test(name, move || {
                let cluster = started
                    .get_or_init(|| {
                        let _guard = starting.lock().unwrap_or_else(|e| e.into_inner());
                        runtime
                            .block_on(Cluster::start())
                            .map(Arc::new)
                            .map_err(|e| e.to_string())
                    })
                    .clone()
                    .map_err(|e| {
                        Failed::from(format!("the test cluster could not be started: {e}"))
                    })?;
                let timeout = test_timeout(name.rsplit("::").next().unwrap_or(name));
                let outcome = runtime.block_on(async {
                    tokio::time::timeout(timeout, (test.run)(cluster.clone())).await
                });
                match outcome {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => {
                        let agent = cluster
                            .check_agent()
                            .err()
                            .map(|e| format!("\n{e}"))
                            .unwrap_or_default();
                        Err(Failed::from(format!("{e:#}{agent}")))
                    }
                    Err(_) => Err(Failed::from(format!(
                        "timed out after {}s",
                        timeout.as_secs()
                    ))),
                }
            })
            .with_ignored_flag(ignored)
        })
        .collect();

    let conclusion = libtest_mimic::run(&args, trials);
    let mut torn_down_cleanly = true;

    if let Some(Ok(cluster)) = started.get() {
        if conclusion.has_failed()
            && let Some(tail) = cluster.agent_log_tail(40)
        {
            eprintln!("e2e: last lines of the node agent log:\n{tail}");
        }
        runtime.block_on(cluster.delete_test_namespaces());
        let teardown = cluster.stop();
        if let Err(e) = &teardown {
            eprintln!("e2e: tearing down: {e}");
            torn_down_cleanly = false;
        }
        // A failed run keeps its logs, node disks and control-plane state for inspection.
        if conclusion.has_failed()
            || teardown.is_err()
            || std::env::var_os("SEALING_E2E_KEEP").is_some()
        {
            eprintln!("e2e: logs and state kept in {}", cluster.run_dir.display());
        } else if let Err(e) = std::fs::remove_dir_all(&cluster.run_dir) {
            eprintln!("e2e: removing {}: {e}", cluster.run_dir.display());
        }
    }
    if torn_down_cleanly {
        conclusion.exit_code()
    } else {
        ExitCode::FAILURE
    }
}
