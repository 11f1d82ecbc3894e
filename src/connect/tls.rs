//! TLS for target connections: libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey`
//! (PostgreSQL docs, "SSL Support") mapped onto a rustls client configuration, so cutover can
//! talk to managed PostgreSQL services (which usually require TLS) without OpenSSL.
//!
//! | sslmode       | TLS attempted | chain verified | host name verified |
//! |---------------|---------------|----------------|--------------------|
//! | disable       | no            | -              | -                  |
//! | allow, prefer | yes, falls back to plain text | no | no              |
//! | require       | yes, mandatory | no (yes if a root certificate file is given or `~/.postgresql/root.crt` exists, like libpq) | no |
//! | verify-ca     | yes, mandatory | yes            | no                 |
//! | verify-full   | yes, mandatory | yes            | yes                |
//!
//! Roots for verification: the `sslrootcert` PEM file, else `~/.postgresql/root.crt`, else
//! (and for `sslrootcert=system`) the operating system's trust store, read with
//! rustls-native-certs. A client certificate (`sslcert`, default `~/.postgresql/postgresql.crt`)
//! is presented with its key (`sslkey`, default `~/.postgresql/postgresql.key`), which must be
//! private to its owner as libpq requires.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SslMode {
    Disable,
    Allow,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// Parses a libpq `sslmode` value (asyncpg's `ssl` takes the same ones).
    pub(crate) fn parse(s: &str) -> Result<SslMode> {
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

    pub(crate) fn as_str(self) -> &'static str {
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
    pub(crate) fn to_tokio(self) -> tokio_postgres::config::SslMode {
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

/// Where trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// A PEM file (`sslrootcert=FILE` or `~/.postgresql/root.crt`).
    File(PathBuf),
    /// The operating system's trust store (`sslrootcert=system`).
    System,
}

impl fmt::Display for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Roots::File(p) => write!(f, "the roots in {}", p.display()),
            Roots::System => f.write_str("the system trust store"),
        }
    }
}

/// A client certificate and its private key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientCert {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// The TLS settings of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) mode: SslMode,
    /// Explicit or default roots; `None` = none given (verify modes then use the system's).
    pub(crate) roots: Option<Roots>,
    pub(crate) client: Option<ClientCert>,
}

impl Settings {
    /// The roots a verifying connection uses, `None` when nothing is verified.
    pub(crate) fn verifying_roots(&self) -> Option<Roots> {
        match (self.mode, &self.roots) {
            (SslMode::Disable | SslMode::Allow | SslMode::Prefer, _) => None,
            // libpq: "if a root CA file exists, require behaves like verify-ca".
            (SslMode::Require, Some(Roots::File(p))) => Some(Roots::File(p.clone())),
            (SslMode::Require, _) => None,
            (SslMode::VerifyCa | SslMode::VerifyFull, r) => {
                Some(r.clone().unwrap_or(Roots::System))
            }
        }
    }
}

/// Builds the tokio-postgres TLS connector for `settings`.
pub(crate) fn connector(settings: &Settings) -> Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("setting up TLS (rustls protocol versions)")?;
    let roots = settings.verifying_roots();
    let builder = match &roots {
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(
                provider.signature_verification_algorithms,
            ))),
        Some(r) => {
            let store = Arc::new(load_roots(r)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(store, provider)
                .build()
                .context("setting up TLS certificate verification")?;
            if settings.mode == SslMode::VerifyFull {
                builder.with_webpki_verifier(webpki)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
            }
        }
    };
    let mut config = match &settings.client {
        None => builder.with_no_client_auth(),
        Some(c) => {
            let (certs, key) = load_client_cert(c)?;
            builder.with_client_auth_cert(certs, key).with_context(|| {
                format!(
                    "the client certificate {} does not match its key {}",
                    c.cert.display(),
                    c.key.display()
                )
            })?
        }
    };
    // libpq 17 offers this ALPN; PostgreSQL 17 requires it for sslnegotiation=direct.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(MakeRustlsConnect::new(config))
}

