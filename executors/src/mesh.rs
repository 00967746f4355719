//! A typed, bounded, all-to-all message mesh between the pool's executors.
//!
//! Contract:
//! - One [`Mesh<M>`] per executor, built by the pool before the core's closure runs; clone it freely
//!   *within* that executor (it is an `Rc`).
//! - `core` ids are `0..cores`, the same on every executor (glommio's mesh order), and are the ids
//!   [`crate::shard_for`] returns.
//! - Every directed pair of cores has its own bounded channel of `mesh_capacity` messages; messages
//!   from one core to another arrive in the order they were sent. A core can message itself: that goes
//!   through a local queue of the same capacity, never through a cross-thread channel.
//! - [`Mesh::send_to`] waits while the target's channel is full: a core that stops receiving pushes back
//!   on its senders instead of growing their memory. A task on core A that waits on a full channel to B
//!   while B waits on a full channel to A deadlocks both; keep one task per core draining
//!   [`Mesh::recv`] and never block that task on a `send_to`.
//! - A send to a core that has left fails with [`MeshError::Closed`] once that core's executor has
//!   torn down; while it is still tearing down, the message may be accepted and then dropped unread.
//! - [`Mesh::recv`] returns `None` once shutdown is triggered (messages still queued are dropped with the
//!   mesh), or, with more than one core, once every other core has dropped its mesh and nothing from this
//!   core itself is queued. A single-core mesh only ends at shutdown, since it is its own peer.
//!
//! Internals: glommio's `channel_mesh` gives one shared (cross-thread) channel per directed pair. Each
//! incoming channel gets a small forwarding task that moves messages into one local bounded queue, so
//! `recv` waits on one queue instead of re-polling N channels (glommio stores a fresh waker for each
//! poll of an empty shared channel and only frees them when a message arrives, so re-polling quiet
//! channels would leak wakers).

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

use futures_lite::future;
use glommio::channels::channel_mesh::{Full, MeshBuilder};
use glommio::channels::channel_mesh::{Receivers, Senders};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::{GlommioError, ResourceType};

use crate::shutdown::ShutdownWatch;

/// Why a message was not sent. The message itself is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    /// `core` is not in `0..cores`.
    #[error("core {core} is not in the mesh of {cores} cores")]
    NoSuchCore { core: usize, cores: usize },
    /// The target's channel is full (only from `try_send_to`).
    #[error("mesh channel to core {core} is full")]
    Full { core: usize },
    /// The target core dropped its mesh: it finished or panicked.
    #[error("core {core} has left the mesh")]
    Closed { core: usize },
}

/// This executor's handle on the mesh. See the module docs for the contract.
pub struct Mesh<M: Send + 'static> {
    inner: Rc<Inner<M>>,
}

struct Inner<M: Send + 'static> {
    core: usize,
    cores: usize,
    senders: Senders<M>,
    /// Messages this core sends itself.
    self_tx: LocalSender<M>,
    self_rx: LocalReceiver<M>,
    /// Everything the forwarding tasks moved in from the other cores, tagged with the sender.
    peer_rx: LocalReceiver<(usize, M)>,
    /// Never carries a message: the shutdown task drops its sender, which ends every pending `recv`.
    stop_rx: LocalReceiver<()>,
    stopped: Rc<Cell<bool>>,
}

impl<M: Send + 'static> Clone for Mesh<M> {
    fn clone(&self) -> Self {
        Self {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<M: Send + 'static> fmt::Debug for Mesh<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mesh")
            .field("core", &self.inner.core)
            .field("cores", &self.inner.cores)
            .finish_non_exhaustive()
    }
}

