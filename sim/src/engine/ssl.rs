//! TLS set-up commands: `AT+CSSLCFG`, `AT+CCERTDOWN`, `AT+CCERTLIST`,
//! `AT+CCERTDELE`. The file store is in memory and survives resets (flash).

use super::{DataTarget, Engine, Fail, Res};
use crate::at::{Arg, Form};
use crate::state::{CERT_MAX, MAX_FILES, SSL_CONTEXTS};

/// Longest certificate file name.
const NAME_MAX: usize = 108;

impl Engine {
    pub(super) fn ssl(&mut self, name: &str, form: Form) -> Res {
        match name {
            "+CSSLCFG" => self.cmd_csslcfg(form),
            "+CCERTDOWN" => self.cmd_certdown(form),
            "+CCERTLIST" => self.cmd_certlist(form),
            "+CCERTDELE" => self.cmd_certdele(form),
            _ => Err(Fail::Plain),
        }
    }

    fn ctx_line(&self, i: usize) -> String {
        let c = &self.state.ssl[i];
        let f = |n: &Option<Vec<u8>>| {
            n.as_deref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        format!(
            "+CSSLCFG: {i},{},{},{},{},\"{}\",\"{}\",\"{}\",\"{}\",{}",
            c.sslversion,
            c.authmode,
            u8::from(c.ignore_local_time),
            c.negotiate_time,
            f(&c.cacert),
            f(&c.clientcert),
            f(&c.clientkey),
            f(&c.password),
            u8::from(c.enable_sni)
        )
    }

    fn cmd_csslcfg(&mut self, form: Form) -> Res {
        match form {
            Form::Test => {
                self.info("+CSSLCFG: \"sslversion\",(0-9),(0-4)");
                for l in [
                    "+CSSLCFG: \"authmode\",(0-9),(0-3)",
                    "+CSSLCFG: \"ignorelocaltime\",(0-9),(0-1)",
                    "+CSSLCFG: \"negotiatetime\",(0-9),(10-300)",
                    "+CSSLCFG: \"cacert\",(0-9),(5-108)",
                    "+CSSLCFG: \"clientcert\",(0-9),(5-108)",
                    "+CSSLCFG: \"clientkey\",(0-9),(5-108)",
                    "+CSSLCFG: \"password\",(0-9),(1-128)",
                    "+CSSLCFG: \"enableSNI\",(0-9),(0-1)",
                ] {
                    self.info_more(l);
                }
                self.ok();
                Ok(())
            }
            Form::Read => {
                for i in 0..SSL_CONTEXTS {
                    let l = self.ctx_line(i);
                    if i == 0 {
                        self.info(&l);
                    } else {
                        self.info_more(&l);
                    }
                }
                self.ok();
                Ok(())
            }
            Form::Write(args) => {
                // AT+CSSLCFG=<ctx>: query one context.
                if args.len() == 1 {
                    let i = args[0]
                        .num()
                        .filter(|n| (*n as usize) < SSL_CONTEXTS)
                        .ok_or(Fail::Plain)? as usize;
                    let l = self.ctx_line(i);
                    self.info(&l);
                    self.ok();
                    return Ok(());
                }
                if args.len() != 3 {
                    return Err(Fail::Plain);
                }
                let key = args[0].quoted().ok_or(Fail::Plain)?.to_ascii_lowercase();
                let i = args[1]
                    .num()
                    .filter(|n| (*n as usize) < SSL_CONTEXTS)
                    .ok_or(Fail::Plain)? as usize;
                let num = |lo: u64, hi: u64| -> Result<u64, Fail> {
                    args[2]
                        .num()
                        .filter(|n| (lo..=hi).contains(n))
                        .ok_or(Fail::Plain)
                };
                let file = || -> Result<Vec<u8>, Fail> {
                    let n = args[2].text().ok_or(Fail::Plain)?;
                    if n.is_empty() || n.len() > NAME_MAX {
                        return Err(Fail::Plain);
                    }
                    Ok(n.to_vec())
                };
                let ctx = &mut self.state.ssl[i];
                match key.as_slice() {
                    b"sslversion" => ctx.sslversion = num(0, 4)? as u8,
                    b"authmode" => ctx.authmode = num(0, 3)? as u8,
                    b"ignorelocaltime" | b"ignorlocaltime" => {
                        ctx.ignore_local_time = num(0, 1)? == 1
                    }
                    b"negotiatetime" => ctx.negotiate_time = num(10, 300)? as u32,
                    b"cacert" => ctx.cacert = Some(file()?),
                    b"clientcert" => ctx.clientcert = Some(file()?),
                    b"clientkey" => ctx.clientkey = Some(file()?),
                    b"password" => ctx.password = Some(file()?),
                    b"enablesni" => ctx.enable_sni = num(0, 1)? == 1,
                    _ => return Err(Fail::Plain),
                }
                self.ok();
                Ok(())
            }
            Form::Exec => Err(Fail::Plain),
        }
    }

    fn cmd_certdown(&mut self, form: Form) -> Res {
        match form {
            Form::Test => {
                self.info(&format!("+CCERTDOWN: ({NAME_MAX}),(1-{CERT_MAX})"));
                self.ok();
                Ok(())
            }
            Form::Write(args) => {
                if args.len() != 2 {
                    return Err(Fail::Plain);
                }
                let name = cert_name(&args[0])?;
                let len = args[1]
                    .num()
                    .filter(|n| (1..=CERT_MAX as u64).contains(n))
                    .ok_or(Fail::Plain)? as usize;
                if !self.state.files.contains_key(&name) && self.state.files.len() >= MAX_FILES {
                    return Err(Fail::Plain);
                }
                self.prompt(len, DataTarget::CertDown(name));
                Ok(())
            }
            _ => Err(Fail::Plain),
        }
    }

    pub(super) fn cert_data(&mut self, name: Vec<u8>, data: Vec<u8>) {
        self.state.files.insert(name, data);
        self.ok();
    }

    fn cmd_certlist(&mut self, form: Form) -> Res {
        match form {
            Form::Test => {
                self.ok();
                Ok(())
            }
            Form::Exec => {
                let names: Vec<String> = self
                    .state
                    .files
                    .keys()
                    .map(|n| format!("+CCERTLIST: \"{}\"", String::from_utf8_lossy(n)))
                    .collect();
                for (i, l) in names.iter().enumerate() {
                    if i == 0 {
                        self.info(l);
                    } else {
                        self.info_more(l);
                    }
                }
                self.ok();
                Ok(())
            }
            _ => Err(Fail::Plain),
        }
    }

    fn cmd_certdele(&mut self, form: Form) -> Res {
        match form {
            Form::Test => {
                self.ok();
                Ok(())
            }
            Form::Write(args) => {
                if args.len() != 1 {
                    return Err(Fail::Plain);
                }
                let name = cert_name(&args[0])?;
                if self.state.files.remove(&name).is_none() {
                    return Err(Fail::Plain);
                }
                self.ok();
                Ok(())
            }
            _ => Err(Fail::Plain),
        }
    }
}

fn cert_name(a: &Arg) -> Result<Vec<u8>, Fail> {
    let n = a.text().ok_or(Fail::Plain)?;
    if n.is_empty() || n.len() > NAME_MAX || n.iter().any(|c| matches!(c, b'/' | b'\\' | 0..=31)) {
        return Err(Fail::Plain);
    }
    Ok(n.to_vec())
}
