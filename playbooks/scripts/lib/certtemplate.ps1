# Shared by gather and fix-cert-enroll (`# fleet-include: certtemplate`): which certificate
# template a certificate came from, and what Active Directory knows of a template.
#
# A certificate from an enterprise CA names its template in one of two extensions, found by OID
# (their display names are localized): Certificate Template Information 1.3.6.1.4.1.311.21.7
# (templates of version 2 and later: the template's OID, [MS-WCCE] 2.2.2.7.7.2,
# https://learn.microsoft.com/openspecs/windows_protocols/ms-wcce/9da866e5-9ce9-4a83-9064-0d20af8b2ccf)
# and Certificate Template Name 1.3.6.1.4.1.311.20.2 (version 1: the template's name, [MS-WCCE]
# 2.2.2.7.7.1, https://learn.microsoft.com/openspecs/windows_protocols/ms-wcce/3aec3e50-511a-42f9-a5d5-240af503e470).
# CertEnroll's own classes decode them from the extension's DER value, handed over as base64
# (EncodingType XCN_CRYPT_STRING_BASE64 = 1): X509Enrollment.CX509ExtensionTemplate (TemplateOid,
# https://learn.microsoft.com/windows/win32/api/certenroll/nf-certenroll-ix509extensiontemplate-initializedecode)
# and X509Enrollment.CX509ExtensionTemplateName (TemplateName,
# https://learn.microsoft.com/windows/win32/api/certenroll/nn-certenroll-ix509extensiontemplatename;
# https://learn.microsoft.com/windows/win32/api/certenroll/ne-certenroll-encodingtype; the ProgIDs:
# https://learn.microsoft.com/windows/win32/api/certenroll/nf-certenroll-ix509enrollmentwebclassfactory-createobject).

function Get-CertTemplateId {
    # The certificate's template: template_oid (version 2+) and template_name (version 1), each
    # $null when the certificate has no such extension or it cannot be decoded.
    param($Cert)
    $id = @{ template_oid = $null; template_name = $null }
    foreach ($ext in @($Cert.Extensions)) {
        try {
            if ($ext.Oid.Value -eq '1.3.6.1.4.1.311.21.7') {
                $decoder = New-Object -ComObject X509Enrollment.CX509ExtensionTemplate
                $decoder.InitializeDecode(1, [Convert]::ToBase64String($ext.RawData))
                $id.template_oid = [string]$decoder.TemplateOid.Value
            } elseif ($ext.Oid.Value -eq '1.3.6.1.4.1.311.20.2') {
                $decoder = New-Object -ComObject X509Enrollment.CX509ExtensionTemplateName
                $decoder.InitializeDecode(1, [Convert]::ToBase64String($ext.RawData))
                $id.template_name = [string]$decoder.TemplateName
            }
        } catch { $null = $_ }
    }
    return $id
}

function Find-AdTemplate {
    # A certificate template as Active Directory holds it: given its name (-Name, its cn), its
    # OID (msPKI-Cert-Template-OID); given its OID (-Oid), its name. $null when not found or the
    # directory cannot be read. Templates are the pKICertificateTemplate objects under
    # CN=Certificate Templates,CN=Public Key Services,CN=Services of the configuration naming
    # context ([MS-WCCE] 2.2.2.11.1, https://learn.microsoft.com/openspecs/windows_protocols/ms-wcce/9279abb2-3dfa-4631-845c-43c187ac4b44;
    # msPKI-Cert-Template-OID: [MS-ADA2] 2.606, https://learn.microsoft.com/openspecs/windows_protocols/ms-ada2/8f0b56d6-2974-4314-83b7-06de07f5b0f2).
    # One one-level search with a time limit (a gather section has a budget); the wanted value is
    # compared here, never put into an LDAP path or filter.
    param([string]$Name, [string]$Oid)
    try {
        $rootDse = New-Object System.DirectoryServices.DirectoryEntry -ArgumentList 'LDAP://RootDSE'
        $config = [string]$rootDse.Properties['configurationNamingContext'].Value
        if (-not $config) { return $null }
        $base = New-Object System.DirectoryServices.DirectoryEntry -ArgumentList "LDAP://CN=Certificate Templates,CN=Public Key Services,CN=Services,$config"
        $searcher = New-Object System.DirectoryServices.DirectorySearcher -ArgumentList $base
        $searcher.SearchScope = [System.DirectoryServices.SearchScope]::OneLevel
        $searcher.Filter = '(objectClass=pKICertificateTemplate)'
        $searcher.ClientTimeout = [TimeSpan]::FromSeconds(5)
        $searcher.ServerTimeLimit = [TimeSpan]::FromSeconds(5)
        [void]$searcher.PropertiesToLoad.Add('cn')
        [void]$searcher.PropertiesToLoad.Add('msPKI-Cert-Template-OID')
        # A SearchResultCollection holds unmanaged resources until disposed
        # (https://learn.microsoft.com/dotnet/api/system.directoryservices.searchresultcollection).
        $results = $searcher.FindAll()
        try {
            foreach ($found in $results) {
                # SearchResult.Properties names are lower case.
                $cn = [string]@($found.Properties['cn'])[0]
                $templateOid = [string]@($found.Properties['mspki-cert-template-oid'])[0]
                if ($Name -and $cn -eq $Name -and $templateOid) { return $templateOid }
                if ($Oid -and $templateOid -eq $Oid -and $cn) { return $cn }
            }
        } finally { $results.Dispose() }
    } catch { $null = $_ }
    return $null
}
