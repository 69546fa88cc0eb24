//! The `AT+CMQTT*` commands.

use std::time::{Duration, Instant};

use super::{DataTarget, Engine, Fail, Mode, Res, Wait, WaitKind};
use crate::at::{Arg, Form};
use crate::codes;
use crate::inbox::Inbox;
use crate::mqtt::{self, ConnectParams, TlsParams};
use crate::session::SessionEvent;
use crate::shared::Shared;
use crate::state::{ClientCfg, ConnInfo, CLIENTS, MAX_PENDING_TOPICS};
use crate::tls;

const TOPIC_MAX: u64 = 1024;

/// Extra time the engine gives a session beyond its own timeouts.
const SAFETY_MARGIN: Duration = Duration::from_secs(10);

impl Engine {
    pub(super) fn cmqtt(&mut self, name: &str, form: Form) -> Res {
        match name {
            "+CMQTTSTART" => self.cmd_start(form),
            "+CMQTTSTOP" => self.cmd_stop(form),
            "+CMQTTACCQ" => self.cmd_accq(form),
            "+CMQTTREL" => self.cmd_rel(form),
            "+CMQTTSSLCFG" => self.cmd_sslcfg(form),
            "+CMQTTWILLTOPIC" => self.cmd_willtopic(form),
            "+CMQTTWILLMSG" => self.cmd_willmsg(form),
            "+CMQTTCONNECT" => self.cmd_connect(form),
            "+CMQTTDISC" => self.cmd_disc(form),
            "+CMQTTTOPIC" => self.cmd_topic(form),
            "+CMQTTPAYLOAD" => self.cmd_payload(form),
            "+CMQTTPUB" => self.cmd_pub(form),
            "+CMQTTSUBTOPIC" if self.profile.has_subtopic => self.cmd_subtopic(form),
            "+CMQTTSUB" => self.cmd_sub(form),
            "+CMQTTUNSUBTOPIC" if self.profile.has_subtopic => self.cmd_unsubtopic(form),
            "+CMQTTUNSUB" => self.cmd_unsub(form),
            "+CMQTTCFG" => self.cmd_cfg(form),
            _ => Err(Fail::Plain),
        }
    }

    fn test_line(&mut self, line: &str) -> Res {
        self.info(line);
        self.ok();
        Ok(())
    }

    fn cmd_start(&mut self, form: Form) -> Res {
        match form {
            Form::Test => {
                self.ok();
                Ok(())
            }
            Form::Exec => {
                let code = if self.state.started {
                    codes::NETWORK_IS_OPENED
                } else {
                    self.state.started = true;
                    0
                };
                self.begin_async();
                self.finish_async("+CMQTTSTART", None, code);
                Ok(())
            }
            _ => Err(Fail::Plain),
        }
    }

    fn cmd_stop(&mut self, form: Form) -> Res {
        match form {
            Form::Test => {
                self.ok();
                Ok(())
            }
            Form::Exec => {
                self.need_started()?;
                if self.state.clients.iter().any(|c| c.acquired.is_some()) {
                    return Err(Fail::Code(None, codes::CLIENT_NOT_RELEASED));
                }
                self.state.started = false;
                self.begin_async();
                self.finish_async("+CMQTTSTOP", None, 0);
                Ok(())
            }
            _ => Err(Fail::Plain),
        }
    }

