//! The handle a `Modem` and its `Client`s share: the running engine and what the modem said
//! about itself. It lives here, below both, so that `client` and `modem` do not import each
//! other.

use super::{Engine, Shared};
use crate::command::Command;
use crate::error::Result;
use crate::profile::Profile;

/// What the modem said about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `AT+CGMM`.
    pub model_name: String,
    /// `AT+CGMR` (firmware revision).
    pub firmware: String,
}

pub(crate) struct Session {
    pub(crate) engine: Engine,
    pub(crate) identity: Identity,
}

impl Session {
    pub(crate) fn shared(&self) -> &Shared {
        &self.engine.shared
    }

    pub(crate) fn profile(&self) -> Profile {
        self.shared().profile.read().clone()
    }

    pub(crate) fn execute<C: Command>(&self, cmd: &C) -> Result<C::Output> {
        self.execute_within(cmd, None)
    }

    /// Like `execute`, waiting at most `limit` whatever the command's own timeout.
    pub(crate) fn execute_within<C: Command>(
        &self,
        cmd: &C,
        limit: Option<std::time::Duration>,
    ) -> Result<C::Output> {
        let profile = self.profile();
        let mut req = cmd.request(&profile)?;
        if let Some(l) = limit {
            req.timeout = req.timeout.min(l);
        }
        let resp = self.shared().execute(&req)?;
        cmd.parse(resp)
    }

    /// Runs `req`, a request `cmd` made (and so checked) already: a caller that validates
    /// several commands before sending the first does not build each line twice.
    pub(crate) fn execute_prepared<C: Command>(
        &self,
        cmd: &C,
        req: &crate::command::Request<'_>,
    ) -> Result<C::Output> {
        let resp = self.shared().execute(req)?;
        cmd.parse(resp)
    }
}
