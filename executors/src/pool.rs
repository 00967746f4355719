//! The executor pool: one glommio executor per core (pinned unless `cfg.pin` is off), each running
//! the caller's closure.
//!
//! Contract of [`run_pool`]:
//! - Runs [`crate::preflight`] first, so a machine that cannot run glommio fails with one line.
//! - Starts `cfg.cores` executors with `LocalExecutorPoolBuilder` and `PoolPlacement::MaxSpread` over the
//!   CPUs this process may use (online ∩ affinity mask), one CPU each; with `cfg.pin` off,
//!   `PoolPlacement::Unbound`, which leaves their placement to the kernel. `io_memory =
//!   cfg.io_memory_bytes`.
//! - With `cfg.sched_batch`, each executor thread switches itself to `SCHED_BATCH` first
//!   ([`crate::sched`]); a refusal logs one warning for the pool and the executors run anyway.
//! - On each executor, joins the [`Mesh`] (all executors must join before any closure runs), then runs
//!   `f(CoreContext)` as that executor's main task. The executor ends when that task returns; tasks it
//!   spawned and did not await are dropped then.
//! - Returns `Ok(())` once every executor's closure returned. It does not decide when they return: the
//!   closures are expected to watch `ctx.shutdown` and wind down (with their own grace timeout).
//! - A panic in a closure, in a task it spawned, or an executor that fails to start, triggers the shared
//!   [`Shutdown`] (so the other cores see `ctx.shutdown` fire and their mesh ends) and makes `run_pool`
//!   return [`PoolError::ExecutorPanicked`] / [`PoolError::ExecutorFailed`]. Executors that have not
//!   finished [`PANIC_GRACE`] after the failure are abandoned (their threads detached) so the caller can
//!   exit instead of hanging.

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{BuilderErrorKind, CpuSet, GlommioError, LocalExecutorPoolBuilder, PoolPlacement};

use crate::config::{allowed_cpus, PoolConfig};
use crate::mesh::Mesh;
use crate::preflight::{preflight, PreflightError};
use crate::shutdown::{Shutdown, ShutdownWatch};

/// How long the other executors get to finish after one panicked or failed, before `run_pool` gives up
/// on them and returns. Generous next to a mesh hop, short next to an operator waiting on a dead proxy.
pub const PANIC_GRACE: Duration = Duration::from_secs(5);

/// How often the supervising thread looks for executor threads that died before running our code.
/// How often the supervisor looks at the executor threads while some have not entered
/// `executor_main` yet: a thread whose executor fails to build ends without a report, and its
/// siblings wait for it in the mesh join.
const SUPERVISOR_POLL_STARTING: Duration = Duration::from_millis(10);
/// The same once every thread runs: reports wake the supervisor at once, so the poll only backs
/// up `is_finished`. Slow on purpose: each wake-up costs CPU on an otherwise idle main thread
/// (at 10 ms it was ~8 % of the proxy's CPU while relaying one SRT stream).
const SUPERVISOR_POLL_RUNNING: Duration = Duration::from_millis(500);

/// What each core's closure gets.
#[derive(Debug)]
pub struct CoreContext<M: Send + 'static> {
    /// This executor's core id, `0..cores`; the same numbering as [`crate::shard_for`] and the mesh.
    pub core: usize,
    /// Executors in the pool.
    pub cores: usize,
    /// This executor's handle on the mesh.
    pub mesh: Mesh<M>,
    /// Fires on SIGINT/SIGTERM, [`Shutdown::trigger`], or a sibling executor's failure.
    pub shutdown: ShutdownWatch,
}

/// Why the pool did not run to a clean end. `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The machine or the configuration cannot run the pool.
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    /// glommio could not start the pool (threads, placement, CPU topology).
    #[error("cannot start the executor pool: {0}")]
    Start(String),
    /// An executor panicked.
    #[error("executor {} panicked: {message}{}", describe_core(*.core), describe_abandoned(*.abandoned))]
    ExecutorPanicked {
        /// The core, if it had joined the mesh.
        core: Option<usize>,
        message: String,
        /// Executors still running after [`PANIC_GRACE`], left behind.
        abandoned: usize,
    },
    /// An executor could not start (or could not join the mesh).
    #[error("executor {} failed: {message}{}", describe_core(*.core), describe_abandoned(*.abandoned))]
    ExecutorFailed {
        core: Option<usize>,
        message: String,
        abandoned: usize,
    },
}

fn describe_core(core: Option<usize>) -> String {
    core.map_or_else(
        || "(before joining the mesh)".to_owned(),
        |c| format!("on core {c}"),
    )
}

fn describe_abandoned(abandoned: usize) -> String {
    if abandoned == 0 {
        String::new()
    } else {
        format!(
            "; {abandoned} other executors did not stop within {PANIC_GRACE:?} and were abandoned"
        )
    }
}

/// Runs the pool; see the module docs for the contract.
pub fn run_pool<M, F, Fut>(cfg: PoolConfig, shutdown: Shutdown, f: F) -> Result<(), PoolError>
where
    M: Send + 'static,
    F: Fn(CoreContext<M>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    run_pool_with_grace(cfg, shutdown, PANIC_GRACE, f)
}