    fn cmd_accq(&mut self, form: Form) -> Res {
        match form {
            Form::Test => {
                let l = self.profile.test_accq;
                self.test_line(l)
            }
            Form::Read => {
                self.need_started()?;
                for i in 0..CLIENTS {
                    let line = match &self.state.clients[i].acquired {
                        Some((id, ty)) => {
                            format!("+CMQTTACCQ: {i},\"{}\",{ty}", String::from_utf8_lossy(id))
                        }
                        None => format!("+CMQTTACCQ: {i},\"\",0"),
                    };
                    if i == 0 {
                        self.info(&line);
                    } else {
                        self.info_more(&line);
                    }
                }
                self.ok();
                Ok(())
            }
            Form::Write(args) => {
                self.need_started()?;
                let max_args = if self.profile.accq_version_arg { 4 } else { 3 };
                if args.len() < 2 || args.len() > max_args {
                    return Err(Fail::Plain);
                }
                let idx = Engine::client_index(&args)?;
                let id = args[1].quoted().ok_or(Fail::Plain)?.to_vec();
                let code = |c| Fail::Code(Some(idx as u64), c);
                if id.is_empty() || id.len() > 128 {
                    return Err(code(codes::LENGTH_OUT_OF_RANGE));
                }
                if std::str::from_utf8(&id).is_err() {
                    return Err(code(codes::BAD_UTF8));
                }
                let ty = Engine::num_arg(&args, 2, 0, 1, Some(0), idx, codes::INVALID_PARAMETER)?;
                let version = if args.len() == 4 {
                    Some(
                        Engine::num_arg(&args, 3, 3, 4, Some(3), idx, codes::INVALID_PARAMETER)?
                            as u8,
                    )
                } else {
                    None
                };
                if self.state.clients[idx].acquired.is_some() {
                    return Err(code(codes::CLIENT_USED));
                }
                let c = &mut self.state.clients[idx];
                c.release();
                c.acquired = Some((id, ty as u8));
                c.cfg = ClientCfg {
                    version,
                    ..ClientCfg::default()
                };
                self.ok();
                Ok(())
            }
            Form::Exec => Err(Fail::Plain),
        }
    }

    fn cmd_rel(&mut self, form: Form) -> Res {
        match form {
            Form::Test => self.test_line("+CMQTTREL: (0-1)"),
            Form::Read => {
                self.need_started()?;
                self.ok();
                Ok(())
            }
            Form::Write(args) => {
                self.need_started()?;
                if args.len() != 1 {
                    return Err(Fail::Plain);
                }
                let idx = Engine::client_index(&args)?;
                self.need_acquired(idx)?;
                if self.state.clients[idx].is_connected() {
                    return Err(Fail::Code(Some(idx as u64), codes::CLIENT_BUSY));
                }
                self.state.clients[idx].release();
                self.ok();
                Ok(())
            }
            Form::Exec => Err(Fail::Plain),
        }
    }

    fn cmd_sslcfg(&mut self, form: Form) -> Res {
        match form {
            Form::Test => self.test_line("+CMQTTSSLCFG: (0,1),(0-9)"),
            Form::Read => {
                self.need_started()?;
                for i in 0..CLIENTS {
                    let ctx = self.state.clients[i]
                        .ssl_ctx
                        .map(|c| c.to_string())
                        .unwrap_or_default();
                    let line = format!("+CMQTTSSLCFG: {i},{ctx}");
                    if i == 0 {
                        self.info(&line);
                    } else {
                        self.info_more(&line);
                    }
                }
                self.ok();
                Ok(())
            }
            Form::Write(args) => {
                self.need_started()?;
                if args.len() != 2 {
                    return Err(Fail::Plain);
                }
                let idx = Engine::client_index(&args).map_err(|_| Fail::Plain)?;
                let ctx = match &args[1] {
                    Arg::Empty => None,
                    a => {
                        let n = a.num().ok_or(Fail::Plain)?;
                        if n > 9 {
                            return Err(Fail::Plain);
                        }
                        Some(n as u8)
                    }
                };
                self.state.clients[idx].ssl_ctx = ctx;
                self.ok();
                Ok(())
            }
            Form::Exec => Err(Fail::Plain),
        }
    }

    /// Common checks of the `<client_index>,<req_length>[,...]` commands that
    /// prompt for data.
    fn prompt_args(
        &self,
        args: &[Arg],
        n_args: usize,
        max_len: u64,
    ) -> Result<(usize, usize), Fail> {
        if args.len() != n_args {
            return Err(Fail::Plain);
        }
        let idx = Engine::client_index(args)?;
        let len = Engine::num_arg(args, 1, 1, max_len, None, idx, codes::LENGTH_OUT_OF_RANGE)?;
        Ok((idx, len as usize))
    }

