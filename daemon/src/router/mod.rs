//! The Router: the one place every request passes, whatever transport brought it.
//! It turns evidence into a principal (auth), applies policy (owner-only
//! operations, Host/Origin), rate limits, runs or dispatches the operation, and
//! audits the outcome. Transports decide nothing; services trust only the Router.

mod auth;
mod capabilities;
mod context_ops;
mod exec_ops;
mod mcp_ops;
mod message_ops;
mod operations;
#[cfg(test)]
mod operations_table;
mod ops;
mod origin_policy;
mod peer_ops;
mod peer_pairing_ops;
mod peer_transfer_ops;
mod peer_typescript_ops;
mod phone_ops;
mod picker_ops;
pub(crate) mod rate_limit;
mod rpc_params;
mod session_ops;
mod session_start;
mod session_view_ops;
mod transfer_ops;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use loopsy_transports::error::ApiError;
use loopsy_transports::wire::{Evidence, Handled, Inbound, Reply, Request, RequestId};
use tokio::sync::Notify;

pub use auth::Principal;
use auth::{AuthTable, KeyMatch};
pub use capabilities::{Capabilities, Capability};
use origin_policy::OriginPolicy;
use rate_limit::RateLimiter;

use crate::audit::{AuditLog, AuditRecord, now_rfc3339};
use crate::config::{Overrides, Settings};
use crate::identity::NodeIdentity;
use crate::services::context::ContextStore;

/// How often the Router looks for hand edits of `config.yaml` (keys, limits).
const CONFIG_POLL: Duration = Duration::from_secs(2);

/// Everything the Router starts with.
pub struct RouterSetup {
    pub settings: Settings,
    pub overrides: Overrides,
    pub identity: NodeIdentity,
    pub audit: Addr<AuditLog>,
    /// Notified once when an authorised `daemon.stop` arrives.
    pub shutdown: Arc<Notify>,
    pub services: Services,
    pub peers: PeerSetup,
}

/// The services admitted requests are dispatched to.
#[derive(Clone)]
pub struct Services {
    pub context: ContextStore,
    pub sessions: Addr<crate::sessions::SessionManager>,
    /// The thread exec jobs are started and watched on.
    pub exec: actix::ArbiterHandle,
    /// The relay link and phone channels.
    pub relay: Addr<crate::phone::RelayLink>,
    /// The thread peer links and joins run on.
    pub peers: actix::ArbiterHandle,
    /// mDNS discovery, when on (`--lan` or `discovery.enabled`).
    pub discovery: Option<Addr<crate::peers::discovery::Discovery>>,
}

/// What the Router starts with about LAN peers.
pub struct PeerSetup {
    /// The fingerprint of this daemon's TLS certificate.
    pub cert_fp: String,
    /// Its TLS port for peers.
    pub port: u16,
    /// The peers stored in `loopsy.db`.
    pub paired: Vec<crate::peers::store::PeerRecord>,
    /// The keys minted for TypeScript peers, from `loopsy.db`.
    pub typescript_keys: Vec<crate::peers::typescript_keys::TypeScriptKey>,
}

