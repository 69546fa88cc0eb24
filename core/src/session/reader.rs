//! The reader side: one thread owns the port, digests what arrives and routes it — answers to
//! the command in progress, received messages to their client's queue, health changes to the
//! health record, everything else to the event queue.

use super::*;

impl Shared {
    // ---- reader side -----------------------------------------------------------------------

    pub(super) fn on_unit(&self, unit: Unit<'_>, asm: &mut Assembler) {
        match unit {
            Unit::Final(f) => {
                self.trace_with(Direction::Receive, || redact_text(final_text(&f)));
                let mut tx = self.tx.lock();
                if tx.active && tx.final_.is_none() && f == Final::Ok && tx.takes_data && !tx.prompt
                {
                    // A command that takes data succeeds only after its prompt and its data:
                    // an OK before the prompt is the late answer of an earlier command.
                    drop(tx);
                    self.stray_final(&f);
                    return;
                }
                if tx.active && tx.final_.is_none() {
                    if f == Final::Ok
                        && tx.completion == Some(Completion::ResultLine)
                        && tx.result.is_none()
                    {
                        // OK first: the result line will come later, possibly after other
                        // commands. Register its waiter now, under the tx lock, so it can't be missed.
                        let slot = Arc::new((Mutex::new(None), Condvar::new()));
                        if let Some(cause) = tx.lost {
                            // The connection was lost before this OK: no result line follows.
                            fill(&slot, SlotOutcome::Lost(cause));
                        } else {
                            self.pending.lock().push(Pending {
                                prefix: tx.prefix,
                                index: tx.index,
                                slot: slot.clone(),
                            });
                        }
                        tx.deferred = Some(slot);
                    }
                    tx.final_ = Some(f);
                    drop(tx);
                    self.tx_cv.notify_all();
                } else {
                    drop(tx);
                    self.stray_final(&f);
                }
            }
            Unit::Prompt => {
                self.trace(Direction::Receive, ">");
                self.awaiting_prompt.store(false, Ordering::SeqCst);
                self.tx.lock().prompt = true;
                self.tx_cv.notify_all();
            }
            Unit::Echo(l) => {
                self.echo_seen.store(true, Ordering::Relaxed);
                {
                    let mut tx = self.tx.lock();
                    if tx.active {
                        tx.echoed = true;
                    }
                }
                self.trace_with(Direction::Receive, || format!("(echo) {}", redact_line(l)));
            }
            Unit::Line(l) => {
                if !l.is_empty() {
                    self.trace_with(Direction::Receive, || redact_line(l));
                    self.on_line(l, asm);
                }
            }
            Unit::RxStart {
                client,
                topic_len,
                payload_len,
            } => {
                self.trace_with(Direction::Receive, || {
                    format!("+CMQTTRXSTART: {client},{topic_len},{payload_len}")
                });
                self.assembled(asm.start(client, topic_len, payload_len));
            }
            Unit::RxTopic { client, data } => {
                self.trace_with(Direction::Receive, || {
                    format!("+CMQTTRXTOPIC: {client},{} <topic>", data.len())
                });
                self.assembled(asm.topic(client, data));
            }
            Unit::RxPayload { client, data } => {
                self.trace_with(Direction::Receive, || {
                    format!("+CMQTTRXPAYLOAD: {client},{} <data>", data.len())
                });
                self.assembled(asm.payload(client, data));
            }
            Unit::RxEnd { client } => {
                self.trace_with(Direction::Receive, || format!("+CMQTTRXEND: {client}"));
                self.assembled(asm.end(client));
            }
            Unit::Invalid(l) => {
                let text = redact_line(l);
                self.trace_with(Direction::Receive, || format!("(invalid) {text}"));
                self.emit(Event::Malformed(format!(
                    "unusable received-message line {text:?}"
                )));
            }
        }
    }

    /// A final result code that no command took: the late answer of a command that timed out
    /// (or noise). While resynchronising that is expected and dropped; otherwise it is passed
    /// on as an event, and the next command resynchronises first: a second late answer may
    /// follow, and it must not be taken for that command's.
    pub(super) fn stray_final(&self, f: &Final) {
        self.link.stray_finals.fetch_add(1, Ordering::SeqCst);
        if self.link.resyncing.load(Ordering::SeqCst) {
            log::debug!(
                "cmqtt: a late answer dropped while resynchronising: {}",
                redact_text(final_text(f))
            );
            return;
        }
        self.mark_unsynced(None);
        if !self.opening.load(Ordering::SeqCst) {
            self.emit(Event::Unsolicited(redact_text(final_text(f))));
        }
    }

