//! End-to-end tests against a real control plane. `cargo test -p sealing-e2e --test e2e`
//! starts the local control plane and a node agent once for the whole run (or uses the
//! cluster named by SEALING_E2E_KUBECONFIG) and always tears them down.

mod crds;
mod manifests;
mod nodes;
mod pods;
mod proving;
mod real_nodes;
mod sealing;
mod sealer;
mod support;

use std::process::ExitCode;

fn main() -> ExitCode {
    let tests = [
        nodes::tests(),
        pods::tests(),
        sealer::tests(),
        crds::tests(),
        manifests::tests(),
        sealing::tests(),
        real_nodes::tests(),
    ]
    .concat();
    sealing_e2e::harness::run_suite(tests)
}