    fn cmd_willtopic(&mut self, form: Form) -> Res {
        match form {
            Form::Test => self.test_line("+CMQTTWILLTOPIC: (0-1),(1-1024)"),
            Form::Write(args) => {
                self.need_started()?;
                let (idx, len) = self.prompt_args(&args, 2, TOPIC_MAX)?;
                self.need_acquired(idx)?;
                self.prompt(len, DataTarget::WillTopic(idx));
                Ok(())
            }
            _ => Err(Fail::Plain),
        }
    }

    fn cmd_willmsg(&mut self, form: Form) -> Res {
        match form {
            Form::Test => self.test_line("+CMQTTWILLMSG: (0-1),(1-1024),(0-2)"),
            Form::Write(args) => {
                self.need_started()?;
                let (idx, len) = self.prompt_args(&args, 3, 1024)?;
                let qos = Engine::num_arg(&args, 2, 0, 2, None, idx, codes::INVALID_PARAMETER)?;
                self.need_acquired(idx)?;
                self.prompt(len, DataTarget::WillMsg(idx, qos as u8));
                Ok(())
            }
            _ => Err(Fail::Plain),
        }
    }

    fn cmd_topic(&mut self, form: Form) -> Res {
        match form {
            Form::Test => self.test_line("+CMQTTTOPIC: (0-1),(1-1024)"),
            Form::Write(args) => {
                self.need_started()?;
                let (idx, len) = self.prompt_args(&args, 2, TOPIC_MAX)?;
                self.need_acquired(idx)?;
                self.prompt(len, DataTarget::Topic(idx));
                Ok(())
            }
            _ => Err(Fail::Plain),
        }
    }

    fn cmd_payload(&mut self, form: Form) -> Res {
        match form {
            Form::Test => {
                let l = format!("+CMQTTPAYLOAD: (0-1),(1-{})", self.profile.payload_max);
                self.test_line(&l)
            }
            Form::Write(args) => {
                self.need_started()?;
                let (idx, len) = self.prompt_args(&args, 2, self.profile.payload_max as u64)?;
                self.need_acquired(idx)?;
                self.prompt(len, DataTarget::Payload(idx));
                Ok(())
            }
            _ => Err(Fail::Plain),
        }
    }

    fn cmd_subtopic(&mut self, form: Form) -> Res {
        match form {
            Form::Test => self.test_line("+CMQTTSUBTOPIC: (0-1),(1-1024),(0-2)"),
            Form::Write(args) => {
                self.need_started()?;
                let (idx, len) = self.prompt_args(&args, 3, TOPIC_MAX)?;
                let qos = Engine::num_arg(&args, 2, 0, 2, None, idx, codes::INVALID_PARAMETER)?;
                self.need_acquired(idx)?;
                if self.state.clients[idx].sub_topics.len() >= MAX_PENDING_TOPICS {
                    return Err(Fail::Code(Some(idx as u64), codes::FAILED));
                }
                self.prompt(len, DataTarget::SubTopic(idx, qos as u8));
                Ok(())
            }
            _ => Err(Fail::Plain),
        }
    }

    fn cmd_unsubtopic(&mut self, form: Form) -> Res {
        match form {
            Form::Test => self.test_line("+CMQTTUNSUBTOPIC: (0-1),(1-1024)"),
            Form::Write(args) => {
                self.need_started()?;
                let (idx, len) = self.prompt_args(&args, 2, TOPIC_MAX)?;
                self.need_acquired(idx)?;
                if self.state.clients[idx].unsub_topics.len() >= MAX_PENDING_TOPICS {
                    return Err(Fail::Code(Some(idx as u64), codes::FAILED));
                }
                self.prompt(len, DataTarget::UnsubTopic(idx));
                Ok(())
            }
            _ => Err(Fail::Plain),
        }
    }