pub struct Router {
    settings: Settings,
    overrides: Overrides,
    identity: NodeIdentity,
    started: Instant,
    /// Digests of the accepted keys; swapped whole on rotation or reload.
    auth: AuthTable,
    origin_policy: OriginPolicy,
    limiter: RateLimiter,
    audit: Addr<AuditLog>,
    shutdown: Arc<Notify>,
    services: Services,
    /// Running exec jobs (buffered and streaming), for listing, cancel and `maxConcurrent`.
    jobs: exec_ops::JobTable,
    /// The `loopsy mcp` processes attached now (their `McpClient` actors).
    mcp: mcp_ops::McpClients,
    /// Transfer roots from the current configuration.
    path_guard: Arc<crate::policy::path_guard::PathGuard>,
    /// Transfers in flight per principal.
    transfers: transfer_ops::TransferPermits,
    /// Open phone pairing windows: secrets and codes, in memory only.
    pairing: crate::phone::pairing::PairingWindows,
    /// LAN peers: the pairing window, a join, the links of paired peers.
    peers: peer_ops::PeerState,
    /// Peers stored at start, linked once the Router runs.
    paired_at_start: Vec<crate::peers::store::PeerRecord>,
    /// The Router's own address (for actors that report back to it).
    self_address: Option<Addr<Router>>,
    /// The door of the request being handled (see `peer_ops::Door`).
    door: peer_ops::Door,
    own_uid: u32,
    /// Random per boot, so request ids never repeat across restarts.
    boot_tag: String,
    next_request: u64,
    /// Modification time of `config.yaml` when last loaded.
    config_mtime: Option<SystemTime>,
    reloading: bool,
    /// Test hook (debug builds only): the operation whose handling panics, from
    /// `LOOPSY_TEST_PANIC_ON`, so tests can prove a dead Router ends the process.
    #[cfg(debug_assertions)]
    panic_on: Option<String>,
}

/// What happened to a request, for the audit log.
fn outcome_label(result: &Result<Reply, ApiError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => match e.status {
            401 | 403 | 410 => "denied",
            429 => "rate-limited",
            404 => "not-found",
            400..=499 => "invalid",
            _ => "error",
        },
    }
}

/// The answer of an admitted request: ready now, or after work off the Router's thread.
enum Work {
    Done(Result<Reply, ApiError>),
    Later(ResponseActFuture<Router, Result<Reply, ApiError>>),
}

/// Modification time of `config.yaml`: a stat, so called off the Router's thread
/// (except once, at start).
pub(super) fn config_mtime(data_dir: &crate::paths::DataDir) -> Option<SystemTime> {
    std::fs::metadata(data_dir.config())
        .and_then(|m| m.modified())
        .ok()
}

impl Router {
    pub fn new(setup: RouterSetup) -> Self {
        let settings = setup.settings;
        // Request ids need to be unique, not secret: the boot time and pid are enough,
        // and they avoid seeding the CSPRNG (tens of ms of entropy gathering) on the
        // path to the first answer.
        let boot_nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let boot_tag = format!(
            "{:08x}",
            (boot_nanos ^ (u64::from(std::process::id()) << 20)) as u32
        );
        let path_guard = Arc::new(crate::policy::path_guard::PathGuard::new(
            &settings.config.transfer.allowed_paths,
            &settings.config.transfer.denied_paths,
            settings.data_dir.root(),
        ));
        Self {
            auth: AuthTable::from_config(&settings.config.auth, &[], &setup.peers.typescript_keys),
            origin_policy: OriginPolicy::new(
                settings.config.server.port,
                &settings.hostname,
                &settings.config.server.allowed_hosts,
            ),
            limiter: RateLimiter::new(settings.config.rate_limits.clone()),
            config_mtime: config_mtime(&settings.data_dir),
            settings,
            overrides: setup.overrides,
            identity: setup.identity,
            started: Instant::now(),
            audit: setup.audit,
            shutdown: setup.shutdown,
            services: setup.services,
            jobs: exec_ops::JobTable::default(),
            mcp: mcp_ops::McpClients::default(),
            path_guard,
            transfers: Default::default(),
            pairing: Default::default(),
            peers: peer_ops::PeerState::new(
                setup.peers.cert_fp,
                setup.peers.port,
                setup.peers.typescript_keys,
            ),
            paired_at_start: setup.peers.paired,
            self_address: None,
            door: Default::default(),
            own_uid: rustix::process::geteuid().as_raw(),
            boot_tag,
            next_request: 0,
            reloading: false,
            #[cfg(debug_assertions)]
            panic_on: std::env::var("LOOPSY_TEST_PANIC_ON").ok(),
        }
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(format!("{}-{:06}", self.boot_tag, self.next_request))
    }

