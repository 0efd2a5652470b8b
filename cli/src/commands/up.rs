//! `loopsy up`: the main job on a fresh machine. Creates the config if there
//! is none, starts the daemon if it is not running, runs a relay in this
//! process (127.0.0.1:8787, or every interface with `--lan`), registers the
//! daemon at it, and prints the pairing QR code, URL and code. Ctrl-C (or
//! SIGTERM) stops the relay, and the daemon too if this command started it.
//!
//! With `--lan` the daemon serves the phone app to the network itself (the
//! app it was built with), and the relay only carries connections: the code
//! phones run does not come from the relay.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use loopsy_daemon::paths::DataDir;
use loopsy_relay::RelayConfig;
use loopsy_transports::wire::method;
use loopsy_webapp::AppUrl;
use serde_json::{Value, json};

use crate::args::{Cli, InitArgs, StartArgs, StopArgs, UpArgs};
use crate::commands::{init, phone, start, stop};
use crate::daemon_link;

const RELAY_READY: Duration = Duration::from_secs(10);
const LINK_READY: Duration = Duration::from_secs(20);
/// How long an already registered daemon gets to reconnect (its backoff starts at 1 s).
const RECONNECT_GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);

/// This machine's address on its LAN: the source address the kernel would use
/// toward a public address (a UDP "connect" sends nothing).
fn lan_address() -> anyhow::Result<IpAddr> {
    let probe = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).context("cannot open a UDP socket")?;
    probe
        .connect((Ipv4Addr::new(192, 0, 2, 1), 9))
        .context("this machine has no network route; run `loopsy up` without --lan")?;
    Ok(probe.local_addr()?.ip())
}

/// Runs the relay on a thread of its own; returns once it answers.
fn start_relay(
    data_dir: &DataDir,
    listen: SocketAddr,
    public_url: &str,
    app_url: Option<&AppUrl>,
) -> anyhow::Result<()> {
    let mut config = RelayConfig::new(listen, data_dir.root().join("relay"));
    config.public_url = Some(public_url.to_owned());
    config.app_url = app_url.cloned();
    let (ready, wait) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("relay".into())
        .spawn(move || {
            let outcome = actix_rt::System::new().block_on(async move {
                match loopsy_relay::serve(config) {
                    Ok((server, _)) => {
                        let _ = ready.send(Ok(()));
                        server.await.map_err(|e| e.to_string())
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string()));
                        Ok(())
                    }
                }
            });
            if let Err(e) = outcome {
                tracing::error!(error = %e, "the relay stopped");
            }
        })
        .context("cannot start the relay thread")?;
    match wait.recv_timeout(RELAY_READY) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => bail!("cannot start the relay: {e}"),
        Err(_) => bail!("the relay did not start within {} s", RELAY_READY.as_secs()),
    }
}

/// The app's page at the daemon, on this machine's LAN address; `None` (the
/// relay serves it then) when the daemon already ran without `--lan`.
fn lan_app(data_dir: &DataDir) -> anyhow::Result<Option<AppUrl>> {
    let status = daemon_link::call(data_dir, method::STATUS, None)?;
    let listen = status["daemon"]["listen"].as_str().unwrap_or_default();
    let Some((host, port)) = listen.rsplit_once(':') else {
        bail!("the daemon did not say where it listens; see `loopsy status`");
    };
    let on_lan = host
        .trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .is_ok_and(|ip| !ip.is_loopback());
    if !on_lan {
        println!(
            "The daemon was started without --lan, so the relay serves the phone app.\n\
             For the daemon to serve it: `loopsy stop`, then `loopsy up --lan`."
        );
        return Ok(None);
    }
    let page = format!("http://{}:{port}/app/", lan_address()?);
    Ok(Some(AppUrl::parse(&page).map_err(anyhow::Error::msg)?))
}

fn relay_status(data_dir: &DataDir) -> anyhow::Result<Value> {
    Ok(daemon_link::call(data_dir, method::RELAY_STATUS, None)?)
}

