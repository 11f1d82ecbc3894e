//! The `cutover` binary: parse, run, print the whole error chain, pick the exit code.

use clap::Parser;

fn main() {
    let cli = cutover::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(3);
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = cutover::run::run(cli) => r,
            // Ctrl-C: dropping the command drops its transaction, so PostgreSQL rolls it back
            // (and a scratch cluster is stopped and removed).
            _ = tokio::signal::ctrl_c() => Err(cutover::error::interrupted()),
        }
    });
    // Do not wait for background tasks (connections) to wind down.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(cutover::error::exit_code(&err));
        }
    }
}
