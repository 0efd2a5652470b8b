//! `loopsy init`: the data dir (`0700`) and `config.yaml` (`0600`) with a fresh key.

use std::process::ExitCode;

use anyhow::{Context, bail};
use loopsy_daemon::config::{ConfigWriteLock, initial_config};
use loopsy_daemon::paths::DataDir;
use loopsy_daemon::{durable, identity, secrets};

use crate::args::InitArgs;
use crate::daemon_link;

pub fn run(data_dir: &DataDir, args: &InitArgs) -> anyhow::Result<ExitCode> {
    let config_path = data_dir.config();
    durable::ensure_private_dir(data_dir.root())
        .with_context(|| format!("cannot create the data dir {}", data_dir.root().display()))?;
    let _lock = ConfigWriteLock::acquire(data_dir)?;
    if config_path.exists() {
        if args.if_missing {
            println!("{} already exists; left as it is.", config_path.display());
            return Ok(ExitCode::SUCCESS);
        }
        if !args.force {
            bail!(
                "{} already exists; keep it, or run `loopsy init --force` to replace it (with a new API key)",
                config_path.display()
            );
        }
        if let Some(pid) = daemon_link::running_pid(data_dir) {
            bail!(
                "the daemon is running (pid {}); stop it with `loopsy stop` before replacing its configuration",
                pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
            );
        }
    }
    let key = secrets::generate_api_key()?;
    durable::write_private_atomic(&config_path, initial_config(&key).as_bytes())
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    durable::ensure_private_dir(&data_dir.logs()).context("cannot create the logs dir")?;
    // The node id is made here, once, so that no start has to seed the CSPRNG first.
    identity::load_or_create_node_id(data_dir).context("cannot create the node id")?;
    println!("Created {} with a new API key.", config_path.display());
    // `if_missing` is how `loopsy up` calls this: it starts the daemon itself.
    if !args.if_missing {
        println!("Next: `loopsy start` runs the daemon;");
        println!("`loopsy key show` prints the key for your peers.");
    }
    Ok(ExitCode::SUCCESS)
}