    fn cmd_sub(&mut self, form: Form) -> Res {
        match form {
            Form::Test => {
                let l = self.profile.test_sub;
                self.test_line(l)
            }
            Form::Read if self.profile.has_sub_read => {
                self.need_started()?;
                let mut lines = Vec::new();
                for (i, c) in self.state.clients.iter().enumerate() {
                    for t in &c.subscribed {
                        lines.push(format!("+CMQTTSUB: {i},\"{}\"", String::from_utf8_lossy(t)));
                    }
                }
                if lines.is_empty() {
                    self.info("+CMQTTSUB: ");
                } else {
                    for (n, l) in lines.iter().enumerate() {
                        if n == 0 {
                            self.info(l);
                        } else {
                            self.info_more(l);
                        }
                    }
                }
                self.ok();
                Ok(())
            }
            Form::Write(args) => {
                self.need_started()?;
                match args.len() {
                    1 | 2 => {
                        let idx = Engine::client_index(&args)?;
                        Engine::num_arg(&args, 1, 0, 1, Some(0), idx, codes::INVALID_PARAMETER)?;
                        self.need_acquired(idx)?;
                        self.need_connected(idx)?;
                        if self.state.clients[idx].sub_topics.is_empty() {
                            return Err(Fail::Code(Some(idx as u64), codes::TOPIC_EMPTY));
                        }
                        let topics = std::mem::take(&mut self.state.clients[idx].sub_topics);
                        self.start_subscribe(idx, topics);
                        Ok(())
                    }
                    3 | 4 => {
                        let idx = Engine::client_index(&args)?;
                        let len = Engine::num_arg(
                            &args,
                            1,
                            1,
                            TOPIC_MAX,
                            None,
                            idx,
                            codes::LENGTH_OUT_OF_RANGE,
                        )?;
                        let qos =
                            Engine::num_arg(&args, 2, 0, 2, None, idx, codes::INVALID_PARAMETER)?;
                        Engine::num_arg(&args, 3, 0, 1, Some(0), idx, codes::INVALID_PARAMETER)?;
                        self.need_acquired(idx)?;
                        self.need_connected(idx)?;
                        self.prompt(len as usize, DataTarget::SubOnce(idx, qos as u8));
                        Ok(())
                    }
                    _ => Err(Fail::Plain),
                }
            }
            _ => Err(Fail::Plain),
        }
    }

    fn cmd_unsub(&mut self, form: Form) -> Res {
        match form {
            Form::Test => {
                let l = self.profile.test_unsub;
                self.test_line(l)
            }
            Form::Write(args) => {
                self.need_started()?;
                match args.len() {
                    1 | 2 => {
                        let idx = Engine::client_index(&args)?;
                        Engine::num_arg(&args, 1, 0, 1, Some(0), idx, codes::INVALID_PARAMETER)?;
                        self.need_acquired(idx)?;
                        self.need_connected(idx)?;
                        if self.state.clients[idx].unsub_topics.is_empty() {
                            return Err(Fail::Code(Some(idx as u64), codes::TOPIC_EMPTY));
                        }
                        let topics = std::mem::take(&mut self.state.clients[idx].unsub_topics);
                        self.start_unsubscribe(idx, topics);
                        Ok(())
                    }
                    3 => {
                        let idx = Engine::client_index(&args)?;
                        let len = Engine::num_arg(
                            &args,
                            1,
                            1,
                            TOPIC_MAX,
                            None,
                            idx,
                            codes::LENGTH_OUT_OF_RANGE,
                        )?;
                        Engine::num_arg(&args, 2, 0, 1, Some(0), idx, codes::INVALID_PARAMETER)?;
                        self.need_acquired(idx)?;
                        self.need_connected(idx)?;
                        self.prompt(len as usize, DataTarget::UnsubOnce(idx));
                        Ok(())
                    }
                    _ => Err(Fail::Plain),
                }
            }
            _ => Err(Fail::Plain),
        }
    }