/// [`run_pool`] with a chosen grace, so tests of the abandon path stay fast.
#[doc(hidden)]
pub fn run_pool_with_grace<M, F, Fut>(
    cfg: PoolConfig,
    shutdown: Shutdown,
    grace: Duration,
    f: F,
) -> Result<(), PoolError>
where
    M: Send + 'static,
    F: Fn(CoreContext<M>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    preflight(&cfg)?;
    let allowed = allowed_cpus();
    let cpus = CpuSet::online()
        .map_err(|e| PoolError::Start(format!("reading the CPU topology: {e}")))?
        .filter(|location| allowed.contains(&location.cpu));

    let mesh = MeshBuilder::<M, _>::full(cfg.cores, cfg.mesh_capacity);
    // glommio's MeshBuilder counts its shared state with an `Rc` although it is sent to every executor
    // thread. Holding one clone here until every thread is joined keeps that count from reaching zero
    // while executors still race on it.
    let _mesh_anchor = mesh.clone();
    let (report_tx, report_rx) = mpsc::channel::<ExitReport>();
    let started = Arc::new(AtomicUsize::new(0));
    let watch = shutdown.watch();
    let capacity = cfg.mesh_capacity;
    let started_in_thread = Arc::clone(&started);
    let wake_coalesce = cfg.wake_coalesce;
    let sched_batch = cfg.sched_batch;
    let sched_warned = Arc::new(AtomicBool::new(false));

    let placement = if cfg.pin {
        PoolPlacement::MaxSpread(cfg.cores, Some(cpus))
    } else {
        PoolPlacement::Unbound(cfg.cores)
    };
    let handles = LocalExecutorPoolBuilder::new(placement)
        .name(&cfg.name)
        .io_memory(cfg.io_memory_bytes)
        .on_all_shards(move || {
            let main = executor_main(mesh, capacity, watch, report_tx, started_in_thread, f);
            let sched_warned = Arc::clone(&sched_warned);
            async move {
                // On the executor's own thread: the window and the policy are per executor.
                crate::wake::init(wake_coalesce);
                if sched_batch {
                    if let Err(e) = crate::sched::set_batch() {
                        // Every executor would say the same: once is enough.
                        if !sched_warned.swap(true, Ordering::Relaxed) {
                            tracing::warn!(
                                "cannot run the executors under SCHED_BATCH ({e}); they keep the \
                                 default policy (allow sched_setscheduler in the container's seccomp \
                                 profile, or set PROXY_SCHED_BATCH=off to silence this)"
                            );
                        }
                    }
                }
                main.await
            }
        })
        .map_err(|e| PoolError::Start(e.to_string()))?;

    let mut supervisor = Supervisor {
        shutdown,
        grace,
        failure: None,
        deadline: None,
    };

    // Wait until every executor thread has ended, or until the grace after a failure runs out.
    let abandoned = loop {
        let threads = handles.handles();
        let finished = threads.iter().filter(|h| h.is_finished()).count();
        if finished == threads.len() {
            break 0;
        }
        if supervisor.deadline.is_some_and(|d| Instant::now() >= d) {
            break threads.len() - finished;
        }
        // A thread that ended without entering `executor_main` never reports: glommio failed to build
        // its executor, and its siblings wait in the mesh join for it.
        if finished > started.load(Ordering::SeqCst) {
            supervisor.record(Failure::failed(
                None,
                "the executor could not be built".into(),
            ));
        }
        let mut poll = if started.load(Ordering::SeqCst) < threads.len() {
            SUPERVISOR_POLL_STARTING
        } else {
            SUPERVISOR_POLL_RUNNING
        };
        if let Some(d) = supervisor.deadline {
            poll = poll.min(d.saturating_duration_since(Instant::now()));
        }
        match report_rx.recv_timeout(poll) {
            Ok(report) => supervisor.on_report(report),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Every thread dropped its reporter: they are all exiting; let `is_finished` catch up.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(1))
            }
        }
    };

    if abandoned > 0 {
        // Dropping the handles detaches the stuck threads; the caller is about to exit anyway.
        drop(handles);
        // A deadline, hence `abandoned > 0`, is only ever set together with a failure.
        let failure = supervisor
            .failure
            .unwrap_or_else(|| Failure::failed(None, "executor stuck".into()));
        return Err(failure.into_error(abandoned));
    }

    let results = handles.join_all();
    // Reports sent from thread-local destructors are all in by now: join waited for those threads.
    while let Ok(report) = report_rx.try_recv() {
        supervisor.on_report(report);
    }
    for result in results {
        match result {
            Ok(()) => {}
            Err(GlommioError::BuilderError(BuilderErrorKind::ThreadPanic(payload))) => {
                let message = panic_message(&*payload);
                match &mut supervisor.failure {
                    // The thread-local report knew a panic happened, the join knows what it said.
                    Some(f) if f.panicked && f.message.is_none() => f.message = Some(message),
                    Some(_) => {}
                    None => supervisor.record(Failure::panicked(None, Some(message))),
                }
            }
            Err(err) => supervisor.record(Failure::failed(None, err.to_string())),
        }
    }
    match supervisor.failure {
        Some(failure) => Err(failure.into_error(0)),
        None => Ok(()),
    }
}

