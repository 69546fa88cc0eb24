//! Transactions: one AT command at a time on the write side, its answer (final result code,
//! result line before or after `OK`, prompt and data), resynchronisation after a timeout, and
//! asynchronous results matched to their waiters.

use super::*;

impl Shared {
    // ---- transactions ----------------------------------------------------------------------

    /// Runs one command to completion (its result line included).
    ///
    /// After a command timed out (or was interrupted) its answer may still come: the session
    /// resynchronises before the next command (see [`Shared::resync`]), so that no late answer
    /// is ever taken for a new command's.
    pub(crate) fn execute(&self, req: &Request<'_>) -> Result<Response> {
        let guard = self.cmd.lock();
        if let Some(r) = self.closed_reason() {
            return Err(Error::Closed(r));
        }
        // A bare `AT` is itself the probe (the open's sync loop): drain, then send it.
        let probe = req.line == "AT" && req.data.is_none();
        if self.link.unsynced.lock().is_some() {
            self.resync(probe)?;
        }
        let strays = self.link.stray_finals.load(Ordering::SeqCst);
        let outcome = self.transact(req);
        if probe && outcome.is_ok() && self.link.stray_finals.load(Ordering::SeqCst) == strays {
            *self.link.unsynced.lock() = None;
        }
        drop(guard);
        match outcome? {
            Phase1::Done(resp) => Ok(resp),
            Phase1::Deferred(slot, lines, deadline) => self.wait_slot(req, &slot, deadline, lines),
        }
    }

    /// One command line (and its data) and its answer, up to the final result code; the caller
    /// holds `cmd`. A timeout or an interruption leaves the session unsynced.
    pub(super) fn transact(&self, req: &Request<'_>) -> Result<Phase1> {
        // A received block cut short must not swallow this command's answer.
        self.settle_block();
        {
            let mut tx = self.tx.lock();
            *tx = TxState {
                active: true,
                prefix: req.prefix,
                any_line: req.any_line,
                completion: Some(req.completion),
                index: req.index,
                takes_data: req.data.is_some(),
                ..TxState::default()
            };
        }
        let outcome = self.run(req);
        {
            let mut tx = self.tx.lock();
            tx.active = false;
            tx.deferred = None;
        }
        if matches!(&outcome, Err(Error::Timeout { .. } | Error::Io(_))) {
            // The answer may still come, late: it must not be taken for the next command's.
            self.mark_unsynced(None);
        }
        // A prompt that may still come is recognised as one until it has been satisfied.
        let fill = self
            .link
            .unsynced
            .lock()
            .is_some_and(|u| u.prompt_fill.is_some());
        self.awaiting_prompt.store(fill, Ordering::SeqCst);
        outcome
    }

    pub(super) fn mark_unsynced(&self, prompt_fill: Option<usize>) {
        let mut u = self.link.unsynced.lock();
        let u = u.get_or_insert_with(Unsynced::default);
        if prompt_fill.is_some() {
            u.prompt_fill = prompt_fill;
        }
    }

