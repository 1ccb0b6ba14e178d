"""`proctor cert --self-signed`: a small local CA and a server certificate for an exam hall
without a domain name (a node reached as https://192.168.1.10:8443 or https://exam.local).

Why a CA and not one self-signed certificate: students' machines trust the CA once, and
the node's certificate can be re-issued (new address, renewal) without touching them
again — the CA is kept in the same directory and reused. Why it is name-constrained: a
CA in a student's trust store could vouch for any web site; this one is limited (critical
nameConstraints, honoured by Chrome, Firefox, Windows and macOS) to the names and
addresses it was made for, so its key is worth nothing beyond this hall.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "proctor-ca.crt"  # .crt: what Windows opens and update-ca-certificates takes
CA_KEY = "proctor-ca-key.pem"
CERT = "cert.pem"
KEY = "key.pem"
CA_DAYS = 3650
# Apple's platforms refuse TLS certificates valid for longer, even from a local CA.
MAX_DAYS = 825

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class CertError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Subjects:
    """The names and addresses a certificate is for."""

    names: tuple[str, ...]
    ips: tuple[IPAddress, ...]

    @classmethod
    def parse(cls, names: list[str], ips: list[str]) -> Subjects:
        dns: list[str] = []
        addresses: list[IPAddress] = []
        for text in [*names, *ips]:
            text = text.strip()
            try:
                addresses.append(ipaddress.ip_address(text.strip("[]")))
                continue
            except ValueError:
                pass
            if text in ips:
                raise CertError(f"--ip {text!r} is not an IP address")
            if not _DNS_NAME.match(text):
                raise CertError(f"--name {text!r} is not a host name (letters, digits, '-' and dots)")
            dns.append(text.lower())
        if not dns and not addresses:
            raise CertError("give at least one --name HOST or --ip ADDR: the addresses students type")
        return cls(tuple(dict.fromkeys(dns)), tuple(dict.fromkeys(addresses)))

    def general_names(self) -> list[x509.GeneralName]:
        return [*(x509.DNSName(n) for n in self.names), *(x509.IPAddress(ip) for ip in self.ips)]

    def subtrees(self) -> list[x509.GeneralName]:
        """nameConstraints: each name (and its sub-domains), each address alone (/32, /128)."""
        return [*(x509.DNSName(n) for n in self.names), *(x509.IPAddress(ipaddress.ip_network(ip)) for ip in self.ips)]

    def __str__(self) -> str:
        return ", ".join([*self.names, *(str(ip) for ip in self.ips)])


@dataclass(frozen=True, slots=True)
class Issued:
    directory: Path
    ca_created: bool
    ca_fingerprint: str
    subjects: Subjects
    not_after: datetime

    @property
    def ca_cert(self) -> Path:
        return self.directory / CA_CERT

    @property
    def cert(self) -> Path:
        return self.directory / CERT

    @property
    def key(self) -> Path:
        return self.directory / KEY


def _write(path: Path, data: bytes, mode: int) -> None:
    # Write-then-rename: a node reloading on SIGHUP never reads a half-written file.
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # an old temp file keeps its mode otherwise
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    os.replace(temp, path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _permitted(ca: x509.Certificate) -> list[x509.GeneralName] | None:
    try:
        constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None
    return list(constraints.permitted_subtrees or [])


def _covers(permitted: list[x509.GeneralName], subjects: Subjects) -> list[str]:
    """Which of `subjects` the CA's permitted subtrees do not cover."""
    dns = [str(p.value).lower() for p in permitted if isinstance(p, x509.DNSName)]
    nets = [p.value for p in permitted if isinstance(p, x509.IPAddress)]
    missing = [n for n in subjects.names if not any(n == d or n.endswith("." + d) for d in dns)]
    missing += [
        str(ip)
        for ip in subjects.ips
        if not any(isinstance(net, ipaddress.IPv4Network | ipaddress.IPv6Network) and ip in net for net in nets)
    ]
    return missing


def _load_ca(directory: Path, subjects: Subjects) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not cert_path.exists() and not key_path.exists():
        return None
    if not (cert_path.exists() and key_path.exists()):
        raise CertError(
            f"{directory} holds only one of {CA_CERT} and {CA_KEY}; restore the other or remove both "
            "to make a new CA (students then trust the new one)"
        )
    ca = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{key_path} is not a key made by proctor cert")
    permitted = _permitted(ca)
    missing = _covers(permitted, subjects) if permitted is not None else []
    if missing:
        raise CertError(
            f"the CA in {directory} may vouch only for {', '.join(str(p.value) for p in permitted or [])}, "
            f"not for {', '.join(missing)}. Remove {CA_CERT} and {CA_KEY} to make a new CA for every name "
            "(students then trust the new one), or issue for names the CA already covers"
        )
    return ca, key


