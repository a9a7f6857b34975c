//! TLS for both HTTP clients, with the system's root certificates read when the first `https`
//! address is about to be fetched rather than when the clients are built.
//!
//! Reading and parsing the system's certificate bundle (about 140 certificates, some 300 files
//! in `/etc/ssl/certs`) cost about 15 ms per client, 30 ms in all: three quarters of a cron run
//! that finds nothing due, and a tenth of one that gets only 304s. Most runs of a mixed config
//! reach `https` anyway, but then they pay it once, on a blocking thread, and a run that reaches
//! nothing or only plain `http` does not pay it at all.

use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::Verifier;

/// Verifies servers against the platform's roots, loaded once, on first need.
pub(super) struct LazyRoots {
    provider: Arc<CryptoProvider>,
    /// The loading error is kept as text: every later handshake reports the same cause.
    verifier: OnceLock<Result<Verifier, String>>,
}

impl fmt::Debug for LazyRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyRoots")
            .field("loaded", &self.verifier.get().is_some())
            .finish()
    }
}

impl LazyRoots {
    pub(super) fn new() -> Arc<Self> {
        // The process-wide default when one is installed, as reqwest itself would choose.
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        Arc::new(Self {
            provider,
            verifier: OnceLock::new(),
        })
    }

    /// A client configuration that verifies with these roots; ALPN offers HTTP/2 and 1.1, as
    /// reqwest's own configuration does.
    pub(super) fn client_config(self: &Arc<Self>) -> Result<rustls::ClientConfig, rustls::Error> {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(self) as Arc<dyn ServerCertVerifier>)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Loads the roots on a blocking thread if they are not loaded yet; a handshake that
    /// comes first (through a proxy, say) loads them itself.
    pub(super) async fn ready(self: &Arc<Self>) {
        if self.verifier.get().is_some() {
            return;
        }
        let this = Arc::clone(self);
        // A loading error is reported by the handshake that needs the roots; a failed join
        // leaves them unloaded, and the handshake then loads them itself.
        let _ = tokio::task::spawn_blocking(move || this.verifier().is_ok()).await;
    }

    fn verifier(&self) -> Result<&Verifier, rustls::Error> {
        self.verifier
            .get_or_init(|| Verifier::new(Arc::clone(&self.provider)).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| rustls::Error::General(format!("no root certificates: {e}")))
    }
}

impl ServerCertVerifier for LazyRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    // Signatures are checked against the certificate just verified; no roots are needed.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
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
