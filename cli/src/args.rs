//! The command line, as clap derive types. Doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// loopsy: your laptop's terminal in your pocket, and AI agents on your LAN working together.
///
/// Start here: `loopsy init` creates your configuration and key, `loopsy start`
/// runs the daemon in the background, `loopsy status` shows what it is doing.
#[derive(Debug, Parser)]
#[command(
    name = "loopsy",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Directory holding config.yaml, the socket, logs and state.
    #[arg(long, global = true, env = "LOOPSY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// How log lines look: `human` (coloured on a terminal) or `json` (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "LOOPSY_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// More detail in logs: -v for debug, -vv for trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything at once on a fresh machine: create the config if needed, start
    /// the daemon, run a relay here and print a QR code to pair your phone.
    Up(UpArgs),
    /// Create the data dir and config.yaml with a fresh 256-bit API key.
    Init(InitArgs),
    /// Start the daemon (in the background unless --foreground).
    Start(StartArgs),
    /// Stop the running daemon gracefully.
    Stop(StopArgs),
    /// Show whether the daemon runs, and what it is doing (or a paired peer's, with --peer).
    Status(StatusArgs),
    /// Check the installation and say how to fix each problem found.
    Doctor(JsonFlag),
    /// Show or replace this daemon's API key.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Show the audit log: one line per request the daemon answered.
    Logs(LogsArgs),
    /// Run a command through the daemon (denylist, timeout and audit apply) and
    /// stream its output; exits with the command's exit code.
    Exec(ExecArgs),
    /// Copy files to or from a daemon (this machine's, or a peer's with --peer).
    #[command(subcommand)]
    Transfer(TransferCommand),
    /// Open a new terminal session on this machine and attach to it (Ctrl-A d detaches).
    Shell(ShellArgs),
    /// Attach to a running session by id, name, or id prefix (Ctrl-A d detaches).
    Attach {
        /// Session id, its name, or the first four or more characters of its id.
        target: String,
        /// The session is on a paired peer (hostname, node id or prefix): attach
        /// through this machine's daemon.
        #[arg(long, value_name = "PEER")]
        peer: Option<String>,
    },
    /// List terminal sessions (live and recently exited).
    List(JsonFlag),
    /// Stop a terminal session (SIGHUP, then SIGTERM, then SIGKILL).
    Kill {
        /// Session id, its name, or the first four or more characters of its id.
        target: String,
    },
    /// Which peers may start agents that act without asking (auto-approve).
    #[command(subcommand, name = "auto-approve")]
    AutoApprove(AutoApproveCommand),
    /// The shared key/value context store that agents on your machines use to coordinate.
    Context(ContextArgs),
    /// Pair a phone with this machine through the relay (QR code + 4-digit code).
    #[command(subcommand)]
    Mobile(MobileCommand),
    /// The phones paired with this machine.
    #[command(subcommand)]
    Phone(PhoneCommand),
    /// The relay that carries this machine's end-to-end encrypted phone traffic.
    #[command(subcommand)]
    Relay(RelayCommand),
    /// Pair this machine with another loopsy daemon: run `loopsy pair` on one
    /// machine (it shows an invite code), then `loopsy pair <host>` on the other.
    /// Both screens then show a 6-digit check code; pair only if they match.
    Pair(PairPeerArgs),
    /// The loopsy daemons paired with this one.
    #[command(subcommand)]
    Peers(PeersCommand),
    /// Serve the loopsy_* tools to an AI agent (Claude Code, Codex, Gemini CLI,
    /// opencode) as an MCP server on stdin/stdout. Agents start it themselves:
    /// register it with `claude mcp add --scope user loopsy -- loopsy mcp`.
    /// It talks to this machine's daemon as its owner, and reaches peers
    /// through it, so no key ever appears in a tool call. `loopsy mcp add`
    /// registers it with the agents installed here.
    Mcp(McpArgs),
    /// Print a shell completion script: `loopsy completions bash >
    /// ~/.local/share/bash-completion/completions/loopsy` (zsh: a file named
    /// `_loopsy` on $fpath; fish: ~/.config/fish/completions/loopsy.fish).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `loopsy man > ~/.local/share/man/man1/loopsy.1`.
    Man,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct McpArgs {
    #[command(subcommand)]
    pub command: Option<McpCommand>,
}

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Register `loopsy mcp` with Claude Code, Codex and Gemini CLI (through
    /// their own `mcp add`) and opencode (its config file, other keys kept).
    /// Safe to run again: it replaces a registration to another path.
    Add(McpRegisterArgs),
    /// Take the registration out again.
    Remove(McpRegisterArgs),
    /// Each agent's state: missing, not-registered, registered, or
    /// registered-elsewhere (to another loopsy binary or data dir).
    Status(McpRegisterArgs),
}