def _new_ca(subjects: Subjects, now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Proctor exam hall"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Proctor local CA for {subjects}"[:64]),
        ]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.NameConstraints(permitted_subtrees=subjects.subtrees(), excluded_subtrees=None), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return ca, key


def _server_cert(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    subjects: Subjects,
    now: datetime,
    days: int,
) -> x509.Certificate:
    # An address as CN would be checked as a DNS name against the CA's name constraints
    # by OpenSSL when the certificate has no DNS names; a CN with a space is not a name.
    first = subjects.names[0] if subjects.names else f"Proctor node {subjects.ips[0]}"
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first[:64])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(subjects.general_names()), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def issue(directory: Path, subjects: Subjects, days: int = 365) -> Issued:
    """Make (or reuse) the local CA in `directory` and issue a server certificate from it."""
    if not 1 <= days <= MAX_DAYS:
        raise CertError(f"--days must be 1..{MAX_DAYS} (macOS and iOS refuse longer server certificates)")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = datetime.now(UTC)
    loaded = _load_ca(directory, subjects)
    created = loaded is None
    ca, ca_key = loaded if loaded is not None else _new_ca(subjects, now)
    if created:
        _write(directory / CA_KEY, _pem_key(ca_key), 0o600)
        _write(directory / CA_CERT, ca.public_bytes(serialization.Encoding.PEM), 0o644)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _server_cert(ca, ca_key, key, subjects, now, days)
    # Key first: a node reloading between the two writes sees a mismatch and keeps its old pair.
    _write(directory / KEY, _pem_key(key), 0o600)
    _write(directory / CERT, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    fingerprint = hashlib.sha256(ca.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return Issued(
        directory,
        created,
        ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)),
        subjects,
        cert.not_valid_after_utc,
    )


def instructions(issued: Issued, port: int) -> str:
    """What to tell the operator: the files, the settings, and how each platform trusts the CA."""
    ca = issued.ca_cert
    first = issued.subjects.names[0] if issued.subjects.names else str(issued.subjects.ips[0])
    host = f"[{first}]" if ":" in first else first
    url = f"https://{host}:{port}" if port != 443 else f"https://{host}"
    ca_state = (
        "new — every student machine must trust it once"
        if issued.ca_created
        else "reused — machines that trust it already need nothing new"
    )
    return f"""\
Certificate for {issued.subjects}, valid until {issued.not_after:%Y-%m-%d}.

  server certificate  {issued.cert}
  server key          {issued.key}   (mode 0600: keep it on the node)
  local CA            {ca}   ({ca_state})
  CA key              {issued.directory / CA_KEY}   (mode 0600: never copy it to students)
  CA SHA-256          {issued.ca_fingerprint}

Run the node with:
  PROCTOR_HOST=0.0.0.0   (or the hall address: students' machines must reach it)
  PROCTOR_TLS_CERT={issued.cert}
  PROCTOR_TLS_KEY={issued.key}
  PROCTOR_PUBLIC_URL={url}
(a running node picks up a re-issued certificate on SIGHUP: systemctl kill -s HUP proctor)

Trust the CA on each student machine (copy {CA_CERT}; compare the SHA-256 above):
  Windows (Edge, Chrome):  certutil -addstore -f Root {CA_CERT}   (administrator prompt;
                           per user without admin: certutil -user -addstore Root {CA_CERT})
  macOS (Safari, Chrome):  sudo security add-trusted-cert -d -r trustRoot \\
                             -k /Library/Keychains/System.keychain {CA_CERT}
  ChromeOS, and Chrome where the system store is not used: chrome://certificate-manager
                           (older: chrome://settings/certificates) > Authorities or "Custom" >
                           Import, tick "Trust this certificate for identifying websites"
                           (managed Chromebooks: Admin console > Devices > Networks > Certificates)
  Firefox (any system):    Settings > Privacy & Security > Certificates > View Certificates >
                           Authorities > Import, tick "Trust this CA to identify websites"
                           (or enterprise policy Certificates.Install / ImportEnterpriseRoots)
  Debian/Ubuntu (system):  sudo cp {CA_CERT} /usr/local/share/ca-certificates/ && sudo update-ca-certificates
  Chrome/Chromium on Linux read their own store:
                           certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n "Proctor local CA" -i {CA_CERT}
                           (certutil: apt-get install libnss3-tools)
Then open {url}/healthz: no warning means the machine trusts it.
"""


__all__ = ["CertError", "Issued", "Subjects", "instructions", "issue"]
