//! `loopsy`: the command-line entry point. Parses arguments, sets up logging,
//! runs one command, and maps its result to an exit code in one place.

mod args;
mod commands;
mod daemon_link;
mod logging;
mod mcp;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, KeyCommand, McpCommand};

/// Exit code for "the daemon is not running" (`status`), as LSB init scripts use.
pub const EXIT_NOT_RUNNING: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli);
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let data_dir = daemon_link::data_dir(cli.data_dir.as_deref())?;
    match &cli.command {
        Command::Up(args) => commands::up::run(&data_dir, args, &cli),
        Command::Init(args) => commands::init::run(&data_dir, args),
        Command::Start(args) => commands::start::run(&data_dir, args, &cli),
        Command::Stop(args) => commands::stop::run(&data_dir, args),
        Command::Status(args) => commands::status::run(&data_dir, args),
        Command::Doctor(args) => commands::doctor::run(&data_dir, args.json),
        Command::Key(KeyCommand::Show(args)) => commands::key::show(&data_dir, args.json),
        Command::Key(KeyCommand::Generate(args)) => commands::key::generate(&data_dir, args.json),
        Command::Logs(args) => commands::logs::run(&data_dir, args),
        Command::Context(args) => {
            commands::context::run(&data_dir, args.peer.as_deref(), &args.command)
        }
        Command::Exec(args) => commands::exec::run(&data_dir, args),
        Command::Transfer(command) => commands::transfer::run(&data_dir, command),
        Command::Shell(args) => commands::shell::open(&data_dir, args),
        Command::Attach { target, peer } => {
            commands::shell::attach(&data_dir, target, peer.as_deref())
        }
        Command::List(args) => commands::sessions::list(&data_dir, args.json),
        Command::Kill { target } => commands::sessions::kill(&data_dir, target),
        Command::AutoApprove(command) => commands::sessions::auto_approve(&data_dir, command),
        Command::Mobile(command) => commands::phone::mobile(&data_dir, command),
        Command::Phone(command) => commands::phone::phone(&data_dir, command),
        Command::Relay(command) => commands::phone::relay(&data_dir, command),
        Command::Pair(args) => commands::pair::run(&data_dir, args),
        Command::Peers(command) => commands::peers::run(&data_dir, command),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "loopsy", &mut script);
            print_whole(&script)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut page)?;
            print_whole(&page)
        }
        Command::Mcp(args) => {
            use commands::mcp_register::{Action, run as register};
            match &args.command {
                None => mcp::run(&data_dir).map(|()| ExitCode::SUCCESS),
                Some(McpCommand::Add(a)) => register(&data_dir, a, Action::Add),
                Some(McpCommand::Remove(a)) => register(&data_dir, a, Action::Remove),
                Some(McpCommand::Status(a)) => register(&data_dir, a, Action::Status),
            }
        }
    }
}

/// Writes generated text to stdout; a reader that stops early (`| head`) is
/// not an error.
fn print_whole(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
