#include "dtls_certificate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

char *vcall_dtls_ecdsa_certificate_pem(const char *common_name, unsigned int days) {
  char *pem = NULL;
  EVP_PKEY *key = NULL;
  X509 *x509 = NULL;
  BIO *bio = NULL;
  X509_NAME *name = NULL;
  char *data = NULL;
  long length = 0;
  uint64_t serial = 0;
  EVP_PKEY_CTX *context = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
  if (context == NULL || EVP_PKEY_keygen_init(context) <= 0
      || EVP_PKEY_CTX_set_ec_paramgen_curve_nid(context, NID_X9_62_prime256v1) <= 0
      || EVP_PKEY_CTX_set_ec_param_enc(context, OPENSSL_EC_NAMED_CURVE) <= 0
      || EVP_PKEY_keygen(context, &key) <= 0) goto done;
  if ((x509 = X509_new()) == NULL || !X509_set_version(x509, 2)) goto done;
  // A positive random 63-bit serial number.
  if (RAND_bytes((unsigned char *) &serial, sizeof serial) != 1
      || !ASN1_INTEGER_set_uint64(X509_get_serialNumber(x509), serial >> 1)) goto done;
  name = X509_get_subject_name(x509);
  if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) common_name, -1, -1, 0)
      || !X509_set_issuer_name(x509, name)
      || X509_gmtime_adj(X509_getm_notBefore(x509), -3600) == NULL  // an hour back, for clock skew
      || X509_gmtime_adj(X509_getm_notAfter(x509), (long) days * 86400) == NULL
      || !X509_set_pubkey(x509, key)
      || X509_sign(x509, key, EVP_sha256()) <= 0) goto done;
  if ((bio = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_X509(bio, x509)
      || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) goto done;
  length = BIO_get_mem_data(bio, &data);
  if (length > 0 && data != NULL && (pem = malloc((size_t) length + 1)) != NULL) {
    memcpy(pem, data, (size_t) length);
    pem[length] = '\0';
  }
done:
  BIO_free(bio);
  X509_free(x509);
  EVP_PKEY_free(key);
  EVP_PKEY_CTX_free(context);
  return pem;
}