    /// Boot noise seen while the session opens: logged, not queued as news.
    pub(super) fn emit_quiet(&self, l: &[u8]) {
        log::debug!("cmqtt: at open: {}", redact_line(l));
    }

    pub(super) fn assembled(&self, a: Assembled) {
        match a {
            Assembled::Pending => {}
            Assembled::Message(m) => self.deliver(m),
            Assembled::Malformed(why) => {
                let why = redact_text(&why);
                if let Some(h) = self.link.warn_malformed.hit() {
                    log::warn!("cmqtt: {why}{}", h.note());
                }
                self.emit(Event::Malformed(why));
            }
        }
    }

    /// The digest options for what the reader holds now.
    pub(super) fn digest_options(&self, rx: &RxState) -> DigestOptions {
        DigestOptions {
            awaiting_prompt: self.awaiting_prompt.load(Ordering::SeqCst),
            max_block: rx.max_block,
            max_line: MAX_LINE,
        }
    }

    /// Digests what the reader holds from `pos` on, handling every unit, and drops what was
    /// used. With `lines`, length-counted blocks are not taken (the bytes held by an abandoned
    /// block: [`digest_lines`]) until a `+CMQTTRXSTART` begins a message of its own.
    pub(super) fn digest_held(&self, rx: &mut RxState, mut pos: usize, mut lines: bool) {
        let max_block = rx.max_block;
        let RxState { buf, asm, .. } = rx;
        loop {
            let opts = DigestOptions {
                awaiting_prompt: self.awaiting_prompt.load(Ordering::SeqCst),
                max_block,
                max_line: MAX_LINE,
            };
            let d = if lines {
                digest_lines(&buf[pos..], &opts)
            } else {
                digest(&buf[pos..], &opts)
            };
            match d {
                Digested::Incomplete { skip } => {
                    pos += skip;
                    break;
                }
                Digested::Unit { used, unit } => {
                    // `unit` borrows `buf`; handle it before moving on.
                    let used = used.max(1);
                    match unit {
                        Unit::Invalid(l) if lines && is_block_header(l) => {
                            // The rest of a message already reported lost.
                            self.trace_with(Direction::Receive, || {
                                format!("(after lost bytes) {}", redact_line(l))
                            });
                        }
                        unit => {
                            if matches!(unit, Unit::RxStart { .. }) {
                                lines = false;
                            }
                            let run = catch_unwind(AssertUnwindSafe(|| self.on_unit(unit, asm)));
                            if run.is_err() {
                                if let Some(h) = self.link.warn_internal.hit() {
                                    log::error!(
                                        "cmqtt: internal error handling a unit{}",
                                        h.note()
                                    );
                                }
                            }
                        }
                    }
                    pos += used;
                }
            }
        }
        buf.drain(..pos);
    }

    /// Abandons a block that is still short of its announced length (see
    /// [`crate::Profile::block_idle`]): the message it belonged to is reported lost and dropped,
    /// and the bytes it held are read again as lines. `false` when no block is pending.
    pub(super) fn abandon_block(&self, rx: &mut RxState) -> bool {
        let opts = self.digest_options(rx);
        let Some(p) = pending_block(&rx.buf, &opts) else {
            return false;
        };
        let why = rx
            .asm
            .lost(p.client, p.topic, &rx.buf[p.data_start..], p.announced);
        let why = redact_text(&why);
        if let Some(h) = self.link.warn_lost_block.hit() {
            log::warn!("cmqtt: {why}{}", h.note());
        }
        self.emit(Event::Malformed(why));
        self.digest_held(rx, p.data_start, true);
        true
    }

    /// The reader saw no byte for a read timeout: a block pending for `block_idle` is
    /// abandoned.
    /// How long until a received block still short of its length counts as abandoned; `None`
    /// when no block is pending (the reader may sleep until bytes come).
    pub(super) fn block_deadline(&self) -> Option<std::time::Duration> {
        let rx = self.link.rx.lock();
        let opts = self.digest_options(&rx);
        pending_block(&rx.buf, &opts)?;
        let idle = self.profile.read().block_idle;
        Some(idle.saturating_sub(self.link.since_rx()))
    }