/// The main thread's view of the pool while it runs.
struct Supervisor {
    shutdown: Shutdown,
    grace: Duration,
    /// The first failure; later ones are usually consequences of it.
    failure: Option<Failure>,
    deadline: Option<Instant>,
}

impl Supervisor {
    fn on_report(&mut self, report: ExitReport) {
        if let Some(failure) = report.failure() {
            self.record(failure);
        }
    }

    fn record(&mut self, failure: Failure) {
        if self.failure.is_some() {
            return;
        }
        tracing::error!("{}; shutting the pool down", failure.clone().into_error(0));
        self.shutdown.trigger();
        self.deadline = Some(Instant::now() + self.grace);
        self.failure = Some(failure);
    }
}

/// Everything an executor thread needs; moved into it by `on_all_shards`.
async fn executor_main<M, F, Fut>(
    mesh: MeshBuilder<M, glommio::channels::channel_mesh::Full>,
    capacity: usize,
    watch: ShutdownWatch,
    report_tx: mpsc::Sender<ExitReport>,
    started: Arc<AtomicUsize>,
    f: F,
) where
    M: Send + 'static,
    F: Fn(CoreContext<M>) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    started.fetch_add(1, Ordering::SeqCst);
    // The guard lives in a thread local so that it reports even when a panic unwinds the whole
    // executor (a panicking spawned task does that), not only when our future completes.
    EXIT_GUARD.with(|guard| {
        *guard.borrow_mut() = Some(ExitGuard {
            tx: report_tx,
            core: None,
            outcome: None,
        })
    });
    let outcome = match Mesh::join(mesh, capacity, watch.clone()).await {
        // Shutdown came before every executor joined: nothing to run.
        Ok(None) => Outcome::Finished,
        Err(err) => Outcome::Failed(format!("joining the mesh: {err}")),
        Ok(Some(mesh)) => {
            let core = mesh.core();
            EXIT_GUARD.with(|guard| {
                if let Some(guard) = guard.borrow_mut().as_mut() {
                    guard.core = Some(core);
                }
            });
            let ctx = CoreContext {
                core,
                cores: mesh.cores(),
                mesh,
                shutdown: watch,
            };
            // Catching here gets the panic message to the caller; the default hook has already printed
            // it with its location.
            match AssertUnwindSafe(f(ctx)).catch_unwind().await {
                Ok(()) => Outcome::Finished,
                Err(payload) => Outcome::Panicked(Some(panic_message(&*payload))),
            }
        }
    };
    EXIT_GUARD.with(|guard| {
        if let Some(guard) = guard.borrow_mut().as_mut() {
            guard.outcome = Some(outcome);
        }
    });
}

thread_local! {
    static EXIT_GUARD: RefCell<Option<ExitGuard>> = const { RefCell::new(None) };
}

/// Reports how its executor thread ended when the thread's locals are destroyed.
struct ExitGuard {
    tx: mpsc::Sender<ExitReport>,
    core: Option<usize>,
    /// Set when `executor_main` returns; still `None` if the thread unwound past it.
    outcome: Option<Outcome>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or(Outcome::Panicked(None));
        // The supervisor may have given up on us already; nobody to tell then.
        let _ = self.tx.send(ExitReport {
            core: self.core,
            outcome,
        });
    }
}

struct ExitReport {
    core: Option<usize>,
    outcome: Outcome,
}

enum Outcome {
    Finished,
    /// The message, when we caught the panic ourselves.
    Panicked(Option<String>),
    Failed(String),
}

impl ExitReport {
    fn failure(self) -> Option<Failure> {
        match self.outcome {
            Outcome::Finished => None,
            Outcome::Panicked(message) => Some(Failure::panicked(self.core, message)),
            Outcome::Failed(message) => Some(Failure::failed(self.core, message)),
        }
    }
}

#[derive(Clone)]
struct Failure {
    core: Option<usize>,
    panicked: bool,
    message: Option<String>,
}

impl Failure {
    fn panicked(core: Option<usize>, message: Option<String>) -> Self {
        Self {
            core,
            panicked: true,
            message,
        }
    }

    fn failed(core: Option<usize>, message: String) -> Self {
        Self {
            core,
            panicked: false,
            message: Some(message),
        }
    }

    fn into_error(self, abandoned: usize) -> PoolError {
        let message = self
            .message
            .unwrap_or_else(|| "a task on it panicked (see the panic message above)".to_owned());
        if self.panicked {
            PoolError::ExecutorPanicked {
                core: self.core,
                message,
                abandoned,
            }
        } else {
            PoolError::ExecutorFailed {
                core: self.core,
                message,
                abandoned,
            }
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
