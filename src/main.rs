//! The `cutover` binary: everything happens in the library; this only exits with its code.

fn main() {
    std::process::exit(cutover::main())
}
