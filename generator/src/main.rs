//! The `prefiq` binary.

fn main() -> std::process::ExitCode {
    prefiq::cli::main()
}
