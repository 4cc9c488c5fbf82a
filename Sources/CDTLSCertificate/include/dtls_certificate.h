// vcall's DTLS certificate generator: the one piece of C in vcall that is not GStreamer glue.
// It uses OpenSSL's libcrypto (libssl-dev), which Swift cannot drive comfortably.
#ifndef VCALL_DTLS_CERTIFICATE_H
#define VCALL_DTLS_CERTIFICATE_H

/// A fresh self-signed certificate with an ECDSA P-256 key (named curve, SHA-256 signature, valid from an
/// hour ago for `days` days, subject and issuer CN=`common_name`), as PEM: the certificate, then its
/// PKCS#8 private key. malloc'd: release it with `free`. NULL on failure.
char *vcall_dtls_ecdsa_certificate_pem(const char *common_name, unsigned int days);

#endif
