//! The `prefiq` binary.

// mimalloc makes a codegen run about a quarter faster than the system allocator: the pipeline
// allocates millions of small token and string nodes (measured with `perf stat -r 15`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    prefiq::cli::main()
}