    /// Gets back in step with the modem after a command timed out or was interrupted: waits
    /// until the line is quiet (late answers arrive and are dropped), satisfies a `>` prompt
    /// that may still be pending with as many filler bytes (`\r`) as it announced (in command
    /// mode they are empty lines, which the modem ignores), then sends `AT` until its `OK` is
    /// followed by no other final result within `resync_quiet` — a late `OK` taken for the
    /// probe's own shows up as a second one. With `probe_only` (the command to send is `AT`
    /// itself) only the draining and the prompt are done here.
    pub(super) fn resync(&self, probe_only: bool) -> Result<()> {
        let (quiet, timeout) = {
            let p = self.profile.read();
            (p.resync_quiet, p.command_timeout)
        };
        let fill = self
            .link
            .unsynced
            .lock()
            .as_mut()
            .and_then(|u| u.prompt_fill.take());
        log::debug!("cmqtt: resynchronising with the modem after a timeout");
        self.link.resyncing.store(true, Ordering::SeqCst);
        let r = (|| {
            self.drain_quiet(quiet);
            if let Some(n) = fill {
                self.trace_with(Direction::Send, || {
                    format!("<{n} filler bytes for a prompt that may still be pending>")
                });
                self.write_all(&vec![b'\r'; n])?;
                self.awaiting_prompt.store(false, Ordering::SeqCst);
                self.drain_quiet(quiet);
            }
            if probe_only {
                return Ok(());
            }
            let at = Request::new("AT", "AT".into(), timeout);
            for attempt in 0..RESYNC_TRIES {
                if attempt > 0 {
                    self.drain_quiet(quiet);
                }
                let strays = self.link.stray_finals.load(Ordering::SeqCst);
                match self.transact(&at) {
                    Ok(_) => {
                        // Its own OK, or a late one? A second final within `quiet` tells.
                        self.drain_quiet(quiet);
                        if self.link.stray_finals.load(Ordering::SeqCst) == strays {
                            *self.link.unsynced.lock() = None;
                            return Ok(());
                        }
                    }
                    Err(e @ (Error::Closed(_) | Error::Io(_))) => return Err(e),
                    // No answer at all: the modem is busy or gone; the caller hears of it now
                    // and the next command tries again.
                    Err(Error::Timeout { .. }) => break,
                    // ERROR: noise glued to our AT; again.
                    Err(_) => {}
                }
            }
            Err(Error::Timeout {
                command: "AT",
                timeout,
            })
        })();
        self.link.resyncing.store(false, Ordering::SeqCst);
        if let Err(e) = &r {
            log::debug!("cmqtt: resynchronising failed: {e}");
        }
        r
    }

    /// Waits until no byte has come for `quiet` (counted from now at the earliest), at most
    /// ten times `quiet` (a line that never goes quiet is not waited for forever).
    pub(super) fn drain_quiet(&self, quiet: Duration) {
        let start = Instant::now();
        let end = saturating_add(start, quiet.saturating_mul(10));
        loop {
            if self.closed_reason().is_some() {
                return;
            }
            let since = self.link.since_rx().min(start.elapsed());
            let now = Instant::now();
            if since >= quiet || now >= end {
                return;
            }
            std::thread::sleep((quiet - since).min(end - now));
        }
    }

    /// Before a command is sent: a received block still short of its announced length is
    /// either still arriving (wait for it) or lost bytes (the line went quiet for
    /// `block_idle`): then it is abandoned, so that it cannot swallow the answer. The wait ends
    /// when the block completes or the line goes quiet, whichever comes first.
    pub(super) fn settle_block(&self) {
        loop {
            let wait = {
                let mut rx = self.link.rx.lock();
                let opts = self.digest_options(&rx);
                if pending_block(&rx.buf, &opts).is_none() {
                    return;
                }
                let idle = self.profile.read().block_idle;
                let since = self.link.since_rx();
                if since >= idle || self.closed_reason().is_some() {
                    while self.abandon_block(&mut rx) {}
                    return;
                }
                idle - since
            };
            std::thread::sleep(wait.min(Duration::from_millis(20)));
        }
    }

