//! TLS for target connections: maps libpq's `sslmode` / `sslrootcert` onto a
//! rustls client configuration so `cutover` can talk to managed PostgreSQL
//! services (which usually require TLS) without OpenSSL.
//!
//! | sslmode       | TLS attempted | chain verified | host name verified |
//! |---------------|---------------|----------------|--------------------|
//! | disable       | no            | -              | -                  |
//! | allow, prefer | yes, falls back to plain text | no | no              |
//! | require       | yes, mandatory | no (yes if `sslrootcert` is given, like libpq) | no |
//! | verify-ca     | yes, mandatory | yes            | no                 |
//! | verify-full   | yes, mandatory | yes            | yes                |
//!
//! Roots for verification come from `sslrootcert` (a PEM file) or, when it is
//! absent or `system`, from the Mozilla root set bundled by `webpki-roots`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    Allow,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// Parses a libpq `sslmode` value.
    pub fn parse(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => bail!(
                "invalid sslmode \"{other}\": expected disable, allow, prefer, require, verify-ca or verify-full"
            ),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The tokio-postgres mode: it only knows disable / prefer / require.
    /// (`allow` means "plain first, TLS if needed" in libpq; trying TLS
    /// first is the safer approximation.)
    pub fn to_tokio(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as T;
        match self {
            SslMode::Disable => T::Disable,
            SslMode::Allow | SslMode::Prefer => T::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => T::Require,
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How strictly the server certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    Nothing,
    Chain,
    ChainAndName,
}

/// Builds the tokio-postgres TLS connector for `mode`. `rootcert` is the
/// `sslrootcert` parameter (a PEM file path, or `system`).
pub fn connector(mode: SslMode, rootcert: Option<&Path>) -> Result<MakeRustlsConnect> {
    let verify = match mode {
        SslMode::Disable | SslMode::Allow | SslMode::Prefer => Verify::Nothing,
        // libpq: "if a root CA file exists, require behaves like verify-ca".
        SslMode::Require if rootcert.is_some() => Verify::Chain,
        SslMode::Require => Verify::Nothing,
        SslMode::VerifyCa => Verify::Chain,
        SslMode::VerifyFull => Verify::ChainAndName,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("setting up TLS (rustls protocol versions)")?;
    let config = match verify {
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
        Verify::Chain | Verify::ChainAndName => {
            let roots = Arc::new(load_roots(rootcert)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .context("setting up TLS certificate verification")?;
            if verify == Verify::ChainAndName {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
                    .with_no_client_auth()
            }
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

fn load_roots(rootcert: Option<&Path>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match rootcert {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(p) if p.as_os_str() == "system" => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned())
        }
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read sslrootcert file {}", path.display()))?;
            let mut n = 0usize;
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                let cert = cert.with_context(|| {
                    format!("sslrootcert file {} is not valid PEM", path.display())
                })?;
                roots.add(cert).with_context(|| {
                    format!(
                        "sslrootcert file {} contains an unusable certificate",
                        path.display()
                    )
                })?;
                n += 1;
            }
            if n == 0 {
                bail!(
                    "sslrootcert file {} contains no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                    path.display()
                );
            }
        }
    }
    Ok(roots)
}

/// `sslmode=require`/`prefer`: encrypt, but accept any certificate (what
/// libpq does without a root certificate). Handshake signatures are still
/// checked so the session keys belong to the presented certificate.
#[derive(Debug)]
struct NoVerify(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `sslmode=verify-ca`: full webpki chain verification, but a host-name
/// mismatch is accepted. rustls checks the chain before the name, so a
/// name error implies the chain was valid.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Finds a rustls error anywhere in an error's source chain (tokio-rustls
/// wraps it in an `io::Error`).
pub fn find_rustls_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(r);
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modes() {
        for m in [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            assert_eq!(SslMode::parse(m).unwrap().as_str(), m);
        }
        assert!(SslMode::parse("on").is_err());
    }

    #[test]
    fn builds_connectors() {
        for m in [
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            connector(m, None).unwrap();
        }
        let err = connector(SslMode::VerifyFull, Some(Path::new("/nonexistent/ca.pem")))
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn rejects_non_pem_rootcert() {
        let dir = std::env::temp_dir().join(format!("cutover-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bad.pem");
        std::fs::write(&f, "not a certificate\n").unwrap();
        let err = connector(SslMode::VerifyCa, Some(&f)).err().unwrap();
        assert!(format!("{err:#}").contains("no PEM certificate"), "{err:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