    /// Auth and policy: who is this, and may they ask this at all?
    fn admit(
        &self,
        operation: &operations::Operation,
        evidence: &Evidence,
    ) -> Result<Principal, (Principal, ApiError)> {
        let public = operation.access == operations::Access::Public;
        let principal = match evidence {
            Evidence::UnixSocket { peer_uid } => {
                if *peer_uid != Some(self.own_uid) {
                    let who = peer_uid
                        .map_or_else(|| "an unknown user".to_owned(), |uid| format!("uid {uid}"));
                    return Err((
                        Principal::Anonymous { ip: None },
                        ApiError::forbidden(format!(
                            "This daemon's socket serves uid {} only, not {who}",
                            self.own_uid
                        )),
                    ));
                }
                Principal::Owner
            }
            Evidence::LanHttp(http) => {
                let ip = http.remote.map(|addr| addr.ip());
                let anonymous = Principal::Anonymous { ip };
                if let Err(error) = self.origin_policy.check(http) {
                    return Err((anonymous, error));
                }
                match &http.bearer {
                    None if public => anonymous,
                    None => return Err((anonymous, ApiError::missing_key())),
                    Some(token) => match self.auth.identify(token) {
                        Some(KeyMatch::Owner) => Principal::OwnerKey {
                            loopback: ip.is_some_and(|ip| ip.is_loopback()),
                        },
                        Some(KeyMatch::Peer(name, capabilities)) => {
                            Principal::Peer { name, capabilities }
                        }
                        // A paired daemon's credential is good only over TLS
                        // (or on this machine): on plain HTTP anyone on the
                        // path could have read it.
                        Some(KeyMatch::Paired(_))
                            if !http.tls && !ip.is_some_and(|ip| ip.is_loopback()) =>
                        {
                            return Err((
                                anonymous,
                                ApiError::forbidden(
                                    "a paired peer's credential is accepted only over the TLS port for peers",
                                ),
                            ));
                        }
                        Some(KeyMatch::Paired(peer)) => Principal::PairedPeer(Box::new(peer)),
                        None if public => anonymous,
                        None => return Err((anonymous, ApiError::invalid_key())),
                    },
                }
            }
            Evidence::Phone { phone_id } => Principal::Phone {
                phone_id: phone_id.clone(),
            },
            Evidence::RelayChannel { subject } => Principal::RelayChannel {
                subject: subject.clone(),
            },
        };
        let name = operation.method;
        let channel_op = operation.access == operations::Access::RelayChannel;
        if matches!(principal, Principal::RelayChannel { .. }) != channel_op {
            let error = ApiError::forbidden(format!(
                "'{name}' is asked only by the daemon's relay link for its phone channels"
            ));
            return Err((principal, error));
        }
        if matches!(principal, Principal::Phone { .. }) && !operation.phones {
            let error = ApiError::forbidden(format!(
                "'{name}' is not offered to phones; phones drive terminal sessions"
            ));
            return Err((principal, error));
        }
        if !operations::grants(operation.access, &principal) {
            let error = ApiError::forbidden(format!(
                "'{name}' is only for this machine's owner; run it with the loopsy CLI on that machine"
            ));
            return Err((principal, error));
        }
        if let Some(error) = operations::carrier_refusal(operation, evidence) {
            return Err((principal, error));
        }
        let need = operation.need;
        if !principal.capabilities().meets(need) {
            let wanted = match need {
                capabilities::Need::One(capability) => capability.name(),
                _ => "sessions:agents or sessions:shell",
            };
            let error = ApiError::forbidden(format!(
                "'{name}' needs the {wanted} capability, which {principal} was not given; the owner lists it under auth.allowedKeys.<name>.capabilities"
            ));
            return Err((principal, error));
        }
        Ok(principal)
    }

