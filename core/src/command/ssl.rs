//! TLS set-up: `AT+CSSLCFG` contexts and the certificate store (`AT+CCERTDOWN/LIST/DELE`).

use std::time::Duration;

use super::validate as v;
use super::{unquote, Command, Request, Response};
use crate::error::Result;
use crate::profile::Profile;

/// Largest file `AT+CCERTDOWN` takes in one go on A76xx firmware.
pub const MAX_CERT_LEN: usize = 10240;

/// One `AT+CSSLCFG` setting of an SSL context (0..=9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SslSetting {
    /// `"sslversion"`: 0 SSL3.0, 1 TLS1.0, 2 TLS1.1, 3 TLS1.2, 4 all.
    SslVersion(u8),
    /// `"authmode"`: 0 no verification, 1 verify the server, 2 verify both, 3 client only.
    AuthMode(u8),
    /// `"ignorelocaltime"`: ignore the modem's clock when checking certificate dates.
    IgnoreLocalTime(bool),
    /// `"negotiatetime"`: handshake timeout, 10..=300 s.
    NegotiateTime(u16),
    /// `"cacert"`: the CA file (in the modem's store).
    CaCert(String),
    /// `"clientcert"`: the client certificate file.
    ClientCert(String),
    /// `"clientkey"`: the client key file.
    ClientKey(String),
    /// `"enableSNI"`: send the server name (fixes many `+CMQTTCONNECT: 0,15`).
    EnableSni(bool),
}

/// `AT+CSSLCFG="<setting>",<ctx>,<value>`
#[derive(Debug, Clone)]
pub struct SslCfg {
    pub ctx: u8,
    pub setting: SslSetting,
}

impl Command for SslCfg {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::range("ssl_ctx_index", self.ctx, 0, 9)?;
        let (name, value) = match &self.setting {
            SslSetting::SslVersion(x) => {
                v::range("sslversion", *x, 0, 4)?;
                ("sslversion", x.to_string())
            }
            SslSetting::AuthMode(x) => {
                v::range("authmode", *x, 0, 3)?;
                ("authmode", x.to_string())
            }
            SslSetting::IgnoreLocalTime(b) => ("ignorelocaltime", (*b as u8).to_string()),
            SslSetting::NegotiateTime(s) => {
                v::range("negotiatetime", *s, 10, 300)?;
                ("negotiatetime", s.to_string())
            }
            SslSetting::CaCert(f) => {
                v::file_name("cacert", f)?;
                ("cacert", format!("\"{f}\""))
            }
            SslSetting::ClientCert(f) => {
                v::file_name("clientcert", f)?;
                ("clientcert", format!("\"{f}\""))
            }
            SslSetting::ClientKey(f) => {
                v::file_name("clientkey", f)?;
                ("clientkey", format!("\"{f}\""))
            }
            SslSetting::EnableSni(b) => ("enableSNI", (*b as u8).to_string()),
        };
        Ok(Request::new(
            "AT+CSSLCFG",
            format!("AT+CSSLCFG=\"{name}\",{},{value}", self.ctx),
            p.command_timeout,
        )
        .prefix("+CSSLCFG:"))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CSSLCFG?`: the modem's description of every SSL context, one line each.
#[derive(Debug, Clone, Copy, Default)]
pub struct SslCfgRead;

impl Command for SslCfgRead {
    type Output = Vec<String>;
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        Ok(
            Request::new("AT+CSSLCFG?", "AT+CSSLCFG?".into(), p.command_timeout)
                .prefix("+CSSLCFG:"),
        )
    }
    fn parse(&self, r: Response) -> Result<Self::Output> {
        Ok(r.args("+CSSLCFG:")
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect())
    }
}

/// `AT+CCERTDOWN="<file>",<len>` then the file's bytes after `>`: store a certificate or key.
#[derive(Clone)]
pub struct CertDown<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
}

impl std::fmt::Debug for CertDown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The data may be a private key: never print it.
        f.debug_struct("CertDown")
            .field("name", &self.name)
            .field("len", &self.data.len())
            .finish()
    }
}

impl Command for CertDown<'_> {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::file_name("filename", self.name)?;
        v::len("file data", self.data.len(), 1, MAX_CERT_LEN)?;
        Ok(Request::new(
            "AT+CCERTDOWN",
            format!("AT+CCERTDOWN=\"{}\",{}", self.name, self.data.len()),
            p.command_timeout + Duration::from_secs(10),
        )
        .prefix("+CCERTDOWN:")
        .data(self.data))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CCERTLIST`: the files in the certificate store.
#[derive(Debug, Clone, Copy, Default)]
pub struct CertList;

impl Command for CertList {
    type Output = Vec<String>;
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        Ok(
            Request::new("AT+CCERTLIST", "AT+CCERTLIST".into(), p.command_timeout)
                .prefix("+CCERTLIST:"),
        )
    }
    fn parse(&self, r: Response) -> Result<Self::Output> {
        Ok(r.args("+CCERTLIST:").map(unquote).collect())
    }
}

/// `AT+CCERTDELE="<file>"`: delete a file from the certificate store.
#[derive(Debug, Clone)]
pub struct CertDele<'a> {
    pub name: &'a str,
}

impl Command for CertDele<'_> {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::file_name("filename", self.name)?;
        Ok(Request::new(
            "AT+CCERTDELE",
            format!("AT+CCERTDELE=\"{}\"", self.name),
            p.command_timeout,
        )
        .prefix("+CCERTDELE:"))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Model;

    #[test]
    fn encodes_and_validates() {
        let p = Model::A7600.profile();
        let c1 = SslCfg {
            ctx: 0,
            setting: SslSetting::CaCert("server_ca.pem".into()),
        };
        let r = c1.request(&p).unwrap();
        assert_eq!(r.line, "AT+CSSLCFG=\"cacert\",0,\"server_ca.pem\"");
        let c2 = SslCfg {
            ctx: 0,
            setting: SslSetting::AuthMode(2),
        };
        let r = c2.request(&p).unwrap();
        assert_eq!(r.line, "AT+CSSLCFG=\"authmode\",0,2");
        assert!(SslCfg {
            ctx: 10,
            setting: SslSetting::AuthMode(0)
        }
        .request(&p)
        .is_err());
        assert!(SslCfg {
            ctx: 0,
            setting: SslSetting::NegotiateTime(5)
        }
        .request(&p)
        .is_err());
        let key = b"-----BEGIN PRIVATE KEY-----";
        let c = CertDown {
            name: "key.pem",
            data: key,
        };
        assert!(!format!("{c:?}").contains("PRIVATE"));
        assert_eq!(
            c.request(&p).unwrap().line,
            format!("AT+CCERTDOWN=\"key.pem\",{}", key.len())
        );
        assert!(CertDele { name: "../x" }.request(&p).is_err());
    }
}
