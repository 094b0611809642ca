//! `kluis`: the server and its administration commands (see `cli`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
