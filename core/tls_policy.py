"""What "modern TLS" means here, for the node's own HTTPS (server/tls.py) and for the Nginx
in front of it (nginx/render.py): Mozilla's "intermediate" profile (TLS 1.2 and 1.3,
forward-secret AEAD suites only), which every browser of the last eight years speaks.

TLS 1.3 suites are not listed: OpenSSL's defaults for 1.3 are all AEAD already.
The DHE suites take effect only where Diffie-Hellman parameters are configured (Nginx's
`ssl_dhparam`); without them the ECDHE ones carry every handshake.
"""

from __future__ import annotations

# https://ssl-config.mozilla.org/ intermediate, version 5.7.
INTERMEDIATE_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-CHACHA20-POLY1305",
    )
)

# Nginx's spelling of the protocol floor; the node sets ssl.TLSVersion.TLSv1_2.
NGINX_PROTOCOLS = "TLSv1.2 TLSv1.3"

# Two years, Mozilla's recommendation. No includeSubDomains/preload: a school's other
# sub-domains are not ours to commit to HTTPS.
HSTS_MAX_AGE = 63072000