#[derive(Debug, Args)]
pub struct McpRegisterArgs {
    /// Which agent; all of them by default.
    #[arg(long, value_enum, default_value = "all")]
    pub agent: McpAgent,
    /// Print what would be run or written, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum McpAgent {
    Claude,
    Codex,
    Gemini,
    Opencode,
    All,
}

#[derive(Debug, Args)]
pub struct PairPeerArgs {
    /// The other machine's address, HOST or HOST:PORT (its peer port, default
    /// 19533). Leave it out on the machine that shows the invite code.
    pub address: Option<String>,
    /// The 6-digit invite code the other machine shows (asked for when left out).
    #[arg(
        long,
        env = "LOOPSY_INVITE_CODE",
        hide_env_values = true,
        value_name = "CODE"
    )]
    pub code: Option<String>,
    /// What the other machine may do here, comma-separated. Default:
    /// exec,transfer,context,messages. Add sessions:agents or sessions:shell
    /// to let it start terminal sessions here (sessions:shell equals a shell on this machine).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub grant: Option<Vec<String>>,
    /// Pair without asking if this screen's check code equals CODE (for scripts
    /// that read the other screen); any other code declines.
    #[arg(long, value_name = "CODE")]
    pub expect_check_code: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PeersCommand {
    /// List the paired peers: online state, last seen, version, and what each side may do.
    List(JsonFlag),
    /// Pair with the daemon at HOST[:PORT] (the same as `loopsy pair HOST[:PORT]`;
    /// its owner runs `loopsy pair` there first). With --key-file, add a
    /// machine that runs the original TypeScript Loopsy instead (default port 19532).
    Add(PeersAddArgs),
    /// Mint a key for a machine that runs the original TypeScript Loopsy (it
    /// cannot pair): it calls this machine with the key, with only the grants
    /// chosen here. Prints the key once, and the entry for its config.yaml.
    Invite(InviteArgs),
    /// Forget a peer: its credential stops working here at once, and the peer is
    /// told to forget this machine too. A name from `peers invite` revokes that key.
    Remove {
        /// The peer's hostname, node id, or a unique prefix of its node id
        /// (or the name of a key minted with `peers invite`).
        peer: String,
    },
}

#[derive(Debug, Args)]
pub struct PeersAddArgs {
    #[command(flatten)]
    pub pair: PairPeerArgs,
    /// The machine runs the original TypeScript Loopsy: FILE holds a key it
    /// accepts (its auth.apiKey, or one in its auth.allowedKeys). The key is
    /// sent only to the certificate the machine shows now, which is pinned.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<std::path::PathBuf>,
    /// With --key-file: talk plain HTTP (the original's default). The key and
    /// everything else then cross the network unencrypted; use only on a network you trust.
    #[arg(long, requires = "key_file")]
    pub plain_http: bool,
    #[command(flatten)]
    pub output: JsonFlag,
}

#[derive(Debug, Args)]
pub struct InviteArgs {
    /// A name for that machine (letters, digits, '-', '_', '.'): it names the
    /// key here, in the audit log and in `peers list`.
    #[arg(long = "for-typescript", value_name = "NAME")]
    pub for_typescript: String,
    /// What it may do here, comma-separated. Default: exec,transfer,context,messages.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub grant: Option<Vec<String>>,
    /// Also write the key to FILE (mode 0600), e.g. for `peers add --key-file`
    /// once that machine lists the key in its auth.allowedKeys.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub output: JsonFlag,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Let phones on your network reach this laptop: the daemon (if started
    /// here) serves the phone app on every interface, the relay listens on
    /// every interface, and the QR code carries this machine's LAN address.
    #[arg(long)]
    pub lan: bool,
    /// TCP port of the relay.
    #[arg(long, value_name = "N", default_value_t = 8787)]
    pub relay_port: u16,
    /// TCP port of the daemon's HTTP API (default: server.port, 19532).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// How long the pairing code stays valid, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub ttl: u64,
    /// Leave the daemon running when this command stops.
    #[arg(long)]
    pub keep_daemon: bool,
}