    fn cmd_cfg(&mut self, form: Form) -> Res {
        match form {
            Form::Test => {
                self.info("+CMQTTCFG: \"checkUTF8\",(0-1),(0-1)");
                self.info_more("+CMQTTCFG: \"optimeout\",(0-1),(20-120)");
                if self.profile.has_cfg_version {
                    self.info_more("+CMQTTCFG: \"version\",(0-1),(3-4)");
                }
                self.ok();
                Ok(())
            }
            Form::Read => {
                self.need_started()?;
                for i in 0..CLIENTS {
                    let c = &self.state.clients[i].cfg;
                    let line = format!("+CMQTTCFG: {i},{},{}", u8::from(c.check_utf8), c.optimeout);
                    if i == 0 {
                        self.info(&line);
                    } else {
                        self.info_more(&line);
                    }
                }
                self.ok();
                Ok(())
            }
            Form::Write(args) => {
                self.need_started()?;
                if args.len() != 3 {
                    return Err(Fail::Plain);
                }
                let key = args[0].quoted().ok_or(Fail::Plain)?.to_ascii_lowercase();
                let idx = args[1].num().filter(|n| *n <= 1).ok_or(Fail::Plain)? as usize;
                let val = args[2].num().ok_or(Fail::Plain)?;
                if self.state.clients[idx].acquired.is_none() {
                    return Err(Fail::Plain);
                }
                let cfg = &mut self.state.clients[idx].cfg;
                match key.as_slice() {
                    b"checkutf8" if val <= 1 => cfg.check_utf8 = val == 1,
                    b"optimeout" if (20..=120).contains(&val) => cfg.optimeout = val as u32,
                    b"version" if self.profile.has_cfg_version && (3..=4).contains(&val) => {
                        cfg.version = Some(val as u8)
                    }
                    _ => return Err(Fail::Plain),
                }
                self.ok();
                Ok(())
            }
            Form::Exec => Err(Fail::Plain),
        }
    }

    fn cmd_connect(&mut self, form: Form) -> Res {
        match form {
            Form::Test => self.test_line(
                "+CMQTTCONNECT: (0-1),(9-256),(1-64800),(0-1)[,<user_name>,<pass_word>]",
            ),
            Form::Read => {
                self.need_started()?;
                for i in 0..CLIENTS {
                    let line = match &self.state.clients[i].conn {
                        Some(c) => {
                            let info = &c.info;
                            let mut l = format!(
                                "+CMQTTCONNECT: {i},\"{}\",{},{}",
                                String::from_utf8_lossy(&info.server),
                                info.keepalive,
                                u8::from(info.clean)
                            );
                            if let Some(u) = &info.username {
                                l.push_str(&format!(",\"{}\"", String::from_utf8_lossy(u)));
                                if let Some(p) = &info.password {
                                    l.push_str(&format!(",\"{}\"", String::from_utf8_lossy(p)));
                                }
                            }
                            l
                        }
                        None => format!("+CMQTTCONNECT: {i}"),
                    };
                    if i == 0 {
                        self.info(&line);
                    } else {
                        self.info_more(&line);
                    }
                }
                self.ok();
                Ok(())
            }
            Form::Write(args) => {
                self.need_started()?;
                self.connect_write(&args)
            }
            Form::Exec => Err(Fail::Plain),
        }
    }

