"""Static rules for the listener-certificate PowerShell (no PowerShell runs here): what the
gather and the fix scripts must do, read from their code with the comments taken out."""

from __future__ import annotations

import re

import pytest

from fleet.scripts import builtin_script
from tests.support.pwsh import parse_pwsh, walk


def code(name: str) -> str:
    """The script a host receives (includes expanded), comments blanked out."""
    text = builtin_script(name).text
    data = bytearray(text.encode("utf-8"))
    for node in walk(parse_pwsh(text).root_node):
        if node.type == "comment":
            data[node.start_byte : node.end_byte] = b" " * (node.end_byte - node.start_byte)
    return data.decode("utf-8")


def cert_section(gather: str) -> str:
    start = gather.index("    cert             = {")
    return gather[start : gather.index("    time             = {", start)]


CERT_SCRIPTS = ["gather", "fix-cert-bind", "fix-cert-key-acl", "fix-cert-regenerate"]


@pytest.mark.parametrize("name", CERT_SCRIPTS)
def test_accounts_by_sid_and_ekus_by_oid_never_by_localized_name(name: str) -> None:
    text = code(name)
    # NT AUTHORITY\NETWORK SERVICE is NT-AUTORITÄT\NETZWERKDIENST on a German host; EKU
    # friendly names are localized as well.
    assert not re.search(r"NTAccount|NT AUTHORITY\\|NetworkService'|FriendlyName", text, re.I)


def test_gather_reports_ekus_key_access_hash_type_and_template_policy() -> None:
    section = cert_section(code("gather"))
    for needle in (
        "eku             = Get-EkuOids $c",
        "key_readable    = Get-KeyReadable $c",
        "SSLCertificateSHA1HashType",
        "GetValue('CertTemplateName')",
    ):
        assert needle in section, needle
    gather = code("gather")
    assert "$_.Oid.Value -eq '2.5.29.37'" in gather  # the EKU extension, by OID
    assert "EnhancedKeyUsages" in gather and "[string]$oid.Value" in gather


def test_key_file_is_found_for_csp_and_cng_keys_on_51_and_7() -> None:
    lib = code("fix-cert-key-acl")
    # .NET 4.6+ / PowerShell 7 (type looked up by name: absent on .NET 4.5), else PrivateKey.
    assert (
        "'System.Security.Cryptography.X509Certificates.RSACertificateExtensions' -as [type]"
        in (lib)
    )
    assert "$rsa::GetRSAPrivateKey($Cert)" in lib and "$Cert.PrivateKey" in lib
    assert "$key.Key.UniqueName" in lib  # RSACng (CNG)
    assert "$key.CspKeyContainerInfo.UniqueKeyContainerName" in lib  # CSP
    assert "@('Keys', 'RSA\\MachineKeys')" in lib
    assert "GetFolderPath('CommonApplicationData')" in lib  # %ProgramData%


def test_key_access_is_judged_and_granted_by_sid() -> None:
    lib = code("fix-cert-key-acl")
    assert "$NetworkServiceSid = 'S-1-5-20'" in lib
    assert "GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier])" in lib
    assert (
        "New-Object System.Security.Principal.SecurityIdentifier -ArgumentList $NetworkServiceSid"
        in (lib)
    )
    assert "[System.Security.AccessControl.FileSystemRights]::Read" in lib
    # The undo removes exactly the entry a grant adds, nothing else.
    assert "RemoveAccessRuleSpecific((New-NetworkServiceReadRule))" in lib
    # Only the DACL is written back: Set-Acl would try the audit section as well.
    assert "Set-Acl" not in lib and lib.count("Save-KeyFileAccess $Path $acl") == 2


def test_bind_grants_the_key_before_it_binds() -> None:
    text = code("fix-cert-bind")
    grant = text.index("Grant-NetworkServiceRead $file\n")
    assert grant < text.index("Set-CimInstance -InputObject $ts")


def test_regenerate_deletes_the_certificate_with_its_key() -> None:
    text = code("fix-cert-regenerate")
    assert "Remove-Item -Path $old -DeleteKey" in text
    assert "-cmatch '^[0-9A-F]{40}$'" in text  # -Path takes wildcards: only a bare thumbprint