impl<M: Send + 'static> Mesh<M> {
    /// Joins `builder` from inside an executor. `Ok(None)` when shutdown came first (a peer that never
    /// joins, because it failed to start, would otherwise keep everyone waiting here forever).
    pub(crate) async fn join(
        builder: MeshBuilder<M, Full>,
        capacity: usize,
        shutdown: ShutdownWatch,
    ) -> Result<Option<Self>, GlommioError<()>> {
        let joined = future::or(async { Some(builder.join().await) }, async {
            shutdown.wait().await;
            None
        })
        .await;
        match joined {
            None => Ok(None),
            Some(Err(err)) => Err(err),
            Some(Ok((senders, receivers))) => {
                Ok(Some(Self::new(senders, receivers, capacity, shutdown)))
            }
        }
    }

    fn new(
        senders: Senders<M>,
        mut receivers: Receivers<M>,
        capacity: usize,
        shutdown: ShutdownWatch,
    ) -> Self {
        let core = senders.peer_id();
        let cores = senders.nr_consumers();
        let (self_tx, self_rx) = local_channel::new_bounded(capacity);
        let (peer_tx, peer_rx) = local_channel::new_bounded(capacity);
        // A LocalSender cannot be cloned; sharing it keeps the queue open until the last forwarder ends.
        let peer_tx = Rc::new(peer_tx);
        for (from, rx) in receivers.streams() {
            let tx = Rc::clone(&peer_tx);
            glommio::spawn_local(async move {
                // Ends when the peer drops its mesh (rx yields None) or when ours is gone (send fails).
                while let Some(msg) = rx.recv().await {
                    if tx.send((from, msg)).await.is_err() {
                        break;
                    }
                }
            })
            .detach();
        }
        drop(peer_tx);

        let (stop_tx, stop_rx) = local_channel::new_bounded::<()>(1);
        let stopped = Rc::new(Cell::new(false));
        let flag = Rc::clone(&stopped);
        glommio::spawn_local(async move {
            shutdown.wait().await;
            flag.set(true);
            drop(stop_tx);
        })
        .detach();

        Self {
            inner: Rc::new(Inner {
                core,
                cores,
                senders,
                self_tx,
                self_rx,
                peer_rx,
                stop_rx,
                stopped,
            }),
        }
    }

    /// This executor's core id.
    pub fn core(&self) -> usize {
        self.inner.core
    }

    /// Number of cores in the mesh.
    pub fn cores(&self) -> usize {
        self.inner.cores
    }

    /// Sends `msg` to `core` (this core included), waiting while its channel is full.
    pub async fn send_to(&self, core: usize, msg: M) -> Result<(), MeshError> {
        let inner = &*self.inner;
        self.check_core(core)?;
        if core == inner.core {
            // The receiver lives in `inner` too, so this only fails if glommio changes its contract.
            return inner
                .self_tx
                .send(msg)
                .await
                .map_err(|_| MeshError::Closed { core });
        }
        inner
            .senders
            .send_to(core, msg)
            .await
            .map_err(|err| classify(core, inner.cores, err))
    }

    /// Sends `msg` to `core` (this core included) if its channel has room now.
    pub fn try_send_to(&self, core: usize, msg: M) -> Result<(), MeshError> {
        let inner = &*self.inner;
        self.check_core(core)?;
        let result = if core == inner.core {
            inner.self_tx.try_send(msg)
        } else {
            inner.senders.try_send_to(core, msg)
        };
        result.map_err(|err| classify(core, inner.cores, err))
    }

    /// Sends a clone of `msg` to every *other* core, one after another, waiting on full channels.
    /// Returns how many cores it reached (cores that left the mesh are skipped).
    pub async fn broadcast(&self, msg: M) -> usize
    where
        M: Clone,
    {
        let me = self.inner.core;
        let mut peers = (0..self.inner.cores).filter(|&c| c != me).peekable();
        let mut msg = Some(msg);
        let mut reached = 0;
        while let Some(core) = peers.next() {
            // The last peer gets the original: one clone per peer but the last.
            let one = if peers.peek().is_some() {
                msg.clone()
            } else {
                msg.take()
            };
            let Some(one) = one else { break };
            match self.send_to(core, one).await {
                Ok(()) => reached += 1,
                Err(err) => tracing::debug!(from = me, "mesh broadcast skipped: {err}"),
            }
        }
        reached
    }

    /// The next message from any core, as `(from_core, msg)`; `None` when the mesh has ended (see the
    /// module docs). Fair between this core's own queue and the others'.
    pub async fn recv(&self) -> Option<(usize, M)> {
        let inner = &*self.inner;
        if inner.stopped.get() {
            return None;
        }
        let stop = async {
            // Only returns when the shutdown task dropped the sender.
            let _ = inner.stop_rx.recv().await;
            None
        };
        let own = async { inner.self_rx.recv().await.map(|msg| (inner.core, msg)) };
        let peers = async {
            match inner.peer_rx.recv().await {
                Some(tagged) => Some(tagged),
                // Every other core is gone. Let `own` deliver what this core still queued for itself;
                // a single-core mesh never ends this way.
                None if inner.cores == 1 || inner.self_tx.len() > 0 => future::pending().await,
                None => None,
            }
        };
        future::or(stop, future::race(own, peers)).await
    }

    fn check_core(&self, core: usize) -> Result<(), MeshError> {
        if core < self.inner.cores {
            Ok(())
        } else {
            Err(MeshError::NoSuchCore {
                core,
                cores: self.inner.cores,
            })
        }
    }
}

fn classify<M>(core: usize, cores: usize, err: GlommioError<M>) -> MeshError {
    match err {
        GlommioError::WouldBlock(ResourceType::Channel(_)) => MeshError::Full { core },
        GlommioError::Closed(ResourceType::Channel(_)) => MeshError::Closed { core },
        // glommio reports an out-of-range or self index as InvalidInput; we checked both already.
        _ => MeshError::NoSuchCore { core, cores },
    }
}