    fn connect_write(&mut self, args: &[Arg]) -> Res {
        if args.len() < 4 || args.len() > 6 {
            return Err(Fail::Plain);
        }
        let idx = Engine::client_index(args)?;
        let code = |c| Fail::Code(Some(idx as u64), c);
        let server = args[1].quoted().ok_or(Fail::Plain)?.to_vec();
        if server.len() < 9 || server.len() > 256 {
            return Err(code(codes::LENGTH_OUT_OF_RANGE));
        }
        let keepalive = Engine::num_arg(args, 2, 1, 64800, None, idx, codes::INVALID_PARAMETER)?;
        let clean = Engine::num_arg(args, 3, 0, 1, Some(0), idx, codes::INVALID_PARAMETER)? == 1;
        let cred = |i: usize| -> Result<Option<Vec<u8>>, Fail> {
            match args.get(i) {
                None | Some(Arg::Empty) => Ok(None),
                Some(a) => {
                    let s = a.quoted().ok_or(Fail::Plain)?;
                    if s.is_empty() || s.len() > 256 {
                        return Err(code(codes::LENGTH_OUT_OF_RANGE));
                    }
                    Ok(Some(s.to_vec()))
                }
            }
        };
        let username = cred(4)?;
        let password = cred(5)?;
        if password.is_some() && username.is_none() {
            return Err(Fail::Plain);
        }
        if username.is_some() && password.is_none() && self.profile.username_requires_password {
            return Err(Fail::Plain);
        }
        let (host, port) = parse_server(&server).ok_or(code(codes::INVALID_PARAMETER))?;
        self.need_acquired(idx)?;
        if self.state.clients[idx].is_connected() {
            return Err(code(codes::CLIENT_USED));
        }

        let client = &self.state.clients[idx];
        let Some((client_id, server_type)) = client.acquired.clone() else {
            return Err(code(codes::CLIENT_NOT_ACQUIRED));
        };
        let op_timeout = Duration::from_secs(u64::from(client.cfg.optimeout));
        let level = client.cfg.version.unwrap_or(4);
        let will = client.will_topic.as_ref().map(|t| {
            let (msg, qos) = client.will_msg.clone().unwrap_or_default();
            (t.clone(), msg, qos)
        });
        let info = ConnInfo {
            server,
            keepalive: keepalive as u32,
            clean,
            username: username.clone(),
            password: password.clone(),
        };

        let ssl_ctx = client.ssl_ctx;
        self.begin_async();
        let tls = if server_type == 1 {
            let ctx_idx = usize::from(ssl_ctx.unwrap_or(idx as u8));
            let ctx = self.state.ssl[ctx_idx.min(self.state.ssl.len() - 1)].clone();
            let built = tls::client_config(&ctx, &self.state.files)
                .and_then(|config| tls::server_name(&host).map(|name| (config, name)));
            match built {
                Ok((config, server_name)) => Some(TlsParams {
                    config,
                    server_name,
                    handshake_timeout: Duration::from_secs(u64::from(ctx.negotiate_time)),
                }),
                Err(c) => {
                    self.state.clients[idx].ssl_ctx = None;
                    self.finish_async("+CMQTTCONNECT", Some(idx as u64), c);
                    return Ok(());
                }
            }
        } else {
            None
        };
        let handshake = tls
            .as_ref()
            .map(|t| t.handshake_timeout)
            .unwrap_or_default();
        let session = self.next_id();
        let op = self.next_id();
        let params = ConnectParams {
            session,
            host,
            port,
            level,
            client_id,
            keepalive: keepalive as u16,
            clean,
            will,
            username,
            password,
            tls,
            op_timeout,
        };
        if self.offline {
            // No network (fuzzing): a loopback broker that accepts everything.
            let _ = params;
            let (handle, rx) = mqtt::loopback_session(session);
            self.loopback.push((session, rx));
            let _ = self.inbox_tx.send(Inbox::Session(SessionEvent::Connected {
                op,
                result: Ok(handle),
            }));
        } else {
            mqtt::spawn_connect(&self.rt, params, op, self.inbox_tx.clone());
        }
        self.mode = Mode::Wait(Wait {
            op,
            client: idx,
            kind: WaitKind::Connect { info },
            deadline: Instant::now() + op_timeout * 3 + handshake + SAFETY_MARGIN,
        });
        Ok(())
    }