    pub(super) fn run(&self, req: &Request<'_>) -> Result<Phase1> {
        self.awaiting_prompt
            .store(req.data.is_some(), Ordering::SeqCst);
        self.trace(Direction::Send, req.trace_text());
        self.write_line(&req.line)?;
        let profile_timeout = self.profile.read().command_timeout;
        if let Some(data) = &req.data {
            let deadline = deadline_after(profile_timeout);
            let mut tx = self.tx.lock();
            loop {
                if tx.prompt {
                    break;
                }
                if tx.final_.is_some() {
                    // Refused before the prompt (e.g. "+CMQTTTOPIC: 0,11" then ERROR).
                    self.wait_late_code(req, &mut tx);
                    return self.finish(req, &mut tx);
                }
                if let Some(r) = self.closed_reason() {
                    return Err(Error::Closed(r));
                }
                if tx.interrupted {
                    // The prompt may still come and wait for the data.
                    self.mark_unsynced(Some(data.len()));
                    return Err(interrupted(req.name));
                }
                if self.tx_cv.wait_until(&mut tx, deadline).timed_out() && !tx.prompt {
                    if tx.final_.is_some() {
                        continue;
                    }
                    // The prompt may still come and wait for the data.
                    self.mark_unsynced(Some(data.len()));
                    return Err(Error::Timeout {
                        command: req.name,
                        timeout: profile_timeout,
                    });
                }
            }
            // Only when this very command was echoed: an echo seen once (at boot, before
            // ATE0) must not make us skip answers that happen to equal the data.
            let echoed = tx.echoed;
            drop(tx);
            self.trace_with(Direction::Send, || {
                format!("<{} bytes of data>", data.len())
            });
            if echoed {
                *self.echo_skip.lock() = Some((data.to_vec(), 0));
            }
            self.write_all(data)?;
        }
        let sent_at = Instant::now();
        let deadline = saturating_add(sent_at, req.timeout);
        // On OK-first models the OK comes at once even when the result takes minutes: without
        // it the modem did not take the command, and waiting the long timeout would only delay
        // recovery.
        let ok_wait = {
            let p = self.profile.read();
            if req.completion == Completion::ResultLine && p.ok_first {
                req.timeout.min(p.command_timeout)
            } else {
                req.timeout
            }
        };
        let ok_deadline = saturating_add(sent_at, ok_wait);
        let mut tx = self.tx.lock();
        loop {
            if tx.interrupted {
                if let Some(slot) = tx.deferred.take() {
                    self.pending.lock().retain(|p| !Arc::ptr_eq(&p.slot, &slot));
                }
                return Err(interrupted(req.name));
            }
            if tx.final_.is_some() {
                self.wait_late_code(req, &mut tx);
                return self.finish(req, &mut tx);
            }
            if let Some(code) = tx.result {
                // The result line came first; give the OK a moment, then accept it alone
                // (some SIM7600 firmware never sends the OK).
                let grace_end = saturating_add(
                    tx.result_at.unwrap_or_else(Instant::now),
                    self.profile.read().ok_grace,
                );
                if Instant::now() >= grace_end {
                    let lines = std::mem::take(&mut tx.lines);
                    return result_to_phase1(req, code, lines);
                }
                self.tx_cv.wait_until(&mut tx, grace_end.min(deadline));
            } else if let Some(slot) = tx.deferred.clone() {
                let lines = std::mem::take(&mut tx.lines);
                return Ok(Phase1::Deferred(slot, lines, deadline));
            } else {
                if let Some(r) = self.closed_reason() {
                    return Err(Error::Closed(r));
                }
                self.tx_cv.wait_until(&mut tx, ok_deadline);
            }
            let now = Instant::now();
            if tx.final_.is_none() && tx.deferred.is_none() {
                if now >= deadline {
                    if let Some(code) = tx.result {
                        let lines = std::mem::take(&mut tx.lines);
                        return result_to_phase1(req, code, lines);
                    }
                }
                if tx.result.is_none() && now >= ok_deadline {
                    return Err(Error::Timeout {
                        command: req.name,
                        timeout: ok_wait,
                    });
                }
            }
        }
    }

    /// After a failing final with no code yet, the result line may still follow (the SIM7672X
    /// note: "ERROR" then "+CMQTTCONNECT: <idx>,<err>"): wait a moment for its code.
    pub(super) fn wait_late_code(
        &self,
        req: &Request<'_>,
        tx: &mut parking_lot::MutexGuard<'_, TxState>,
    ) {
        let prefix = req.prefix.as_bytes();
        if !late_code_possible(tx) || tx.lines.iter().any(|l| l.starts_with(prefix)) {
            return;
        }
        let end = deadline_after(self.profile.read().ok_grace);
        while tx.result.is_none() && !self.tx_cv.wait_until(tx, end).timed_out() {}
    }

