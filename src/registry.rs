//! The worker registry: how a registered worker is started, and the running
//! workers the rest of the service talks to. The list itself is in
//! [`crate::startup::registrations`]: one line per worker.

use actix::{Recipient, Supervisor};
use blog_actors::messages::{HandleEvent, Rebuild};
use blog_actors::metrics::ActorMetrics;
use blog_actors::supervision::WorkerActor;
use blog_actors::supervision::Worker;
use blog_actors::worker::{WorkerKind, Workers};

use crate::configuration::Settings;
use crate::adapters::Adapters;

/// What a worker may be built from.
pub struct Ports<'a> {
    pub settings: &'a Settings,
    pub adapters: &'a Adapters,
    /// This process's name among the instances sharing a store (claims, leases).
    pub instance: &'a str,
}

/// Builds a registered worker from the ports and starts it under its supervisor.
type Starter = Box<dyn FnOnce(&Ports<'_>, ActorMetrics) -> RunningWorker>;

/// One worker on the list: who it is, and how to build and start it.
pub struct Registration {
    kind: WorkerKind,
    start: Starter,
}

impl Registration {
    /// Registers `W`, built by `make` from the ports once they are open.
    pub fn of<W: Worker>(make: impl FnOnce(&Ports<'_>) -> W + 'static) -> Self {
        let start = move |ports: &Ports<'_>, metrics: ActorMetrics| {
            let worker = make(ports);
            let rebuild_deadline = ports.settings.rebuild_timeout;
            let addr = Supervisor::start(move |_| WorkerActor::new(worker, metrics).with_rebuild_deadline(rebuild_deadline));
            RunningWorker { kind: W::kind(), events: addr.clone().recipient(), rebuild: addr.recipient() }
        };
        Self { kind: W::kind(), start: Box::new(start) }
    }

    pub fn kind(&self) -> WorkerKind {
        self.kind
    }

    /// The kinds on a list, checked to be distinct.
    pub fn kinds(list: &[Registration]) -> anyhow::Result<Workers> {
        Workers::new(list.iter().map(Registration::kind)).map_err(anyhow::Error::msg)
    }

    /// Builds the worker and starts it under its supervisor.
    pub fn start(self, ports: &Ports<'_>, metrics: ActorMetrics) -> RunningWorker {
        (self.start)(ports, metrics)
    }
}

/// A started worker's addresses; valid across its restarts.
#[derive(Clone)]
pub struct RunningWorker {
    pub kind: WorkerKind,
    /// Where the queue reader sends its deliveries.
    pub events: Recipient<HandleEvent>,
    /// Where an admin rebuild is asked for.
    pub rebuild: Recipient<Rebuild>,
}