    fn cmd_disc(&mut self, form: Form) -> Res {
        match form {
            Form::Test => self.test_line("+CMQTTDISC: (0-1),(0, 60-180)"),
            Form::Read => {
                self.need_started()?;
                for i in 0..CLIENTS {
                    let state = u8::from(!self.state.clients[i].is_connected());
                    let line = format!("+CMQTTDISC: {i},{state}");
                    if i == 0 {
                        self.info(&line);
                    } else {
                        self.info_more(&line);
                    }
                }
                self.ok();
                Ok(())
            }
            Form::Write(args) => {
                self.need_started()?;
                if args.is_empty() || args.len() > 2 {
                    return Err(Fail::Plain);
                }
                let idx = Engine::client_index(&args)?;
                let default = u64::from(self.profile.disc_default_timeout);
                let timeout = Engine::num_arg(
                    &args,
                    1,
                    0,
                    180,
                    Some(default),
                    idx,
                    codes::INVALID_PARAMETER,
                )?;
                if timeout != 0 && timeout < 60 {
                    return Err(Fail::Code(Some(idx as u64), codes::INVALID_PARAMETER));
                }
                self.need_acquired(idx)?;
                self.need_connected(idx)?;
                let op = self.next_id();
                let sent = self.state.clients[idx]
                    .conn
                    .as_ref()
                    .is_some_and(|c| c.handle.disconnect(op));
                self.begin_async();
                self.mode = Mode::Wait(Wait {
                    op,
                    client: idx,
                    kind: WaitKind::Disc,
                    deadline: Instant::now() + Duration::from_secs(timeout.max(10)),
                });
                if !sent {
                    // The session already ended; the disconnect is complete.
                    self.complete_wait(op, 0);
                }
                Ok(())
            }
            Form::Exec => Err(Fail::Plain),
        }
    }

    fn cmd_pub(&mut self, form: Form) -> Res {
        match form {
            Form::Test => self.test_line("+CMQTTPUB: (0-1),(0-2),(60-180),(0-1),(0-1)"),
            Form::Write(args) => {
                self.need_started()?;
                if args.len() < 3 || args.len() > 5 {
                    return Err(Fail::Plain);
                }
                let idx = Engine::client_index(&args)?;
                let qos =
                    Engine::num_arg(&args, 1, 0, 2, None, idx, codes::INVALID_PARAMETER)? as u8;
                let timeout =
                    Engine::num_arg(&args, 2, 60, 180, None, idx, codes::INVALID_PARAMETER)?;
                let retain =
                    Engine::num_arg(&args, 3, 0, 1, Some(0), idx, codes::INVALID_PARAMETER)? == 1;
                let dup =
                    Engine::num_arg(&args, 4, 0, 1, Some(0), idx, codes::INVALID_PARAMETER)? == 1;
                self.need_acquired(idx)?;
                self.need_connected(idx)?;
                let c = &mut self.state.clients[idx];
                let Some(topic) = c.pub_topic.take() else {
                    return Err(Fail::Code(Some(idx as u64), codes::TOPIC_EMPTY));
                };
                let payload = c.pub_payload.take().unwrap_or_default();
                let op = self.next_id();
                let sent = self.state.clients[idx].conn.as_ref().is_some_and(|k| {
                    k.handle.publish(
                        op,
                        topic,
                        payload,
                        qos,
                        retain,
                        dup,
                        Duration::from_secs(timeout),
                    )
                });
                Shared::bump(&self.shared.publishes, 1);
                self.begin_async();
                self.mode = Mode::Wait(Wait {
                    op,
                    client: idx,
                    kind: WaitKind::Pub,
                    deadline: Instant::now() + Duration::from_secs(timeout) + SAFETY_MARGIN,
                });
                if !sent {
                    self.complete_wait(op, codes::NO_CONNECTION);
                }
                Ok(())
            }
            _ => Err(Fail::Plain),
        }
    }

    fn start_subscribe(&mut self, idx: usize, topics: Vec<(Vec<u8>, u8)>) {
        let op = self.next_id();
        let timeout = Duration::from_secs(u64::from(self.state.clients[idx].cfg.optimeout));
        let names: Vec<Vec<u8>> = topics.iter().map(|(t, _)| t.clone()).collect();
        let sent = self.state.clients[idx]
            .conn
            .as_ref()
            .is_some_and(|k| k.handle.subscribe(op, topics, timeout));
        self.begin_async();
        self.mode = Mode::Wait(Wait {
            op,
            client: idx,
            kind: WaitKind::Sub { topics: names },
            deadline: Instant::now() + timeout + SAFETY_MARGIN,
        });
        if !sent {
            self.complete_wait(op, codes::NO_CONNECTION);
        }
    }