/// Whether the daemon's relay link comes up within `within`.
fn wait_for_link(data_dir: &DataDir, within: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + within;
    while relay_status(data_dir)?["connected"] != true {
        if Instant::now() >= deadline {
            return Ok(false);
        }
        daemon_link::pause(POLL);
    }
    Ok(true)
}

pub fn run(data_dir: &DataDir, args: &UpArgs, cli: &Cli) -> anyhow::Result<ExitCode> {
    let stop_requested = Arc::new(AtomicBool::new(false));
    {
        let flag = stop_requested.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot watch for Ctrl-C")?;
        let mut terminate = runtime
            .block_on(async {
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            })
            .context("cannot watch for SIGTERM")?;
        std::thread::spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            });
            flag.store(true, Ordering::SeqCst);
        });
    }
    init::run(
        data_dir,
        &InitArgs {
            force: false,
            if_missing: true,
        },
    )?;
    let started_here = daemon_link::running_pid(data_dir).is_none();
    if started_here {
        let start_args = StartArgs {
            foreground: false,
            // The daemon serves the app to the network.
            lan: args.lan,
            port: args.port,
            peer_port: None,
            detached: false,
        };
        start::run(data_dir, &start_args, cli)?;
    } else {
        println!("loopsy daemon already running; using it");
    }
    let outcome = serve(data_dir, args, &stop_requested);
    if started_here && !args.keep_daemon {
        stop::run(data_dir, &StopArgs { timeout: 15 })?;
    }
    outcome
}

fn serve(
    data_dir: &DataDir,
    args: &UpArgs,
    stop_requested: &AtomicBool,
) -> anyhow::Result<ExitCode> {
    let (listen, public_url) = if args.lan {
        let ip = lan_address()?;
        (
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), args.relay_port),
            format!("http://{ip}:{}", args.relay_port),
        )
    } else {
        (
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.relay_port),
            format!("http://127.0.0.1:{}", args.relay_port),
        )
    };
    let app_url = if args.lan { lan_app(data_dir)? } else { None };
    start_relay(data_dir, listen, &public_url, app_url.as_ref())?;
    println!("relay serving on {public_url}");
    if let Some(app) = &app_url {
        println!("phone app served by the daemon at {app}");
    }
    // Registered here already: the daemon keeps its device (and paired phones)
    // and reconnects at once. Otherwise, or if the relay no longer knows the
    // device (its database was wiped), it registers anew.
    daemon_link::call(
        data_dir,
        method::RELAY_CONFIGURE,
        Some(&json!({ "url": public_url })),
    )?;
    if !wait_for_link(data_dir, RECONNECT_GRACE)? {
        daemon_link::call(
            data_dir,
            method::RELAY_CONFIGURE,
            Some(&json!({ "url": public_url, "force": true })),
        )?;
        if !wait_for_link(data_dir, LINK_READY)? {
            bail!(
                "the daemon did not connect to the relay within {} s; see `loopsy relay status`",
                LINK_READY.as_secs()
            );
        }
    }
    let window = daemon_link::call(
        data_dir,
        method::MOBILE_PAIR,
        Some(&json!({ "ttlSeconds": args.ttl, "appUrl": app_url.as_ref().map(AppUrl::page) })),
    )?;
    // Says first when the code works only on this machine (without --lan).
    phone::print_pairing(&window)?;
    let token_id = window["tokenId"].as_str().unwrap_or_default().to_owned();
    let mut settled = false;
    println!(
        "Ctrl-C stops the relay{}.",
        if args.keep_daemon {
            ""
        } else {
            " and the daemon"
        }
    );
    while !stop_requested.load(Ordering::SeqCst) {
        if !settled {
            settled = phone::report_pairing(data_dir, &token_id)?.is_some();
        }
        daemon_link::pause(POLL * 3);
    }
    println!("stopping");
    Ok(ExitCode::SUCCESS)
}
