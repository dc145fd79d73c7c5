use clap::Parser;

/// mimalloc instead of the system allocator: an admission builds and drops many small strings
/// and maps (BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = notebook_volumes::cli::Cli::parse();
    std::process::exit(notebook_volumes::cli::run(cli));
}
