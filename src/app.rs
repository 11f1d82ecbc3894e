//! The one place a run ends: parse the command line, run the command on an async runtime
//! (Ctrl-C rolls back), print the whole error chain, and pick the exit code.

use clap::Parser;

/// Run `cutover` with the process's arguments; the exit code to end with.
pub fn main() -> i32 {
    let cli = crate::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 3;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = crate::commands::run(cli) => r,
            // Ctrl-C: dropping the command drops its transaction, so PostgreSQL rolls it back
            // (and a scratch cluster is stopped and removed).
            _ = tokio::signal::ctrl_c() => Err(crate::error::interrupted()),
        }
    });
    // Do not wait for background tasks (connections) to wind down.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            crate::error::exit_code(&err)
        }
    }
}