    fn start_unsubscribe(&mut self, idx: usize, topics: Vec<Vec<u8>>) {
        let op = self.next_id();
        let timeout = Duration::from_secs(u64::from(self.state.clients[idx].cfg.optimeout));
        let sent = self.state.clients[idx]
            .conn
            .as_ref()
            .is_some_and(|k| k.handle.unsubscribe(op, topics.clone(), timeout));
        self.begin_async();
        self.mode = Mode::Wait(Wait {
            op,
            client: idx,
            kind: WaitKind::Unsub { topics },
            deadline: Instant::now() + timeout + SAFETY_MARGIN,
        });
        if !sent {
            self.complete_wait(op, codes::NO_CONNECTION);
        }
    }

    /// The prompted bytes of a CMQTT command arrived.
    pub(super) fn cmqtt_data(&mut self, target: DataTarget, data: Vec<u8>) -> Res {
        match target {
            DataTarget::WillTopic(idx) => {
                self.check_utf8(idx, &data)?;
                self.state.clients[idx].will_topic = Some(data);
                self.ok();
            }
            DataTarget::WillMsg(idx, qos) => {
                self.check_utf8(idx, &data)?;
                self.state.clients[idx].will_msg = Some((data, qos));
                self.ok();
            }
            DataTarget::Topic(idx) => {
                self.check_utf8(idx, &data)?;
                self.state.clients[idx].pub_topic = Some(data);
                self.ok();
            }
            DataTarget::Payload(idx) => {
                self.check_utf8(idx, &data)?;
                self.state.clients[idx].pub_payload = Some(data);
                self.ok();
            }
            DataTarget::SubTopic(idx, qos) => {
                self.check_utf8(idx, &data)?;
                self.state.clients[idx].sub_topics.push((data, qos));
                self.ok();
            }
            DataTarget::UnsubTopic(idx) => {
                self.check_utf8(idx, &data)?;
                self.state.clients[idx].unsub_topics.push(data);
                self.ok();
            }
            DataTarget::SubOnce(idx, qos) => {
                self.check_utf8(idx, &data)?;
                self.need_connected(idx)?;
                self.start_subscribe(idx, vec![(data, qos)]);
            }
            DataTarget::UnsubOnce(idx) => {
                self.check_utf8(idx, &data)?;
                self.need_connected(idx)?;
                self.start_unsubscribe(idx, vec![data]);
            }
            DataTarget::CertDown(_) => {}
        }
        Ok(())
    }
}

/// `tcp://host[:port]` → (host, port); IPv6 literals in brackets.
fn parse_server(s: &[u8]) -> Option<(String, u16)> {
    if s.len() < 6 || !s[..6].eq_ignore_ascii_case(b"tcp://") {
        return None;
    }
    // The first 6 bytes are ASCII, so byte 6 is a char boundary.
    let s = std::str::from_utf8(s).ok()?;
    let rest = s[6..].trim_end_matches('/');
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let end = r.find(']')?;
        let host = &r[..end];
        let after = &r[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 1883,
            None => return None,
        };
        (host.to_string(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (rest.to_string(), 1883),
        }
    };
    if host.is_empty() || port == 0 || host.contains(['/', ' ']) {
        return None;
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::parse_server;

    #[test]
    fn servers() {
        assert_eq!(
            parse_server(b"tcp://test.mosquitto.org:1883"),
            Some(("test.mosquitto.org".into(), 1883))
        );
        assert_eq!(
            parse_server(b"tcp://127.0.0.1"),
            Some(("127.0.0.1".into(), 1883))
        );
        assert_eq!(
            parse_server(b"TCP://[::1]:8883"),
            Some(("::1".into(), 8883))
        );
        assert_eq!(parse_server(b"ssl://x:1"), None);
        assert_eq!(parse_server(b"tcp://x:99999"), None);
        assert_eq!(parse_server(b"tcp://:1883"), None);
        assert_eq!(parse_server("tcp:/\u{e9}\u{e9}x".as_bytes()), None);
        assert_eq!(parse_server(b"tcp://h\xff:1"), None);
    }
}
