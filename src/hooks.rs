//! Named points in a load where a fault-injection test can stop the process. Compiled in
//! only with the `test-hooks` feature, which no release build enables: without it
//! [`reached`] does nothing and no environment variable is read.
//!
//! With `CUTOVER_TEST_PAUSE_AT=<point>` in the environment, cutover prints
//! `cutover: paused at <point>` on stderr when it reaches that point and waits there, so a
//! test can kill it (SIGKILL, SIGINT) at exactly that moment and check that the target is
//! either unchanged or fully loaded. Points: `copy:<table>` (a table's COPY has started and
//! its first rows are sent), `merge:<table>` (before its rows are written to the target),
//! `sequences` (before sequences are reset), `commit` (just before COMMIT). Unset, this costs
//! one environment lookup per point.
//!
//! With `CUTOVER_TEST_RESUME_FILE=<path>` as well, the pause ends (and the load carries on)
//! as soon as that file exists, so a test can inject a fault (stop the server, terminate
//! the backend, start a second load) while cutover is paused and then watch it react.

#[cfg(not(feature = "test-hooks"))]
pub(crate) async fn reached(_point: &str) {}

#[cfg(feature = "test-hooks")]
pub(crate) async fn reached(point: &str) {
    let Ok(want) = std::env::var("CUTOVER_TEST_PAUSE_AT") else {
        return;
    };
    if want != point {
        return;
    }
    use std::io::Write;
    let mut err = std::io::stderr();
    let _ = writeln!(err, "cutover: paused at {point}");
    let _ = err.flush();
    let resume = std::env::var_os("CUTOVER_TEST_RESUME_FILE").map(std::path::PathBuf::from);
    loop {
        match &resume {
            Some(file) if file.exists() => {
                let _ = writeln!(err, "cutover: resumed at {point}");
                return;
            }
            Some(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            None => tokio::time::sleep(std::time::Duration::from_secs(3600)).await,
        }
    }
}