    fn rate_limit(
        &mut self,
        principal: &Principal,
        family: loopsy_transports::wire::RateFamily,
    ) -> Result<(), ApiError> {
        let subject = match principal {
            Principal::Owner | Principal::OwnerKey { loopback: true } => return Ok(()),
            Principal::Anonymous { ip } => {
                format!("ip:{}", ip.map(|ip| ip.to_string()).unwrap_or_default())
            }
            // Pairing attempts are limited for the whole device, whoever makes
            // them and on whichever token (`rateLimits.pair`).
            Principal::RelayChannel { .. } => "relay-channels".to_owned(),
            other => other.label(),
        };
        self.limiter
            .check(&subject, family, Instant::now())
            .map_err(|wait| ApiError::rate_limited(wait.as_secs_f64().ceil().max(1.0) as u64))
    }

    /// What a job or session is started with, for its audit line.
    /// What the audit line records about a job's or session's command line, with
    /// any key in it replaced by `[key]`.
    fn started_with(&self, request: &Request) -> Option<serde_json::Value> {
        let redact = |program: Option<&str>, args: &[String]| {
            let program = program.map(|p| self.auth.redact_keys(p));
            let args: Vec<String> = args.iter().map(|a| self.auth.redact_keys(a)).collect();
            crate::audit::started_with(program.as_deref(), &args)
        };
        match request {
            Request::Execute { params, .. } => Some(redact(Some(&params.command), &params.args)),
            Request::SessionStart(params) => {
                let custom = params.custom_command_id.as_ref().and_then(|id| {
                    let commands = &self.settings.config.custom_commands;
                    commands.iter().find(|c| &c.id == id)
                });
                let (program, args) = match custom {
                    Some(entry) => (
                        Some(entry.command.as_str()),
                        entry.args.iter().chain(&params.args).cloned().collect(),
                    ),
                    None => (params.command.as_deref(), params.args.clone()),
                };
                let mut started = redact(program, &args);
                started["agent"] = serde_json::json!(params.agent);
                started["customCommandId"] = serde_json::json!(params.custom_command_id);
                Some(started)
            }
            _ => None,
        }
    }

    /// Applies a freshly loaded or written configuration's keys and limits;
    /// `mtime` is the file's modification time as that load or write left it.
    fn apply(&mut self, settings: Settings, mtime: Option<SystemTime>) {
        self.auth = AuthTable::from_config(
            &settings.config.auth,
            &self.peers.records(),
            &self.peers.typescript_keys,
        );
        self.limiter.set_limits(settings.config.rate_limits.clone());
        self.origin_policy = OriginPolicy::new(
            self.settings.config.server.port,
            &settings.hostname,
            &settings.config.server.allowed_hosts,
        );
        self.config_mtime = mtime;
        self.settings = settings;
        self.path_guard = transfer_ops::guard(self);
    }

    /// The accepted keys again, after a peer came or went.
    fn rebuild_auth(&mut self) {
        self.auth = AuthTable::from_config(
            &self.settings.config.auth,
            &self.peers.records(),
            &self.peers.typescript_keys,
        );
    }

    /// Picks up hand edits of `config.yaml` (keys, limits) without a restart. The
    /// stat and the load run off the Router's thread.
    fn poll_config(&mut self, ctx: &mut Context<Self>) {
        if self.reloading {
            return;
        }
        self.reloading = true;
        let data_dir = self.settings.data_dir.clone();
        let overrides = self.overrides.clone();
        let known = self.config_mtime;
        let load = actix_rt::task::spawn_blocking(move || {
            let mtime = config_mtime(&data_dir);
            (mtime != known).then(|| (mtime, Settings::load(data_dir, &overrides)))
        });
        ctx.spawn(actix::fut::wrap_future::<_, Self>(load).map(|loaded, act, _ctx| {
            act.reloading = false;
            match loaded {
                Ok(None) => {}
                Ok(Some((mtime, Ok(settings)))) => {
                    tracing::info!("config.yaml changed; keys and rate limits reloaded");
                    act.apply(settings, mtime);
                }
                Ok(Some((mtime, Err(error)))) => {
                    tracing::warn!(%error, "config.yaml changed but does not load; keeping the previous keys and limits");
                    act.config_mtime = mtime;
                }
                Err(error) => tracing::error!(%error, "config reload task failed"),
            }
        }));
    }
}

