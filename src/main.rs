use clap::Parser;

fn main() {
    let cli = notebook_volumes::cli::Cli::parse();
    std::process::exit(notebook_volumes::cli::run(cli));
}