fn load_roots(roots: &Roots) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                bail!(
                    "no trusted root certificates found in the system trust store{why}: install the system's CA certificates (e.g. the ca-certificates package) or pass sslrootcert=/path/to/ca.pem"
                );
            }
        }
        Roots::File(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read sslrootcert file {}", path.display()))?;
            let mut n = 0usize;
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                let cert = cert.with_context(|| {
                    format!("sslrootcert file {} is not valid PEM", path.display())
                })?;
                store.add(cert).with_context(|| {
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
    Ok(store)
}

fn load_client_cert(
    c: &ClientCert,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let bytes = std::fs::read(&c.cert)
        .with_context(|| format!("cannot read sslcert file {}", c.cert.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("sslcert file {} is not valid PEM", c.cert.display()))?;
    if certs.is_empty() {
        bail!(
            "sslcert file {} contains no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            c.cert.display()
        );
    }
    let key_path = &c.key;
    let meta = std::fs::metadata(key_path).with_context(|| {
        format!(
            "certificate present, but not private key file {}: pass it with sslkey=FILE",
            key_path.display()
        )
    })?;
    check_key_permissions(key_path, &meta)?;
    let key_bytes = std::fs::read(key_path)
        .with_context(|| format!("cannot read sslkey file {}", key_path.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|_| {
        anyhow::anyhow!(
            "sslkey file {} holds no usable private key (PEM PKCS#8, PKCS#1 or SEC1; encrypted keys are not supported)",
            key_path.display()
        )
    })?;
    Ok((certs, key))
}

/// libpq refuses a private key others may read: at most u=rw (0600) when the current user
/// owns it, or u=rw,g=r (0640) when root does.
fn check_key_permissions(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mode = meta.mode();
        let too_open = if meta.uid() == 0 {
            mode & 0o037 != 0
        } else {
            mode & 0o077 != 0
        };
        if too_open {
            bail!(
                "private key file {} has group or world access; it must have permissions u=rw (0600) or less if owned by the current user, or u=rw,g=r (0640) or less if owned by root",
                path.display()
            );
        }
    }
    let _ = (path, meta);
    Ok(())
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
pub(crate) fn find_rustls_error<'a>(
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

    fn settings(mode: SslMode, roots: Option<Roots>) -> Settings {
        Settings {
            mode,
            roots,
            client: None,
        }
    }

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
    fn what_is_verified() {
        let file = Some(Roots::File("/ca.pem".into()));
        assert_eq!(
            settings(SslMode::Prefer, file.clone()).verifying_roots(),
            None
        );
        assert_eq!(settings(SslMode::Require, None).verifying_roots(), None);
        assert_eq!(
            settings(SslMode::Require, file.clone()).verifying_roots(),
            file
        );
        assert_eq!(
            settings(SslMode::VerifyFull, None).verifying_roots(),
            Some(Roots::System)
        );
    }

    #[test]
    fn builds_connectors() {
        for m in [SslMode::Prefer, SslMode::Require] {
            connector(&settings(m, None)).unwrap();
        }
        let err = connector(&settings(
            SslMode::VerifyFull,
            Some(Roots::File("/nonexistent/ca.pem".into())),
        ))
        .err()
        .unwrap();
        assert!(format!("{err:#}").contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn rejects_bad_files() {
        let dir = std::env::temp_dir().join(format!("cutover-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bad.pem");
        std::fs::write(&f, "not a certificate\n").unwrap();
        let err = connector(&settings(SslMode::VerifyCa, Some(Roots::File(f.clone()))))
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("no PEM certificate"), "{err:#}");

        // A client key others may read is refused, as libpq does.
        let ck = rcgen::generate_simple_self_signed(vec!["client".to_string()]).unwrap();
        let (cert, key) = (dir.join("c.crt"), dir.join("c.key"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
        let mut s = settings(SslMode::Require, None);
        s.client = Some(ClientCert {
            cert: cert.clone(),
            key: key.clone(),
        });
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = connector(&s).err().unwrap();
            assert!(
                format!("{err:#}").contains("has group or world access"),
                "{err:#}"
            );
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        connector(&s).unwrap();
        s.client = Some(ClientCert {
            cert,
            key: dir.join("missing.key"),
        });
        let err = connector(&s).err().unwrap();
        assert!(
            format!("{err:#}").contains("not private key file"),
            "{err:#}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
