//! TLS as the modem does it: a rustls `ClientConfig` (ring provider) built
//! from one `AT+CSSLCFG` context and the certificate files downloaded with
//! `AT+CCERTDOWN`.
//!
//! * `authmode` 0: no server verification; 1: verify the server against
//!   `cacert`; 2: verify the server and present `clientcert`/`clientkey`;
//!   3: present the client certificate, do not verify the server.
//! * Like SIMCom firmware, the server's host name is **not** checked against
//!   its certificate (only the chain is verified); with `ignorelocaltime` 1,
//!   expired / not-yet-valid certificates are accepted too.
//! * `sslversion` 3 = TLS 1.2 only, 4 = TLS 1.2 or 1.3; 0..2 (SSL 3.0, TLS
//!   1.0, TLS 1.1) cannot be spoken and fail the handshake (`<err>` 32).
//! * `enableSNI` 0 (the default) sends no SNI.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::codes;
use crate::state::SslCtx;

/// Builds the client configuration for `ctx`, or the `<err>` code to report.
pub(crate) fn client_config(
    ctx: &SslCtx,
    files: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<Arc<ClientConfig>, u8> {
    let provider = Arc::new(crypto::ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = match ctx.sslversion {
        3 => &[&rustls::version::TLS12],
        4 => &[&rustls::version::TLS12, &rustls::version::TLS13],
        _ => return Err(codes::HANDSHAKE_FAIL),
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|_| codes::HANDSHAKE_FAIL)?;

    let verifier: Arc<dyn ServerCertVerifier> = match ctx.authmode {
        1 | 2 => {
            let ca = file(files, ctx.cacert.as_deref())?;
            let mut roots = RootCertStore::empty();
            for cert in certs(ca)? {
                roots.add(cert).map_err(|_| codes::OPEN_SESSION_FAILED)?;
            }
            let inner =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|_| codes::OPEN_SESSION_FAILED)?;
            Arc::new(ModemVerifier {
                inner: Some(inner),
                provider: provider.clone(),
                ignore_time: ctx.ignore_local_time,
            })
        }
        _ => Arc::new(ModemVerifier {
            inner: None,
            provider: provider.clone(),
            ignore_time: true,
        }),
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match ctx.authmode {
        2 | 3 => {
            let chain = certs(file(files, ctx.clientcert.as_deref())?)?;
            let key = key(file(files, ctx.clientkey.as_deref())?)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|_| codes::OPEN_SESSION_FAILED)?
        }
        _ => builder.with_no_client_auth(),
    };
    config.enable_sni = ctx.enable_sni;
    Ok(Arc::new(config))
}

/// The rustls server name for `host` (an IP address or a DNS name).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, u8> {
    ServerName::try_from(host.to_string()).map_err(|_| codes::DNS_ERROR)
}

fn file<'a>(files: &'a BTreeMap<Vec<u8>, Vec<u8>>, name: Option<&[u8]>) -> Result<&'a [u8], u8> {
    let name = name.ok_or(codes::NOT_SET_CERTIFICATE)?;
    files
        .get(name)
        .map(Vec::as_slice)
        .ok_or(codes::NOT_SET_CERTIFICATE)
}

fn is_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

fn certs(data: &[u8]) -> Result<Vec<CertificateDer<'static>>, u8> {
    let certs: Vec<CertificateDer<'static>> = if is_pem(data) {
        CertificateDer::pem_slice_iter(data)
            .collect::<Result<_, _>>()
            .map_err(|_| codes::OPEN_SESSION_FAILED)?
    } else {
        vec![CertificateDer::from(data.to_vec())]
    };
    if certs.is_empty() {
        return Err(codes::OPEN_SESSION_FAILED);
    }
    Ok(certs)
}

fn key(data: &[u8]) -> Result<PrivateKeyDer<'static>, u8> {
    if is_pem(data) {
        PrivateKeyDer::from_pem_slice(data).map_err(|_| codes::OPEN_SESSION_FAILED)
    } else {
        PrivateKeyDer::try_from(data.to_vec()).map_err(|_| codes::OPEN_SESSION_FAILED)
    }
}

/// Chain verification without the host-name check (and optionally without
/// the validity-time check), or no verification at all (`inner == None`).
#[derive(Debug)]
struct ModemVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    ignore_time: bool,
}

impl ServerCertVerifier for ModemVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(inner) = &self.inner else {
            return Ok(ServerCertVerified::assertion());
        };
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(v) => Ok(v),
            Err(rustls::Error::InvalidCertificate(e)) => {
                // Matched by name so that the "...Context" variants of newer
                // rustls versions are covered too.
                let what = format!("{e:?}");
                if what.starts_with("NotValidForName")
                    || (self.ignore_time
                        && (what.starts_with("Expired") || what.starts_with("NotValidYet")))
                {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::InvalidCertificate(e))
                }
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