    pub(super) fn idle_tick(&self) {
        if self.link.since_rx() < self.profile.read().block_idle {
            return;
        }
        let mut rx = self.link.rx.lock();
        while self.abandon_block(&mut rx) {}
    }

    /// What was counted but not logged, when the reader ends.
    pub(super) fn log_summary(&self) {
        for (what, r) in [
            ("malformed received messages", &self.link.warn_malformed),
            (
                "received messages lost to missing bytes",
                &self.link.warn_lost_block,
            ),
            ("internal errors handling a unit", &self.link.warn_internal),
        ] {
            let (total, unlogged) = r.unlogged();
            if unlogged > 0 {
                log::info!(
                    "cmqtt: session summary: {total} {what} ({unlogged} not logged one by one)"
                );
            }
        }
    }

    pub(super) fn on_line(&self, l: &[u8], asm: &mut Assembler) {
        // Always unsolicited, whatever command is running.
        if let Some(args) = l.strip_prefix(b"+CMQTTCONNLOST:") {
            if let Some((Some(c), cause)) = parse_result_args(args) {
                self.connection_lost(c as u8, cause as u8);
                return;
            }
        }
        if l.starts_with(b"+CMQTTNONET") {
            let was = self.health.record_no_network();
            self.poke_receivers();
            for c in 0..2u8 {
                if was[c as usize] {
                    self.fail_pending_of(c, SlotOutcome::Lost(3));
                }
            }
            self.emit(Event::NoNetwork);
            return;
        }
        if let Some(args) = l.strip_prefix(b"+CMQTTPING:") {
            if let Some((Some(c), code)) = parse_result_args(args) {
                self.emit(Event::PingFailed {
                    client: c as u8,
                    code,
                });
                return;
            }
        }
        if l == b"RDY" {
            if self.opening.load(Ordering::SeqCst) {
                // The boot that precedes this session: nothing of ours was lost.
                self.emit_quiet(l);
                return;
            }
            self.health.record_restart();
            self.poke_receivers();
            for p in self.pending.lock().drain(..) {
                fill(&p.slot, SlotOutcome::Restarted);
            }
            for why in asm.reset() {
                self.emit(Event::Malformed(why));
            }
            // A restarted modem has echo on again.
            self.emit(Event::ModemRestarted);
            return;
        }
        // A result line somebody is waiting for (its OK came first).
        if let Some(slot) = self.take_pending(l) {
            fill(&slot.0, SlotOutcome::Code(slot.1));
            return;
        }
        {
            let mut tx = self.tx.lock();
            let late = late_code_possible(&tx);
            if (tx.active && tx.final_.is_none()) || late {
                let prefixed = !tx.prefix.is_empty() && l.starts_with(tx.prefix.as_bytes());
                if prefixed && tx.completion == Some(Completion::ResultLine) {
                    let args = &l[tx.prefix.len()..];
                    if let Some((idx, code)) = parse_result_args(args) {
                        if idx.map(|i| i as u8) == tx.index {
                            tx.result = Some(code);
                            tx.result_at = Some(Instant::now());
                            drop(tx);
                            self.tx_cv.notify_all();
                            return;
                        }
                    }
                }
                if !late && (prefixed || (tx.any_line && !is_boot_noise(l))) {
                    tx.lines.push(l.to_vec());
                    return;
                }
            }
        }
        // Redacted: noise before an echoed connect line must not carry its password out.
        let text = redact_line(l);
        if self.opening.load(Ordering::SeqCst) {
            // Before the session is up (boot banner, our own echoed wake-up bytes): not news.
            self.emit_quiet(l);
        } else if is_boot_noise(l) {
            self.emit(Event::Boot(text));
        } else {
            self.emit(Event::Unsolicited(text));
        }
    }

    pub(super) fn take_pending(&self, l: &[u8]) -> Option<(Slot, u32)> {
        let mut pending = self.pending.lock();
        let pos = pending.iter().position(|p| {
            l.strip_prefix(p.prefix.as_bytes())
                .and_then(parse_result_args)
                .is_some_and(|(idx, _)| idx.map(|i| i as u8) == p.index)
        })?;
        let p = pending.remove(pos);
        let (_, code) = l
            .strip_prefix(p.prefix.as_bytes())
            .and_then(parse_result_args)?;
        Some((p.slot, code))
    }