    /// The final result code has arrived.
    pub(super) fn finish(&self, req: &Request<'_>, tx: &mut TxState) -> Result<Phase1> {
        let lines = std::mem::take(&mut tx.lines);
        match tx.final_.clone() {
            Some(Final::Ok) => {
                if req.completion == Completion::ResultLine {
                    if let Some(code) = tx.result {
                        return result_to_phase1(req, code, lines);
                    }
                    if let Some(slot) = tx.deferred.clone() {
                        return Ok(Phase1::Deferred(slot, lines, deadline_after(req.timeout)));
                    }
                    if let Some(r) = self.closed_reason() {
                        return Err(Error::Closed(r));
                    }
                }
                Ok(Phase1::Done(Response {
                    lines,
                    result: None,
                }))
            }
            Some(f) => {
                // A failure: prefer the code of a "+CMD: <idx>,<err>" line when there is one.
                let code = tx.result.or_else(|| {
                    lines.iter().rev().find_map(|l| {
                        let args = l.strip_prefix(req.prefix.as_bytes())?;
                        parse_result_args(args).map(|(_, e)| e)
                    })
                });
                let failure = match (code, f) {
                    (Some(c), _) if !req.prefix.is_empty() => code_failure(c),
                    (_, Final::CmeError(s)) => ModemFailure::Cme(redact_text(&s)),
                    (_, Final::CmsError(s)) => ModemFailure::Cms(redact_text(&s)),
                    _ => ModemFailure::Error,
                };
                Err(Error::Modem {
                    command: req.name,
                    failure,
                })
            }
            None => Err(Error::Protocol {
                command: req.name,
                answer: "no final result".into(),
            }),
        }
    }

    pub(super) fn wait_slot(
        &self,
        req: &Request<'_>,
        slot: &Arc<(Mutex<Option<SlotOutcome>>, Condvar)>,
        deadline: Instant,
        lines: Vec<Vec<u8>>,
    ) -> Result<Response> {
        let (m, cv) = &**slot;
        let mut g = m.lock();
        loop {
            if let Some(o) = g.take() {
                return match o {
                    SlotOutcome::Code(0) => Ok(Response {
                        lines,
                        result: Some(0),
                    }),
                    SlotOutcome::Code(c) => Err(Error::Modem {
                        command: req.name,
                        failure: code_failure(c),
                    }),
                    SlotOutcome::Lost(cause) => Err(Error::ConnectionLost {
                        client: req.index.unwrap_or(0),
                        cause,
                    }),
                    SlotOutcome::Restarted => Err(Error::Closed(
                        "the modem restarted (RDY) while the command was waiting for its result"
                            .into(),
                    )),
                    SlotOutcome::Closed(r) => Err(Error::Closed(r)),
                    SlotOutcome::Interrupted => Err(interrupted(req.name)),
                };
            }
            if cv.wait_until(&mut g, deadline).timed_out() && g.is_none() {
                drop(g);
                // Nobody will claim the result now: a late one is passed on as an event.
                self.pending.lock().retain(|p| !Arc::ptr_eq(&p.slot, slot));
                return Err(Error::Timeout {
                    command: req.name,
                    timeout: req.timeout,
                });
            }
        }
    }
}

pub(super) enum Phase1 {
    Done(Response),
    Deferred(
        Arc<(Mutex<Option<SlotOutcome>>, Condvar)>,
        Vec<Vec<u8>>,
        Instant,
    ),
}
pub(super) fn result_to_phase1(
    req: &Request<'_>,
    code: u32,
    lines: Vec<Vec<u8>>,
) -> Result<Phase1> {
    if code == 0 {
        Ok(Phase1::Done(Response {
            lines,
            result: Some(0),
        }))
    } else {
        Err(Error::Modem {
            command: req.name,
            failure: code_failure(code),
        })
    }
}
/// What an interrupted wait returns (see [`Shared::interrupt`]).
pub(super) fn interrupted(command: &'static str) -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::Interrupted,
        format!(
            "{command}: the wait was interrupted (Modem::interrupt); the modem may still answer it"
        ),
    ))
}
pub(super) fn code_failure(code: u32) -> ModemFailure {
    match ErrCode::from_code(code) {
        Some(c) => ModemFailure::Code(c),
        None => ModemFailure::UnknownCode(code),
    }
}
pub(super) fn fill(slot: &Arc<(Mutex<Option<SlotOutcome>>, Condvar)>, o: SlotOutcome) {
    let (m, cv) = &**slot;
    let mut g = m.lock();
    if g.is_none() {
        *g = Some(o);
    }
    cv.notify_all();
}
/// A failing final came before the result line of a command that has one.
pub(super) fn late_code_possible(tx: &TxState) -> bool {
    tx.active
        && tx.completion == Some(Completion::ResultLine)
        && tx.result.is_none()
        && matches!(&tx.final_, Some(f) if *f != Final::Ok)
}