impl Actor for Router {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Requests from every transport queue here; the default of 16 would make
        // busy transports wait on mailbox capacity instead of on work.
        ctx.set_mailbox_capacity(4096);
        self.self_address = Some(ctx.address());
        for record in std::mem::take(&mut self.paired_at_start) {
            self.activate_peer(record);
        }
        ctx.run_interval(CONFIG_POLL, |act, ctx| act.poll_config(ctx));
    }
}

impl Handler<Inbound> for Router {
    type Result = ResponseActFuture<Self, Handled>;

    fn handle(&mut self, inbound: Inbound, _ctx: &mut Self::Context) -> Self::Result {
        let started = Instant::now();
        let request_id = self.request_id();
        let Inbound { request, evidence } = inbound;
        // A JSON-RPC call is parsed here, by the entry of the method it names.
        let request = match request {
            Request::Call { method, params } => operations::parse_call(&method, params.as_ref()),
            other => other,
        };
        let operation = operations::of(&request);
        let op = operations::audit_label(operation, &request);
        #[cfg(debug_assertions)]
        if self.panic_on.as_deref() == Some(op) {
            panic!("test hook: LOOPSY_TEST_PANIC_ON={op}");
        }
        let admitted = self.admit(operation, &evidence).and_then(|principal| {
            match self.rate_limit(&principal, operation.family) {
                Ok(()) => Ok(principal),
                Err(error) => Err((principal, error)),
            }
        });
        let started_with = match operation.audit {
            operations::Audited::CommandLine => self.started_with(&request),
            operations::Audited::Outcome => None,
        };
        let (principal, work) = match admitted {
            Ok(principal) => {
                self.door = peer_ops::Door::of(&evidence);
                let work = operations::handler_of(operation, &request)(self, request, &principal);
                (principal, work)
            }
            Err((principal, error)) => (principal, Work::Done(Err(error))),
        };
        let decided = Decided {
            request_id,
            principal,
            evidence,
            op,
            started,
            started_with,
        };
        match work {
            Work::Done(result) => Box::pin(actix::fut::ready(decided.finish(&self.audit, result))),
            Work::Later(pending) => {
                Box::pin(pending.map(move |result, act, _ctx| decided.finish(&act.audit, result)))
            }
        }
    }
}

/// A request the Router has decided on, waiting for its outcome to be audited.
struct Decided {
    request_id: RequestId,
    principal: Principal,
    evidence: Evidence,
    op: &'static str,
    started: Instant,
    started_with: Option<serde_json::Value>,
}

impl Decided {
    /// Audits the outcome and makes the transport's answer.
    fn finish(self, audit: &Addr<AuditLog>, outcome: Result<Reply, ApiError>) -> Handled {
        let remote = match &self.evidence {
            Evidence::LanHttp(http) => http.remote.map(|addr| addr.ip().to_string()),
            Evidence::UnixSocket { .. }
            | Evidence::Phone { .. }
            | Evidence::RelayChannel { .. } => None,
        };
        audit.do_send(AuditRecord {
            ts: now_rfc3339(),
            request_id: self.request_id.0.clone(),
            principal: self.principal.label(),
            transport: self.evidence.transport().as_str(),
            op: self.op,
            outcome: outcome_label(&outcome),
            status: match &outcome {
                Ok(reply) => reply.status,
                Err(e) => e.status,
            },
            duration_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            remote,
            started: self.started_with,
        });
        Handled {
            request_id: self.request_id,
            outcome,
        }
    }
}

#[cfg(test)]
mod tests;