#[derive(Debug, Subcommand)]
pub enum MobileCommand {
    /// Show a QR code to scan with the phone, and a 4-digit code to type on it;
    /// waits until the phone is paired (or the code expires).
    Pair(PairArgs),
}

#[derive(Debug, Args)]
pub struct PairArgs {
    /// How long the QR code stays valid, in seconds (30 to the relay's maximum).
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub ttl: u64,
    /// Where the phone opens the app for this pairing, e.g. a copy of web/dist
    /// you host on an origin of its own (https://loopsy.you.example/), or this laptop's own
    /// http://<address>:<port>/app/. Default: relay.appOrigin, else the relay's.
    #[arg(long, value_name = "URL")]
    pub app_url: Option<String>,
    /// Print the URL, code and expiry as JSON and return at once (for scripts).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PhoneCommand {
    /// List the paired phones with their key fingerprints.
    List(JsonFlag),
    /// Forget a phone: its live connections are cut at once and it cannot connect again.
    Revoke {
        /// The phone's id, from `loopsy phone list`.
        phone_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Register this machine at a relay (e.g. https://relay.example.com) and connect to it.
    Configure {
        /// The relay's URL.
        url: String,
        /// Register anew even if already registered there (paired phones must pair again).
        #[arg(long)]
        force: bool,
        /// PEM file of extra CA certificates, for a relay whose certificate a
        /// private CA signed (public CAs are trusted already).
        #[arg(long, value_name = "FILE")]
        ca_file: Option<std::path::PathBuf>,
    },
    /// Show the relay link: configured, connected, last error.
    Status(JsonFlag),
    /// Run a relay in the foreground (the same as the `loopsy-relay` program);
    /// its database goes to <data dir>/relay.
    Serve(Box<loopsy_relay::serve_args::ServeArgs>),
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Print the whole result as JSON at the end instead of streaming the output.
    #[arg(long)]
    pub json: bool,
    /// Run it on a paired peer (hostname, node id or prefix), through this
    /// machine's daemon; its output streams back as it would here.
    #[arg(long, value_name = "PEER")]
    pub peer: Option<String>,
    /// Stop the command after this many seconds (default: execution.defaultTimeout).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Working directory of the command (default: your home directory).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Extra environment variable for the command; repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// The program and its arguments; no shell is involved (use `-- sh -c '…'` for one).
    #[arg(required = true, last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Which daemon a transfer talks to.
#[derive(Debug, Args)]
pub struct PeerArgs {
    /// A paired peer (hostname, node id or prefix), reached through this
    /// machine's daemon over pinned TLS; this command never holds its credential.
    #[arg(long, value_name = "PEER", conflicts_with_all = ["address", "key"])]
    pub peer: Option<String>,
    /// Instead, a daemon's plain-HTTP API by address, `HOST` or `HOST:PORT`
    /// (default port 19532), with --key: for a TypeScript Loopsy, whose key you
    /// copied. Default: this machine's daemon.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub address: Option<String>,
    /// The bearer key for --address (default: `LOOPSY_PEER_KEY`, else this daemon's own key).
    #[arg(
        long,
        env = "LOOPSY_PEER_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub key: Option<String>,
    /// Print the result as JSON (and no progress bar).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TransferCommand {
    /// Send the local file SRC to DEST on the daemon (its directories are created).
    Push {
        src: std::path::PathBuf,
        /// Absolute path, or `~/…`, on the receiving machine.
        dest: String,
        #[command(flatten)]
        peer: PeerArgs,
    },
    /// Fetch SRC from the daemon into the local DEST (a file, or a directory to put it in).
    Pull {
        /// Absolute path, or `~/…`, on the sending machine.
        src: String,
        dest: std::path::PathBuf,
        #[command(flatten)]
        peer: PeerArgs,
    },
    /// List a directory on the daemon.
    List {
        path: String,
        #[command(flatten)]
        peer: PeerArgs,
    },
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// What to run: shell (your $SHELL), claude, codex, gemini or opencode.
    #[arg(long, default_value = "shell", conflicts_with = "cmd")]
    pub agent: String,
    /// Run this program instead (found on PATH, no shell involved); arguments follow after `--`.
    #[arg(long, value_name = "PROGRAM")]
    pub cmd: Option<String>,
    /// Working directory (default: your home directory).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// A name to find the session by later (`loopsy attach NAME`); unique among live sessions.
    #[arg(long)]
    pub name: Option<String>,
    /// Open it on a paired peer (hostname, node id or prefix), through this
    /// machine's daemon; the peer must have granted sessions:shell (or
    /// sessions:agents for an agent).
    #[arg(long, value_name = "PEER")]
    pub peer: Option<String>,
    /// Arguments for the program or agent.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum AutoApproveCommand {
    /// Show the peers and phones allowed to use auto-approve (you always may, on this machine).
    List,
    /// Let a peer or a phone start claude, codex or gemini with auto-approve.
    Allow {
        /// A peer's name from auth.allowedKeys, or `phone:<id>` with an id from `loopsy phone list`.
        peer: String,
    },
    /// Withdraw that permission.
    Deny {
        /// A peer's name, or `phone:<id>`.
        peer: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// Store VALUE under KEY, replacing any previous value.
    Set {
        /// 1 to 256 bytes, e.g. `build:status`.
        key: String,
        /// The value (up to 1 MiB); `-` reads it from standard input.
        value: String,
        /// Forget the entry after this many seconds (default: keep it).
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<u64>,
        /// Print the stored entry as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the value stored under KEY (exit 1 if there is none).
    Get {
        key: String,
        /// Print the whole entry as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List entries, optionally only keys starting with a prefix.
    List {
        /// Only keys that start with this text.
        #[arg(long)]
        prefix: Option<String>,
        /// Print the entries as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove the entry stored under KEY.
    Delete {
        key: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Ask a paired peer (hostname, node id or prefix) through this machine's daemon.
    #[arg(long, value_name = "PEER")]
    pub peer: Option<String>,
}

#[derive(Debug, Args)]
pub struct ContextArgs {
    /// Use a paired peer's context store (hostname, node id or prefix), through
    /// this machine's daemon.
    #[arg(long, global = true, value_name = "PEER")]
    pub peer: Option<String>,
    #[command(subcommand)]
    pub command: ContextCommand,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Replace an existing config.yaml (its API key is lost; peers using it must be updated).
    #[arg(long, conflicts_with = "if_missing")]
    pub force: bool,
    /// Succeed without changing anything when config.yaml already exists (for scripts).
    #[arg(long)]
    pub if_missing: bool,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Stay in the foreground (for systemd, launchd or debugging); logs go to stderr.
    #[arg(long)]
    pub foreground: bool,
    /// Listen on all network interfaces for this run, so LAN peers can connect.
    #[arg(long)]
    pub lan: bool,
    /// TCP port of the HTTP API for this run (default: server.port, 19532).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// TLS port other loopsy daemons pair with and call for this run
    /// (default: server.peerPort, or the HTTP port + 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub peer_port: Option<u16>,
    /// Internal: set by a background start for the daemon process it spawns.
    #[arg(long, hide = true)]
    pub detached: bool,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait for a graceful exit before sending SIGKILL.
    #[arg(long, default_value_t = 15, value_name = "S")]
    pub timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print the current API key.
    Show(JsonFlag),
    /// Replace the API key with a fresh one; the old key stops working at once.
    Generate(JsonFlag),
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new lines as they are written (Ctrl-C to stop).
    #[arg(short, long)]
    pub follow: bool,
    /// How many of the most recent lines to print first.
    #[arg(short = 'n', long, default_value_t = 20, value_name = "N")]
    pub lines: usize,
    /// Print the raw JSON lines.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
