//! Callbacks and delivery: the streams (each client's messages, the modem's events) are bounded
//! queues; a callback is the dispatch thread draining its queue (see [`crate::dispatch`]).

use super::*;

impl Shared {
    // ---- callbacks and delivery (the streams are in `crate::dispatch`) ---------------------

    pub(crate) fn set_on_message(&self, client: u8, owner: u64, cb: MessageCallback) {
        let on_dispatch = self.dispatch_thread.is_current();
        self.callbacks.on_message[client as usize & 1].set(owner, cb, on_dispatch);
        // Messages already queued go to the new callback.
        self.wake.notify();
    }

    pub(crate) fn set_on_message_nowait(&self, client: u8, owner: u64, cb: MessageCallback) {
        self.callbacks.on_message[client as usize & 1].set(owner, cb, true);
        self.wake.notify();
    }

    pub(crate) fn clear_client_callbacks_nowait(&self, client: u8, owner: u64) {
        self.callbacks.on_message[client as usize & 1].clear(owner, true);
        self.callbacks.on_connection_lost[client as usize & 1].clear(owner, true);
    }

    pub(crate) fn set_on_connection_lost(
        &self,
        client: u8,
        owner: u64,
        cb: ConnectionLostCallback,
    ) {
        let on_dispatch = self.dispatch_thread.is_current();
        self.callbacks.on_connection_lost[client as usize & 1].set(owner, cb, on_dispatch);
    }

    pub(crate) fn set_on_event(&self, owner: u64, cb: EventCallback) {
        let on_dispatch = self.dispatch_thread.is_current();
        self.callbacks.on_event.set(owner, cb, on_dispatch);
        self.wake.notify();
    }

    /// Clears `client`'s callbacks if `owner` installed them; see [`CallbackSlot::clear`].
    pub(crate) fn clear_client_callbacks(&self, client: u8, owner: u64) {
        let on_dispatch = self.dispatch_thread.is_current();
        self.callbacks.on_message[client as usize & 1].clear(owner, on_dispatch);
        self.callbacks.on_connection_lost[client as usize & 1].clear(owner, on_dispatch);
    }

    pub(crate) fn clear_on_event(&self, owner: u64) {
        let on_dispatch = self.dispatch_thread.is_current();
        self.callbacks.on_event.clear(owner, on_dispatch);
    }

    /// Wakes [`crate::Client::next_message`] waiters: the health changed or a wait was
    /// interrupted.
    pub(super) fn poke_receivers(&self) {
        for q in &self.messages {
            q.poke();
        }
    }

    pub(super) fn queue_event(&self, e: Event) {
        // Health news is never evicted by data: the oldest data event makes room.
        let pushed = self.events.push_keep(e, |old| !old.is_control());
        if let Pushed::Dropped(n) = pushed {
            if n == 1 || n.is_power_of_two() {
                log::warn!(
                    "cmqtt: event queue full: {n} event(s) dropped so far; read events with Modem::recv_event or set Modem::on_event"
                );
            }
        }
    }

    /// An event for the modem-level stream (the queue, or the `on_event` callback that drains it).
    pub(super) fn emit(&self, e: Event) {
        self.queue_event(e);
    }

    /// The next event of the modem-level stream; an overflow of the queue is reported first.
    pub(crate) fn next_event(&self, timeout: Option<std::time::Duration>) -> Option<Event> {
        let dropped = self.events.dropped();
        if dropped > self.events_reported.swap(dropped, Ordering::SeqCst) {
            return Some(Event::Overflow {
                queue: self.events.name(),
                dropped,
            });
        }
        match timeout {
            Some(t) if t.is_zero() => self.events.try_pop(),
            t => self.events.pop(t),
        }
    }

    pub(super) fn deliver(&self, m: Message) {
        self.counters.messages.fetch_add(1, Ordering::Relaxed);
        self.push_message(m);
    }

    pub(super) fn push_message(&self, m: Message) {
        let q = &self.messages[m.client as usize & 1];
        if let Pushed::Dropped(n) = q.push(m) {
            if n == 1 || n.is_power_of_two() {
                log::warn!(
                    "cmqtt: {} full: {n} message(s) dropped so far; receive faster (a callback that returns sooner) or raise the queue capacity",
                    q.name()
                );
            }
            self.queue_event(Event::Overflow {
                queue: q.name(),
                dropped: n,
            });
        }
    }
}

/// The dispatch thread: drains each stream that has a callback into it, control first, one
/// item per stream per round (so a busy client cannot starve the other), and sleeps when there
/// is nothing to do.
pub(super) fn dispatch_loop(shared: Arc<Shared>) {
    shared.dispatch_thread.set(std::thread::current().id());
    loop {
        if !dispatch_round(&shared) {
            if shared.shutdown.load(Ordering::SeqCst) {
                break;
            }
            shared.wake.wait();
        }
    }
}

pub(super) fn dispatch_round(shared: &Shared) -> bool {
    let mut did = false;
    let cbs = &shared.callbacks;
    // Control first: every lost connection before any message.
    while let Some((c, cause)) = shared.lost.try_pop() {
        did = true;
        if let Some(run) = cbs.on_connection_lost[c as usize & 1].enter() {
            guarded(|| (run.cb)(c, cause));
        }
    }
    for (i, slot) in cbs.on_message.iter().enumerate() {
        if let Some(run) = slot.enter() {
            if let Some(m) = shared.messages[i].try_pop() {
                did = true;
                guarded(|| (run.cb)(&m));
            }
        }
    }
    if let Some(run) = cbs.on_event.enter() {
        if let Some(e) = shared.next_event(Some(std::time::Duration::ZERO)) {
            did = true;
            guarded(|| (run.cb)(&e));
        }
    }
    did
}
