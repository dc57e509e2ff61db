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


CERT_SCRIPTS = [
    "gather",
    "fix-cert-bind",
    "fix-cert-key-acl",
    "fix-cert-regenerate",
    "fix-cert-enroll",
    "fix-cert-unpin",
]


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


def test_templates_are_read_by_extension_oid_and_decoded_by_certenroll() -> None:
    for name in ("gather", "fix-cert-enroll"):
        text = code(name)
        # By OID, never by the localized extension name ("Certificate Template Information").
        assert "$ext.Oid.Value -eq '1.3.6.1.4.1.311.21.7'" in text
        assert "$ext.Oid.Value -eq '1.3.6.1.4.1.311.20.2'" in text
        assert "New-Object -ComObject X509Enrollment.CX509ExtensionTemplate\n" in text
        assert "New-Object -ComObject X509Enrollment.CX509ExtensionTemplateName" in text
        assert "$decoder.InitializeDecode(1, [Convert]::ToBase64String($ext.RawData))" in text
        # AD: the wanted name is compared, never put into an LDAP path or filter.
        assert "$searcher.Filter = '(objectClass=pKICertificateTemplate)'" in text
        assert "$cn -eq $Name" in text and "$templateOid -eq $Oid" in text
        assert "$searcher.ClientTimeout = [TimeSpan]::FromSeconds(5)" in text
    section = cert_section(code("gather"))
    assert "template_oid    = $templateId.template_oid" in section
    assert "template_policy_oid = $templateOid" in section
    assert "if ($template) { $templateOid = Find-AdTemplate -Name $template }" in section


def test_enroll_runs_certreq_as_documented_and_reads_only_its_exit_code() -> None:
    text = code("fix-cert-enroll")
    # The command line, each argument its own array element (never spliced text).
    assert "$arguments = @('-enroll', '-machine', '-q', '-policyserver', '*', $Template)" in text
    assert "& $command @arguments 2>&1" in text
    assert "code = $global:LASTEXITCODE" in text
    assert "if ($result.code -ne 0) {" in text
    # The text goes into the error as it is: no test of its words anywhere.
    assert text.count("$result.text") == 2 and all(
        "throw (" in line for line in text.splitlines() if "$result.text" in line
    )
    # Never a renewal of the expired one (certreq: expired certificates cannot be renewed).
    assert "renew" not in text.lower()


def test_enroll_finds_the_new_certificate_by_store_template_and_notbefore() -> None:
    text = code("fix-cert-enroll")
    assert "$known = Get-MyThumbprints" in text  # before certreq runs
    assert text.index("$known = Get-MyThumbprints") < text.index("Invoke-CertreqEnroll $request")
    assert "$known -notcontains [string]$_.Thumbprint -and $_.HasPrivateKey" in text
    assert "(Test-FromTemplate $_ $names $templateOid -AnyUnknown)" in text
    assert "Sort-Object -Property NotBefore -Descending" in text
    # By what the certificate carries: its template's OID (v2+), else its name (v1).
    oid_first = (
        "if ($id.template_oid) {\n"
        "        if ($TemplateOid) { return ($id.template_oid -eq $TemplateOid) }"
    )
    assert oid_first in text
    assert "if ($id.template_name) { return ($Names -contains $id.template_name) }" in text


def test_enroll_gives_its_undo_only_what_it_enrolled() -> None:
    text = code("fix-cert-enroll")
    assert "$made = $null\n    if ($enrolled) { $made = $thumb }" in text
    assert text.count("made = $made }") == 2  # in the bind answer and in the store answer


def test_enroll_grants_the_key_binds_and_cleans_up_what_it_enrolled() -> None:
    text = code("fix-cert-enroll")
    grant = text.index("Grant-NetworkServiceRead $file")
    assert text.index("(Test-ListenerEku $cert)") < grant < text.index("Set-Bound $thumb")
    # A failure after the CA issued removes that certificate with its key.
    assert "if ($enrolled) {\n            Remove-MyCert $thumb" in text
    assert "Remove-Item -Path $path -DeleteKey" in text
    assert "$Thumbprint -cnotmatch '^[0-9A-F]{40}$'" in text
    # The undo never removes a certificate that is bound.
    assert "if ($present -and (Get-Bound) -ne $thumb) { Remove-MyCert $thumb }" in text
    # A template argument certreq would read as an option is refused.
    name = "'^([A-Za-z0-9][A-Za-z0-9 ._()-]{0,62}[A-Za-z0-9._()-]|[A-Za-z0-9])$'"
    assert f"$namePattern = {name}" in text


def test_unpin_deletes_the_selection_only_under_the_template_policy() -> None:
    text = code("fix-cert-unpin")
    policy = text.index("GetValue('CertTemplateName')")
    delete = text.index("Remove-ItemProperty -LiteralPath $rdpTcp -Name SSLCertificateSHA1Hash")
    assert policy < delete
    assert "if ($before -eq $thumb) {" in text  # only while the planned one is still bound
    assert text.index("Restart-Service -Name SessionEnv -Force") > delete
    assert "Restart-Service -Name TermService -Force" in text


def test_regenerate_fails_when_no_new_certificate_is_bound() -> None:
    # The old certificate is deleted before the restart: a binding that never moves is a
    # listener left with no certificate, not "no change".
    text = code("fix-cert-regenerate")
    wait = text.index("for ($try = 0; $try -lt 15 -and (Get-Bound) -eq $before; $try++)")
    assert wait < text.index("if ((Get-Bound) -eq $before) {\n        throw ")