    pub(super) fn fail_pending_of(&self, client: u8, outcome: SlotOutcome) {
        let mut pending = self.pending.lock();
        pending.retain(|p| {
            if p.index == Some(client) {
                fill(&p.slot, outcome.clone());
                false
            } else {
                true
            }
        });
    }

    pub(super) fn connection_lost(&self, client: u8, cause: u8) {
        if (client as usize) < 2 {
            // State first: whatever happens to the events below, the loss is on record.
            let was = self.health.record_lost(client, cause);
            self.poke_receivers();
            if was {
                // A command of this client not yet answered OK (a publish, a subscribe) will
                // not get its result line either.
                let mut tx = self.tx.lock();
                if tx.active && tx.index == Some(client) && tx.final_.is_none() {
                    tx.lost = Some(cause);
                }
            }
            // A publish or subscribe waiting for the broker's answer will not get it.
            self.fail_pending_of(client, SlotOutcome::Lost(cause));
            if self.callbacks.on_connection_lost[client as usize].is_set() {
                self.lost.push((client, cause));
            }
        }
        self.emit(Event::ConnectionLost { client, cause });
    }

    /// Drops bytes that are the modem echoing data we sent after a prompt.
    pub(super) fn skip_echo<'b>(&self, mut bytes: &'b [u8]) -> &'b [u8] {
        let mut g = self.echo_skip.lock();
        if let Some((data, pos)) = g.as_mut() {
            // The prompt is "> " on some firmware: when the read split it after '>', the prompt
            // was taken alone and its space comes first, before the echo of the data.
            if *pos == 0 && bytes.first() == Some(&b' ') && data.first() != Some(&b' ') {
                bytes = &bytes[1..];
            }
            while let (Some(&b), Some(&e)) = (bytes.first(), data.get(*pos)) {
                if b != e {
                    *g = None;
                    return bytes;
                }
                bytes = &bytes[1..];
                *pos += 1;
            }
            if *pos >= data.len() {
                *g = None;
            }
        }
        bytes
    }
}

pub(super) fn final_text(f: &Final) -> &str {
    match f {
        Final::Ok => "OK",
        Final::Error => "ERROR",
        Final::CmeError(s) | Final::CmsError(s) => s,
    }
}
pub(super) fn is_boot_noise(l: &[u8]) -> bool {
    l == b"RDY"
        || l == b"SMS DONE"
        || l == b"PB DONE"
        || l.starts_with(b"+CPIN: READY")
        || l.starts_with(b"*ATREADY")
        || l.starts_with(b"+ATREADY")
}

pub(super) fn reader_loop(
    shared: Arc<Shared>,
    mut port: Box<dyn Read + Send>,
    readiness: Option<Arc<crate::readiness::Readiness>>,
) {
    use crate::readiness::Ready;
    let mut chunk = vec![0u8; 8192];
    loop {
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
        }
        if let Some(r) = &readiness {
            // Sleep until bytes come; only a received block left incomplete needs a timeout.
            match r.wait(shared.block_deadline()) {
                Ok(Ready::Port) => {}
                Ok(Ready::Woken) => continue,
                Ok(Ready::Timeout) => {
                    shared.idle_tick();
                    continue;
                }
                Err(e) => {
                    log::warn!("cmqtt: poll on the port failed ({e}); reading with timeouts");
                    // Fall back to the read timeout loop for this session.
                    return reader_loop(shared, port, None);
                }
            }
        }
        let n = match port.read(&mut chunk) {
            Ok(0) => {
                shared.close("the port reached end of file (device or peer gone)");
                break;
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::Interrupted
                ) =>
            {
                shared.idle_tick();
                continue;
            }
            Err(e) => {
                if !shared.shutdown.load(Ordering::SeqCst) {
                    log::error!("cmqtt: reading the port failed: {e}");
                }
                shared.close(&format!("reading the port failed: {e}"));
                break;
            }
        };
        shared
            .counters
            .bytes_in
            .fetch_add(n as u64, Ordering::Relaxed);
        shared.link.touch();
        let mut rx = shared.link.rx.lock();
        let bytes = shared.skip_echo(&chunk[..n]);
        rx.buf.extend_from_slice(bytes);
        shared.digest_held(&mut rx, 0, false);
    }
    shared.log_summary();
}
